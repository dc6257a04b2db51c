//! The plan's data-parallel gradient all-reduce algorithm (`allreduce` in
//! `docs/plan-format.md`): the ring among the devices, or the Reduction Server on the
//! cluster's CPU reducer nodes (REFERENCES.md, Vertex AI Reduction Server), chosen where the
//! cost model finds it cheaper.

use serde::{Deserialize, Serialize};

/// How the plan's gradient all-reduces run. Absent from a plan file: the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PlanAllReduce {
    /// Among the devices (reduce-scatter then all-gather).
    #[default]
    Ring,
    /// Through `reducers` reducer nodes that hold no device: every worker sends each reducer
    /// its share of the gradients and gets the sum back.
    ReductionServer {
        /// Reducer nodes (the cluster's `+R`).
        reducers: u32,
        /// The cost model's throughput gain over the ring for the same plan (0.38 is +38%).
        predicted_gain: f64,
    },
}

impl PlanAllReduce {
    /// Whether this is the ring (written as nothing).
    pub fn is_ring(&self) -> bool {
        matches!(self, PlanAllReduce::Ring)
    }

    /// The report's line for it (`None` for the ring, the default).
    pub fn report_line(&self) -> Option<String> {
        match self {
            PlanAllReduce::Ring => None,
            PlanAllReduce::ReductionServer {
                reducers,
                predicted_gain,
            } => Some(format!(
                "gradient all-reduce: Reduction Server on {reducers} reducer nodes, predicted \
                 {:+.0}% throughput over the ring",
                predicted_gain * 100.0
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_is_the_default_and_the_server_round_trips() {
        let rs = PlanAllReduce::ReductionServer {
            reducers: 20,
            predicted_gain: 0.38,
        };
        let text = serde_json::to_string(&rs).unwrap();
        assert_eq!(
            text,
            r#"{"algorithm":"reduction-server","reducers":20,"predicted_gain":0.38}"#
        );
        assert_eq!(serde_json::from_str::<PlanAllReduce>(&text).unwrap(), rs);
        assert!(PlanAllReduce::default().is_ring());
        let bad = serde_json::from_str::<PlanAllReduce>(r#"{"algorithm":"tree"}"#);
        assert!(bad.unwrap_err().to_string().contains("tree"));
    }
}
