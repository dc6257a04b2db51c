//! The brute-force reference the planner's quality is measured against: every Megatron-style
//! configuration of a GPT training step on a cluster (data parallel `dp` across, tensor parallel
//! `tp` within a node, sequence parallelism on or off, ZeRO stage, micro-batch size), each
//! built with the zoo's hand-written Megatron annotations, completed by propagation and priced
//! by the same whole-step estimate the planner's candidates get, ZeRO-3's weight gathers
//! included. Nothing is solved, only priced, so the sweep is as fast as the cost model.

use shardc_cost_model::{Cluster, GraphOptions, Zero};
use shardc_ir::zoo::{gpt, GptConfig, GptShardings};
use shardc_ir::{training_step, Graph, Mesh, TrainOptions};

use super::cost::{step_estimate, Pricing};
use super::model::{carry_seconds, zero3_gather_seconds, StepOptions};
use super::plan::PlanMemory;
use crate::collectives::required_collectives_unpaired;
use crate::error::{Result, ShardingError};
use crate::propagate::propagate;

/// One Megatron-style configuration: the mesh is `dp=D,tp=T` (`tp` innermost, inside a node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MegatronConfig {
    /// Data-parallel replicas.
    pub dp: u64,
    /// Tensor-parallel ranks within a node (Megatron-LM's `t`).
    pub tp: u64,
    /// Korthikanti et al.'s sequence parallelism on the residual stream.
    pub sequence_parallel: bool,
    /// ZeRO stage over `dp`.
    pub zero: Zero,
    /// Micro-batches the batch is split into (gradient accumulation).
    pub micro_batches: u64,
}

impl std::fmt::Display for MegatronConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dp={} tp={} sp={} ZeRO-{} m={}",
            self.dp,
            self.tp,
            if self.sequence_parallel { "on" } else { "off" },
            super::plan::zero_name(self.zero),
            self.micro_batches
        )
    }
}

/// One priced configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPoint {
    pub config: MegatronConfig,
    /// Predicted step time (seconds), ZeRO-3's gathers included as the planner prices them.
    pub step_time_s: f64,
    /// Hardware FLOP/s per device (recomputation counted), over the whole step time.
    pub hardware_tflops_per_device: f64,
    pub memory: PlanMemory,
    /// The memory fits the limit the sweep was given.
    pub fits: bool,
}

/// What the sweep covers.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepOptions {
    /// Sequences per micro-batch per data-parallel rank tried (Megatron-LM's
    /// `--micro-batch-size`); sizes that do not divide the rank's share are skipped.
    pub micro_batch_sizes: Vec<u64>,
    /// Bytes per device a configuration may use (default and at most: the device's memory).
    pub memory_limit_bytes: Option<f64>,
}

impl Default for SweepOptions {
    /// Micro-batch sizes 1, 2, 4 and 8, the device's memory.
    fn default() -> Self {
        SweepOptions {
            micro_batch_sizes: vec![1, 2, 4, 8],
            memory_limit_bytes: None,
        }
    }
}

/// Every tensor-parallel size the sweep tries: divisors of a node's device count that also
/// divide the heads, the vocabulary and the device count, with a `dp` that divides the batch.
fn tensor_sizes(cfg: &GptConfig, cluster: &Cluster) -> Vec<u64> {
    let n = cluster.num_devices();
    let per_node = cluster.devices_per_node as u64;
    (1..=per_node)
        .filter(|t| {
            per_node % t == 0
                && n % t == 0
                && cfg.heads % t == 0
                && cfg.vocab % t == 0
                && cfg.batch % (n / t) == 0
        })
        .collect()
}

fn invalid(message: String) -> ShardingError {
    ShardingError::Invalid {
        value: "megatron sweep".into(),
        message,
    }
}

/// The training graph of `cfg` with Megatron's annotations on `mesh`.
fn megatron_graph(
    cfg: &GptConfig,
    train: &TrainOptions,
    mesh: &Mesh,
    sequence_parallel: bool,
) -> Result<Graph> {
    let shardings = if sequence_parallel {
        GptShardings::MegatronSequenceParallel(mesh.clone())
    } else {
        GptShardings::Megatron(mesh.clone())
    };
    let fwd = gpt(&GptConfig {
        shardings,
        ..cfg.clone()
    })
    .map_err(|e| invalid(e.to_string()))?;
    let mut g = training_step(&fwd, train).map_err(|e| invalid(e.to_string()))?;
    shardc_ir::zoo::annotate_megatron_training(&mut g);
    Ok(g)
}

/// Prices every Megatron-style configuration of `cfg`'s training step (built with `train`) on
/// `cluster`, in order of `tp`, sequence parallelism, ZeRO stage and micro-batch count.
pub fn megatron_sweep(
    cfg: &GptConfig,
    train: &TrainOptions,
    cluster: &Cluster,
    opts: &SweepOptions,
) -> Result<Vec<SweepPoint>> {
    let n = cluster.num_devices();
    let capacity = cluster.device.memory.capacity_bytes as f64;
    let limit = opts.memory_limit_bytes.unwrap_or(capacity).min(capacity);
    let tps = tensor_sizes(cfg, cluster);
    if tps.is_empty() {
        return Err(invalid(format!(
            "no tensor-parallel size fits {} heads, vocabulary {} and batch {} on {n} devices \
             ({} per node)",
            cfg.heads, cfg.vocab, cfg.batch, cluster.devices_per_node
        )));
    }
    let mut out = Vec::new();
    for tp in tps {
        let dp = n / tp;
        let mut axes: Vec<(&str, u64)> = vec![("dp", dp)];
        if tp > 1 {
            axes.push(("tp", tp));
        }
        let mesh = Mesh::new(&axes).map_err(|e| invalid(e.to_string()))?;
        let data_axis = (dp > 1).then(|| "dp".to_string());
        let sps: &[bool] = if tp > 1 { &[false, true] } else { &[false] };
        for &sp in sps {
            let g = megatron_graph(cfg, train, &mesh, sp)?;
            let assignment = propagate(&g, &mesh, &g.annotations)?.assignment;
            let like = super::layers::classes(&g).representatives();
            let comms = required_collectives_unpaired(&g, &assignment, &like)?;
            let pricing = Pricing::new(cluster, &mesh)?;
            let zeros: &[Zero] = if dp > 1 {
                &[Zero::None, Zero::Stage1, Zero::Stage2, Zero::Stage3]
            } else {
                &[Zero::None]
            };
            for &zero in zeros {
                // ZeRO-3's gathers of the parameters the assignment leaves whole over `dp`,
                // exactly as the planner adds them to its candidates.
                let step = StepOptions {
                    zero,
                    data_axis: data_axis.clone(),
                    micro_batches: 1,
                    memory_limit: None,
                };
                let gathers = zero3_gather_seconds(&g, &assignment, &pricing, &step)?
                    + carry_seconds(&g, &assignment, &pricing)?;
                for &b in &opts.micro_batch_sizes {
                    let per_rank = cfg.batch / dp;
                    if b == 0 || per_rank % b != 0 {
                        continue;
                    }
                    let m = per_rank / b;
                    let gopts = GraphOptions {
                        micro_batches: m,
                        data_axis: data_axis.clone(),
                        zero,
                        ..GraphOptions::default()
                    };
                    let e = step_estimate(&g, &assignment, &comms, cluster, &gopts)?;
                    let mem = &e.memory;
                    let memory = PlanMemory::from(mem);
                    let step_time_s = e.step_time_s + gathers;
                    let scale = if step_time_s > 0.0 {
                        e.step_time_s / step_time_s
                    } else {
                        1.0
                    };
                    out.push(SweepPoint {
                        config: MegatronConfig {
                            dp,
                            tp,
                            sequence_parallel: sp,
                            zero,
                            micro_batches: m,
                        },
                        step_time_s,
                        hardware_tflops_per_device: e.hardware_tflops_per_device * scale,
                        fits: memory.total() <= limit,
                        memory,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The fastest configuration that fits, if any.
pub fn best_fitting(points: &[SweepPoint]) -> Option<&SweepPoint> {
    points
        .iter()
        .filter(|p| p.fits)
        .min_by(|a, b| a.step_time_s.total_cmp(&b.step_time_s))
}
