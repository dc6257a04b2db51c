//! The axis-based sharding of one value, and user annotations.

use serde::{Deserialize, Serialize};

use crate::mesh::Mesh;
use crate::op::ReduceFn;

/// How one tensor dim is split.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, PartialOrd, Ord)]
pub struct DimSharding {
    /// Mesh axes splitting this dim, major first; empty means replicated along this dim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub axes: Vec<String>,
    /// Whether propagation may shard this dim further (Shardy's `?`); closed dims stay as given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
}

impl DimSharding {
    pub fn replicated() -> Self {
        DimSharding::default()
    }

    pub fn on(axes: &[&str]) -> Self {
        DimSharding {
            axes: axes.iter().map(|a| a.to_string()).collect(),
            open: false,
        }
    }

    pub fn open() -> Self {
        DimSharding {
            axes: Vec::new(),
            open: true,
        }
    }
}

/// The sharding of one value over a mesh.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Sharding {
    pub dims: Vec<DimSharding>,
    /// Axes over which the value is a pending partial reduction (`Partial` in DTensor, unreduced
    /// in Shardy); each device holds a summand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<String>,
    /// The pending reduction (sum unless a max/min reduction left it).
    #[serde(default = "sum", skip_serializing_if = "is_sum")]
    pub partial_fn: ReduceFn,
}

fn sum() -> ReduceFn {
    ReduceFn::Sum
}

fn is_sum(f: &ReduceFn) -> bool {
    *f == ReduceFn::Sum
}

impl Sharding {
    /// Fully replicated over a tensor of `rank` dims.
    pub fn replicated(rank: usize) -> Self {
        Sharding {
            dims: vec![DimSharding::replicated(); rank],
            partial: Vec::new(),
            partial_fn: ReduceFn::Sum,
        }
    }

    /// From one entry per dim: `None` replicated, `Some(&["dp"])` split over `dp`.
    pub fn from_dims(dims: &[&[&str]]) -> Self {
        Sharding {
            dims: dims.iter().map(|a| DimSharding::on(a)).collect(),
            partial: Vec::new(),
            partial_fn: ReduceFn::Sum,
        }
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Every axis that splits a dim or is partial, in order of appearance.
    pub fn used_axes(&self) -> Vec<&str> {
        self.dims
            .iter()
            .flat_map(|d| d.axes.iter())
            .chain(&self.partial)
            .map(String::as_str)
            .collect()
    }

    pub fn is_replicated(&self) -> bool {
        self.partial.is_empty() && self.dims.iter().all(|d| d.axes.is_empty())
    }

    /// How many shards dim `d` is split into on `mesh`.
    pub fn shards_of_dim(&self, mesh: &Mesh, d: usize) -> u64 {
        self.dims[d]
            .axes
            .iter()
            .map(|a| mesh.axis_size(a).unwrap_or(1))
            .product()
    }

    /// The local (per-device) extent of a dim of global size `size`: `ceil(size / shards)`, as
    /// XLA pads uneven shards.
    pub fn local_dim(&self, mesh: &Mesh, d: usize, size: u64) -> u64 {
        size.div_ceil(self.shards_of_dim(mesh, d).max(1))
    }

    /// Checks the sharding against a mesh and a rank: axes exist, none used twice.
    pub fn validate(&self, mesh: &Mesh, rank: usize) -> Result<(), String> {
        if self.dims.len() != rank {
            return Err(format!(
                "sharding has {} dims, the value has rank {rank}",
                self.dims.len()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in self.used_axes() {
            if mesh.axis_size(a).is_none() {
                return Err(format!(
                    "mesh has no axis `{a}` (axes: {})",
                    mesh.axis_names().join(", ")
                ));
            }
            if !seen.insert(a) {
                return Err(format!("axis `{a}` is used twice"));
            }
        }
        Ok(())
    }
}

/// Which way shardings may cross a propagation barrier (Shardy's `sdy.propagation_barrier`
/// `allowed_direction`; XLA's `ShardBarrierFrom` allows only backward, `ShardBarrierTo` only
/// forward).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedDirection {
    /// Neither way: the barrier's operand and result are sharded independently.
    None,
    /// From the operand to the result only.
    Forward,
    /// From the result to the operand only.
    Backward,
}

/// A user's sharding annotation on a named value. Lower `priority` numbers win (Shardy's `p0`
/// before `p1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub value: String,
    pub sharding: Sharding,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: u32,
}

fn is_zero(p: &u32) -> bool {
    *p == 0
}

/// A sharding for every value of a graph, over one mesh: what propagation (or the automatic
/// planner) produces and what the cost model and the partitioner read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardingAssignment {
    pub mesh: Mesh,
    /// `shardings[v]` is the sharding of `ValueId(v)`.
    pub shardings: Vec<Sharding>,
}
