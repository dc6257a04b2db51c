//! Sharding propagation and resharding: per-op sharding rules derived from `ir`'s op factors,
//! propagation of user annotations through an e-graph of sharded variants (egg) to a fixpoint,
//! resharding (any sharding to any other as a sequence of collectives with byte counts), and the
//! collectives an assignment implies.
//!
//! This crate decides shardings; it never executes anything.
//!
//! ```
//! use shardc_ir::{Annotation, DType, Graph, Mesh, Op, Sharding, TensorType};
//! let mut g = Graph::new("mm");
//! let x = g.push("x", Op::Input { init: None }, vec![], Some(TensorType::new(DType::F32, vec![8, 16]))).unwrap();
//! let w = g.push("w", Op::Input { init: None }, vec![], Some(TensorType::new(DType::F32, vec![16, 32]))).unwrap();
//! let mm = Op::DotGeneral { lhs_batch: vec![], rhs_batch: vec![], lhs_contract: vec![1], rhs_contract: vec![0] };
//! let y = g.push("y", mm, vec![x, w], None).unwrap();
//! let mesh: Mesh = "dp=2,tp=4".parse().unwrap();
//! let ann = |v: &str, s| Annotation { value: v.into(), sharding: s, priority: 0 };
//! let sg = shardc_sharding::propagate(&g, &mesh, &[
//!     ann("x", Sharding::from_dims(&[&["dp"], &[]])),
//!     ann("w", Sharding::from_dims(&[&[], &["tp"]])),
//! ]).unwrap();
//! assert_eq!(sg.sharding(y), &Sharding::from_dims(&[&["dp"], &["tp"]]));
//! ```

#![forbid(unsafe_code)]

pub mod auto;
mod collectives;
mod egraph;
mod error;
pub mod export;
mod format;
mod gspmd;
mod needs;
mod propagate;
mod reason;
mod reshard;
mod reshard_search;
mod rules;

pub use collectives::{required_collectives, Explanation};
pub use error::{Result, ShardingError};
pub use export::{
    export_hlo, export_hlo_graph, export_jax, export_sdy, export_torch, parse_sdy, TorchStyle,
};
pub use propagate::{propagate, propagate_with, PropagateOptions, ShardedGraph};
pub use reason::{Phase, Reason};
pub use reshard::{local_type, reshard, same_layout, ReshardKind, ReshardStep};
