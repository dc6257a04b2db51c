//! What the partitioner produces: the per-device program of a stage and how its inputs and
//! outputs relate to the values of the original graph.

use serde::Serialize;
use shardc_ir::{Graph, Sharding, TensorType, ValueId};

/// One value that crosses the program boundary: an input fed to every device as its local shard,
/// or an output each device holds a shard of.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardedValue {
    /// The value's name in the original graph.
    pub name: String,
    /// The value in the original graph.
    pub source: ValueId,
    /// The value in the local program.
    pub local: ValueId,
    /// Its type in the original graph.
    pub global: TensorType,
    /// How the global value is split over the mesh (never partial at the boundary).
    pub sharding: Sharding,
}

/// The program one pipeline stage runs: the same graph on every device of the stage's mesh,
/// parameterised by the device's coordinates through `axis_index`.
#[derive(Clone, Debug, PartialEq)]
pub struct SpmdProgram {
    /// Pipeline stage index (0 when the graph is not pipelined).
    pub stage: u32,
    /// The local program; its `mesh` is set and it passes `shardc_ir::verify`.
    pub graph: Graph,
    /// The program's inputs, in the order of `graph.inputs()`.
    pub inputs: Vec<ShardedValue>,
    /// The program's outputs, in the order of `graph.outputs`.
    pub outputs: Vec<ShardedValue>,
}

impl SpmdProgram {
    /// How many collectives of each kind the program runs, by op name (sorted).
    pub fn collective_counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for n in &self.graph.nodes {
            if n.op.is_collective() {
                *counts.entry(n.op.name()).or_insert(0usize) += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// The readable text dump of the local program, collectives marked with `<<`, followed by
    /// the boundary values and their shardings.
    pub fn dump(&self) -> String {
        let text = shardc_ir::dump(&self.graph);
        let mut out = String::with_capacity(text.len() + 256);
        for line in text.lines() {
            out.push_str(line);
            let is_collective = line
                .split_once(" = ")
                .map(|(_, rhs)| {
                    COLLECTIVE_NAMES
                        .iter()
                        .any(|c| rhs.starts_with(&format!("{c}(")))
                })
                .unwrap_or(false);
            if is_collective {
                out.push_str("  << collective");
            }
            out.push('\n');
        }
        for (what, vals) in [("input", &self.inputs), ("output", &self.outputs)] {
            for v in vals {
                out.push_str(&format!(
                    "{what} {} {} : {} as {}\n",
                    v.local,
                    v.name,
                    v.global,
                    crate::sharding_text(&v.sharding)
                ));
            }
        }
        out
    }
}

const COLLECTIVE_NAMES: [&str; 7] = [
    "all_reduce",
    "all_gather",
    "reduce_scatter",
    "all_to_all",
    "collective_permute",
    "send",
    "recv",
];
