//! The planner's one door into the cost model: the time of an op on one device and of a
//! collective on the cluster, and what the whole step of a chosen assignment costs.
//!
//! Everything the planner prices goes through here, so that the cost model's finer queries
//! (fusion, per-op efficiency, overlap) replace these bodies without touching the planner.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use shardc_cost_model::{
    estimate_graph, op_time, price, Cluster, CollectiveKind, CommUse, Estimate, GraphOptions,
    GroupPlacement, OpClass, OpWork, Precision,
};
use shardc_ir::{Graph, Mesh, Op, Sharding, ShardingAssignment, TensorType};

use crate::error::{Result, ShardingError};

/// Prices ops and collectives on one mesh of one cluster, caching where groups sit.
pub(crate) struct Pricing<'a> {
    pub cluster: &'a Cluster,
    pub mesh: &'a Mesh,
    placements: RefCell<BTreeMap<Vec<String>, GroupPlacement>>,
    /// Seconds of resharding by (from, to, global type): edges of one layer repeat the same
    /// few pairs many times (a lookup, never iterated, so its order cannot reach output).
    reshards: RefCell<HashMap<(Sharding, Sharding, TensorType), f64>>,
}

fn cost_err(e: impl std::fmt::Display) -> ShardingError {
    ShardingError::Invalid {
        value: "cost model".into(),
        message: e.to_string(),
    }
}

impl<'a> Pricing<'a> {
    pub fn new(cluster: &'a Cluster, mesh: &'a Mesh) -> Result<Self> {
        cluster.check_mesh(mesh).map_err(cost_err)?;
        Ok(Pricing {
            cluster,
            mesh,
            placements: RefCell::new(BTreeMap::new()),
            reshards: RefCell::new(HashMap::new()),
        })
    }

    /// Seconds of one op on one device doing `flops` and moving `bytes` (roofline at the op
    /// class's achievable fraction of peak).
    pub fn op_seconds(&self, op: &Op, ty: &TensorType, flops: f64, bytes: f64) -> f64 {
        let class = OpClass::of(op);
        if class == OpClass::Free {
            return 0.0;
        }
        let w = OpWork {
            class,
            precision: Precision::of(ty.dtype, false),
            flops,
            bytes,
        };
        op_time(&w, self.cluster)
    }

    /// Seconds of resharding a `ty` value from `from` to `to`, `price` computing it the first
    /// time a pair is asked for.
    pub fn reshard_cached(
        &self,
        from: &Sharding,
        to: &Sharding,
        ty: &TensorType,
        price: impl FnOnce() -> Result<f64>,
    ) -> Result<f64> {
        let key = (from.clone(), to.clone(), ty.clone());
        if let Some(&t) = self.reshards.borrow().get(&key) {
            return Ok(t);
        }
        let t = price()?;
        self.reshards.borrow_mut().insert(key, t);
        Ok(t)
    }

    /// Where the group of a collective over `axes` sits.
    pub fn placement(&self, axes: &[String]) -> Result<GroupPlacement> {
        if let Some(p) = self.placements.borrow().get(axes) {
            return Ok(*p);
        }
        let p = self.cluster.placement(self.mesh, axes).map_err(cost_err)?;
        self.placements.borrow_mut().insert(axes.to_vec(), p);
        Ok(p)
    }

    /// Seconds of one collective (the cheapest algorithm for its group).
    pub fn collective_seconds(&self, op: &Op, local_operand: &TensorType) -> Result<f64> {
        let Some(kind) = CollectiveKind::of(op) else {
            return Ok(0.0);
        };
        let place = self.placement(&op.collective_axes())?;
        let local = local_operand.size_bytes() as f64;
        let s = match op {
            Op::AllGather { .. } => local * place.ranks as f64,
            _ => local,
        };
        Ok(price(kind, s, place, self.mesh.num_devices(), self.cluster).seconds)
    }

    /// Seconds of all-gathering `full_bytes` over `axes` (ZeRO-3's weight gathers).
    pub fn all_gather_seconds(&self, full_bytes: f64, axes: &[String]) -> Result<f64> {
        let place = self.placement(axes)?;
        let c = price(
            CollectiveKind::AllGather,
            full_bytes,
            place,
            self.mesh.num_devices(),
            self.cluster,
        );
        Ok(c.seconds)
    }
}

/// The cost model's estimate of a whole step under `assignment`.
pub(crate) fn step_estimate(
    g: &Graph,
    assignment: &ShardingAssignment,
    comms: &[CommUse],
    cluster: &Cluster,
    opts: &GraphOptions,
) -> Result<Estimate> {
    estimate_graph(g, assignment, comms, cluster, opts).map_err(cost_err)
}
