//! Sharding types (part of the input) and the notations users write them in.
//!
//! A [`Sharding`] is axis-based: per tensor dim the mesh axes that split it (major first), the axes
//! over which the value is a pending partial sum, and every other axis replicated. The notations
//! (JAX `PartitionSpec`, PyTorch DTensor placements, XLA's HLO sharding text, Shardy's
//! `#sdy.sharding<..>`) parse into and print from it.
//!
//! ```
//! use shardc_ir::{Mesh, sharding::{HloSharding, Sharding}};
//! let mesh: Mesh = "dp=2,tp=4".parse().unwrap();
//! let s = Sharding::parse_jax("P('dp', None)", 2).unwrap();
//! assert_eq!(s.to_dtensor(&mesh).unwrap(), "[Shard(0), Replicate()]");
//! let h = HloSharding::from_sharding(&s, &mesh).unwrap();
//! assert_eq!(h.to_string(), "{devices=[2,1,4]<=[8] last_tile_dim_replicate}");
//! assert_eq!(h.to_sharding(&mesh, 2).unwrap(), s);
//! ```

mod dtensor;
mod factor;
mod hlo_convert;
mod hlo_text;
mod jax;
mod shardy;
mod spec;
mod tile;

pub use factor::factor_mesh_axes;
pub use hlo_convert::common_mesh;
pub use hlo_text::{HloSharding, ShardGroup, Subgroup, Tiled};
pub use shardy::ShardyText;
pub use spec::{AllowedDirection, Annotation, DimSharding, Sharding, ShardingAssignment};
pub use tile::{detect_iota, TileDevices};
