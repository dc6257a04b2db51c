//! shardc's intermediate representation: tensor types, the closed op set and its factors, the
//! SSA graph with its verifier, JSON format and text dump, meshes and shardings (with the
//! notations users write them in), and the model zoo.
//!
//! `ir` knows nothing about devices' speed, costs or how a graph will be split: it describes what
//! is computed and what the user asked for.
//!
//! ```
//! use shardc_ir::{Graph, Op, TensorType, DType, Role, BinaryFn, verify};
//! let mut g = Graph::new("tiny");
//! let x = g.push("x", Op::Input { init: None }, vec![], Some(TensorType::new(DType::F32, vec![4]))).unwrap();
//! g.nodes[x.index()].role = Role::Input;
//! let y = g.push("y", Op::Binary { func: BinaryFn::Add }, vec![x, x], None).unwrap();
//! g.outputs.push(y);
//! verify(&g).unwrap();
//! assert_eq!(g.ty(y).to_string(), "f32[4]");
//! ```

#![forbid(unsafe_code)]

pub mod autodiff;
mod dtype;
mod dump;
mod error;
mod factors;
mod graph;
pub mod hlo;
mod json;
pub mod manual;
mod mesh;
pub mod onnx;
mod op;
mod ops;
pub mod sharding;
pub mod stablehlo;
mod stats;
pub mod train;
mod types;
mod verify;
pub mod zoo;

pub use autodiff::grad;
pub use dtype::DType;
pub use dump::{dump, dump_with};
pub use error::{IrError, Result};
pub use factors::{Factor, FactorKind, OpFactors};
pub use graph::{Graph, Node, Phase, Role, Training, ValueId};
pub use json::{from_json, to_json, FORMAT, VERSION};
pub use mesh::{Mesh, MeshAxis};
pub use op::{
    BinaryFn, CompareDir, Conv, ConvDims, GatherDims, Init, Literal, Op, ReduceFn, ScatterDims,
    UnaryFn, Window,
};
pub use ops::{op_factors, GatherGeometry, ScatterGeometry};
pub use sharding::{AllowedDirection, Annotation, DimSharding, Sharding, ShardingAssignment};
pub use stats::GraphStats;
pub use train::{training_step, Optimizer, RecomputeMode, TrainOptions};
pub use types::{Shape, TensorType};
pub use verify::{debug_verify, verify};
