//! The SPMD partitioner: from a graph where every value has a sharding to one program per
//! pipeline stage, the same on every device of the stage's mesh and parameterised by the device's
//! mesh coordinates (`axis_index`), with local shapes, collectives, halo exchanges and padding of
//! uneven shards; and collective simplification with egg.
//!
//! Everything is derived from the op factors (`shardc_ir::OpFactors`): a split pass-through
//! factor needs no communication, a split reduction factor leaves a pending sum, a split window
//! factor needs a halo. Codegen follows the sharding it is given; it never chooses one.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod data;
mod error;
mod partition;
mod program;
mod reshard;
mod simplify;
mod stage;
mod stage_spmd;
mod window;

pub use data::{gather_outputs, shard_array, shard_inputs, unshard_array};
pub use error::{CodegenError, Result};
pub use partition::partition;
pub use program::{ShardedValue, SpmdProgram};
pub use reshard::{local_dims, local_type};
pub use simplify::{simplify, DEFAULT_BUCKET_BYTES};
pub use stage::{cut_stages, StageProgram};
pub use stage_spmd::{partition_stages, SpmdStage};

/// A sharding in Shardy's notation: `[{"dp"}, {}]`, then `partial={"tp"}` if it has pending sums.
pub fn sharding_text(s: &shardc_ir::Sharding) -> String {
    let dims: Vec<String> = s
        .dims
        .iter()
        .map(|d| {
            let axes: Vec<String> = d.axes.iter().map(|a| format!("\"{a}\"")).collect();
            format!("{{{}}}", axes.join(", "))
        })
        .collect();
    let mut out = format!("[{}]", dims.join(", "));
    if !s.partial.is_empty() {
        let axes: Vec<String> = s.partial.iter().map(|a| format!("\"{a}\"")).collect();
        out.push_str(&format!(
            " partial({})={{{}}}",
            s.partial_fn.name(),
            axes.join(", ")
        ));
    }
    out
}
