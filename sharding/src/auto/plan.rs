//! `Plan`: what the planner chose and what it predicts, as one serializable value with a
//! readable report. The JSON format is documented in `docs/plan-format.md`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use shardc_cost_model::Zero;
use shardc_ir::{Graph, Mesh, Sharding, ShardingAssignment};

use crate::error::{Result, ShardingError};
use crate::format::jax;

/// The version of the plan JSON format this crate writes and reads.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// The cluster a plan was made for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCluster {
    /// Catalog key of the device (`a100-80gb`).
    pub device: String,
    pub nodes: u32,
    pub devices_per_node: u32,
}

impl PlanCluster {
    /// The cluster spec `Cluster::parse` reads back (`a100-80gb:32x8`).
    pub fn spec(&self) -> String {
        format!("{}:{}x{}", self.device, self.nodes, self.devices_per_node)
    }
}

/// Memory of one device by category, in bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanMemory {
    pub weights: f64,
    pub gradients: f64,
    pub optimizer_state: f64,
    /// Activations held for the backward pass.
    pub activations: f64,
    /// The largest short-lived buffer on top.
    pub transient: f64,
    /// The device's memory.
    pub capacity: f64,
}

impl From<&shardc_cost_model::MemoryBreakdown> for PlanMemory {
    fn from(m: &shardc_cost_model::MemoryBreakdown) -> Self {
        PlanMemory {
            weights: m.weights,
            gradients: m.gradients,
            optimizer_state: m.optimizer_state,
            activations: m.activations,
            transient: m.transient,
            capacity: m.capacity,
        }
    }
}

impl PlanMemory {
    /// Bytes in all categories.
    pub fn total(&self) -> f64 {
        self.weights + self.gradients + self.optimizer_state + self.activations + self.transient
    }

    /// The category holding the most, with its bytes.
    pub fn dominant(&self) -> (&'static str, f64) {
        [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("optimizer state", self.optimizer_state),
            ("activations", self.activations),
            ("transient buffers", self.transient),
        ]
        .into_iter()
        .fold(("weights", f64::NEG_INFINITY), |best, c| {
            if c.1 > best.1 {
                c
            } else {
                best
            }
        })
    }
}

/// One value's sharding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanValue {
    /// The value's name in the graph.
    pub value: String,
    pub sharding: Sharding,
    /// The value is a parameter (listed in the report).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parameter: bool,
}

/// One collective the plan implies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanCollective {
    /// The op that needs it.
    pub op: String,
    /// `all_reduce`, `all_gather`, `reduce_scatter`, `all_to_all`, `collective_permute`.
    pub kind: String,
    /// Mesh axes it runs over.
    pub axes: Vec<String>,
    /// The full buffer of one call, bytes.
    pub bytes: f64,
    /// Seconds of one call.
    pub seconds: f64,
    /// Why it is there.
    pub reason: String,
}

/// A plan: the mesh, every value's sharding, ZeRO stage and micro-batches, and what the cost
/// model predicts for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_FORMAT_VERSION`].
    pub format_version: u32,
    /// The graph's name and node count (a plan applies to that graph only).
    pub graph: String,
    pub graph_nodes: usize,
    pub cluster: PlanCluster,
    /// The mesh, last axis innermost.
    pub mesh: Mesh,
    /// The strategy in words (`tensor parallel 8 within each node, data parallel 32 across
    /// nodes, ZeRO-1`).
    pub strategy: String,
    pub zero: Zero,
    pub micro_batches: u64,
    pub step_time_s: f64,
    /// FLOP/s per device the step's model FLOPs reach (what MFU counts).
    pub model_tflops_per_device: f64,
    /// FLOP/s per device of what runs, recomputation included.
    pub hardware_tflops_per_device: f64,
    pub memory: PlanMemory,
    /// Every value of the graph, in node order.
    pub shardings: Vec<PlanValue>,
    pub collectives: Vec<PlanCollective>,
    /// Pipeline stages, schedule and submeshes (written by the pipeline planner; absent for a
    /// plan within one stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<serde_json::Value>,
    /// The gradient all-reduce algorithm (absent: the ring; `docs/plan-format.md`).
    #[serde(default, skip_serializing_if = "super::PlanAllReduce::is_ring")]
    pub allreduce: super::PlanAllReduce,
}

fn plan_err(message: String) -> ShardingError {
    ShardingError::Invalid {
        value: "plan".into(),
        message,
    }
}

impl Plan {
    /// The plan as pretty JSON (deterministic: the same plan gives the same bytes).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("invariant: a plan serializes");
        s.push('\n');
        s
    }

    /// Reads a plan; `what` names the source in errors.
    pub fn from_json(what: &str, text: &str) -> Result<Plan> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| plan_err(format!("{what}: not JSON: {e}")))?;
        match v.get("format_version").and_then(|x| x.as_u64()) {
            Some(n) if n == PLAN_FORMAT_VERSION as u64 => {}
            Some(n) => {
                return Err(plan_err(format!(
                    "{what}: plan format version {n}, this shardc reads version \
                     {PLAN_FORMAT_VERSION}"
                )))
            }
            None => {
                return Err(plan_err(format!(
                    "{what}: no `format_version`: not a shardc plan"
                )))
            }
        }
        let plan: Plan = serde_json::from_value(v).map_err(|e| plan_err(format!("{what}: {e}")))?;
        plan.mesh
            .validate()
            .map_err(|e| plan_err(format!("{what}: mesh: {e}")))?;
        Ok(plan)
    }

    /// The plan's shardings as an assignment of `graph`, checked to be the graph it was made
    /// for: every value named, in order, each sharding valid for its value on the plan's mesh.
    pub fn assignment(&self, graph: &Graph) -> Result<ShardingAssignment> {
        if self.shardings.len() != graph.len() {
            return Err(plan_err(format!(
                "the plan has {} values (graph `{}`), graph `{}` has {}: a plan for another graph",
                self.shardings.len(),
                self.graph,
                graph.name,
                graph.len()
            )));
        }
        let mut out = Vec::with_capacity(graph.len());
        for (v, pv) in graph.ids().zip(&self.shardings) {
            let name = &graph.node(v).name;
            if &pv.value != name {
                return Err(plan_err(format!(
                    "value {} is `{}` in the plan, `{name}` in graph `{}`: a plan for another graph",
                    v.index(),
                    pv.value,
                    graph.name
                )));
            }
            pv.sharding
                .validate(&self.mesh, graph.ty(v).rank())
                .map_err(|m| plan_err(format!("sharding of `{name}`: {m}")))?;
            out.push(pv.sharding.clone());
        }
        Ok(ShardingAssignment {
            mesh: self.mesh.clone(),
            shardings: out,
        })
    }

    /// The readable report: the strategy in words, then the figures, memory, collectives and
    /// the shardings of the parameters.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let gb = |b: f64| b / 1e9;
        let _ = writeln!(s, "plan for `{}` on {}", self.graph, self.cluster.spec());
        let _ = writeln!(s, "strategy: {}", self.strategy);
        let _ = writeln!(
            s,
            "mesh {} ({} devices), ZeRO {}, {} micro-batch{}",
            self.mesh,
            self.mesh.num_devices(),
            zero_name(self.zero),
            self.micro_batches,
            if self.micro_batches == 1 { "" } else { "es" }
        );
        let _ = writeln!(
            s,
            "predicted step {}, {:.1} model TFLOP/s per device ({:.1} hardware)",
            seconds(self.step_time_s),
            self.model_tflops_per_device,
            self.hardware_tflops_per_device
        );
        let m = &self.memory;
        let _ = writeln!(
            s,
            "memory per device {:.3} GB of {:.1} GB: weights {:.3}, gradients {:.3}, optimizer \
             {:.3}, activations {:.3}, transient {:.3}",
            gb(m.total()),
            gb(m.capacity),
            gb(m.weights),
            gb(m.gradients),
            gb(m.optimizer_state),
            gb(m.activations),
            gb(m.transient)
        );
        if let Some(line) = self.allreduce.report_line() {
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s, "collectives ({}):", self.collectives.len());
        let mut kinds: std::collections::BTreeMap<(String, String), (usize, f64, f64)> =
            Default::default();
        for c in &self.collectives {
            let e = kinds.entry((c.kind.clone(), c.axes.join(","))).or_default();
            e.0 += 1;
            e.1 += c.bytes;
            e.2 += c.seconds;
        }
        for ((kind, axes), (n, bytes, secs)) in &kinds {
            let _ = writeln!(
                s,
                "  {n} x {kind} over {axes}: {:.3} MB in all, {}",
                bytes / 1e6,
                seconds(*secs)
            );
        }
        // Parameters, layers folded: `layers.*.mlp.fc1.weight` once per distinct sharding.
        let mut params: std::collections::BTreeMap<(String, String), usize> = Default::default();
        let mut order = Vec::new();
        for v in self.shardings.iter().filter(|v| v.parameter) {
            let key = (layer_pattern(&v.value), jax(&v.sharding));
            let n = params.entry(key.clone()).or_insert(0);
            if *n == 0 {
                order.push(key);
            }
            *n += 1;
        }
        let _ = writeln!(s, "parameters:");
        for key in order {
            let n = params[&key];
            let times = if n > 1 {
                format!(" (x{n})")
            } else {
                String::new()
            };
            let _ = writeln!(s, "  {} {}{times}", key.0, key.1);
        }
        s
    }
}

/// Seconds in ms, or µs below a millisecond.
fn seconds(t: f64) -> String {
    if t >= 1e-3 {
        format!("{:.3} ms", t * 1e3)
    } else {
        format!("{:.3} µs", t * 1e6)
    }
}

/// `none`, `1`, `2`, `3`.
pub(crate) fn zero_name(z: Zero) -> &'static str {
    match z {
        Zero::None => "none",
        Zero::Stage1 => "1",
        Zero::Stage2 => "2",
        Zero::Stage3 => "3",
    }
}

/// A name with its numeric path parts (layer indices) written `*`.
fn layer_pattern(name: &str) -> String {
    name.split('.')
        .map(|p| if p.parse::<u64>().is_ok() { "*" } else { p })
        .collect::<Vec<_>>()
        .join(".")
}
