//! Stage slicing: Alpa's inter-operator DP (Zheng et al. 2022, REFERENCES.md "Automatic
//! planners"): cut the layer list into contiguous stages, give each a submesh of shape `(1, 2^i)`
//! or `(k, devices_per_host)`, using every device, and minimise `Σ t_i + (B − 1)·max_j t_j` over
//! the stages' per-micro-batch times `t_i`. Each stage's time and memory come from a cost
//! function passed in ([`StageCost`]), so the intra-stage planner can plug in; [`GptStageCost`]
//! is the default, priced from the cost model's catalog. The first and last entries of the layer
//! list are whatever the model puts there (a GPT's embedding and LM head), priced on the stage
//! that holds them; no stage is empty.

use std::ops::Range;

use shardc_cost_model::{ring_all_reduce, Cluster, GptShape, Precision};

use crate::error::{Error, Result};

/// A submesh: `hosts × devices_per_host` devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Submesh {
    /// Hosts (nodes).
    pub hosts: u32,
    /// Devices on each host.
    pub devices_per_host: u32,
}

impl Submesh {
    /// Devices in the submesh.
    pub fn devices(&self) -> u32 {
        self.hosts * self.devices_per_host
    }
}

/// One stage's estimate for one micro-batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageEstimate {
    /// Forward plus backward time of one micro-batch, seconds.
    pub time: f64,
    /// Bytes per device held regardless of micro-batches (weights, gradients, optimizer state).
    pub static_bytes: f64,
    /// Activation bytes per device per micro-batch in flight.
    pub activation_bytes: f64,
}

/// Prices a stage: layers `layers` of the model's layer list on `submesh`; `None` when the
/// stage cannot run there (the planner found no plan).
pub trait StageCost {
    /// The estimate for `layers` on `submesh`.
    fn estimate(&self, layers: Range<usize>, submesh: Submesh) -> Option<StageEstimate>;
}

impl<F: Fn(Range<usize>, Submesh) -> Option<StageEstimate>> StageCost for F {
    fn estimate(&self, layers: Range<usize>, submesh: Submesh) -> Option<StageEstimate> {
        self(layers, submesh)
    }
}

/// The problem: how many layers, the cluster's shape, micro-batches, memory per device.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceOptions {
    /// Entries of the layer list (a GPT: embedding, its blocks, the LM head).
    pub layers: usize,
    /// Hosts in the cluster.
    pub hosts: u32,
    /// Devices per host.
    pub devices_per_host: u32,
    /// Micro-batches `B`.
    pub microbatches: u32,
    /// Memory per device, bytes.
    pub memory_limit: f64,
    /// At most this many stages (`None`: up to one per layer).
    pub max_stages: Option<usize>,
}

/// One stage of a slicing.
#[derive(Clone, Debug, PartialEq)]
pub struct StagePlan {
    /// Its layers.
    pub layers: Range<usize>,
    /// Its submesh.
    pub submesh: Submesh,
    /// Its time per micro-batch.
    pub time: f64,
    /// Its peak memory per device under 1F1B (static + held micro-batches × activations).
    pub memory: f64,
}

/// The best slicing found.
#[derive(Clone, Debug, PartialEq)]
pub struct SlicePlan {
    /// Stages in order.
    pub stages: Vec<StagePlan>,
    /// `Σ t_i + (B − 1)·max t_j`.
    pub latency: f64,
}

/// The submesh shapes Alpa considers: `(1, 1), (1, 2), (1, 4), ..., (1, M)` and `(k, M)`.
pub fn submesh_shapes(hosts: u32, devices_per_host: u32) -> Vec<Submesh> {
    let mut shapes = Vec::new();
    let mut d = 1;
    while d < devices_per_host {
        shapes.push(Submesh {
            hosts: 1,
            devices_per_host: d,
        });
        d *= 2;
    }
    shapes.extend((1..=hosts).map(|k| Submesh {
        hosts: k,
        devices_per_host,
    }));
    shapes
}

/// Runs the DP. Memory: a stage `s` stages from the end holds `min(s, B)` micro-batches of
/// activations (1F1B), so the first stage, which holds the most, is where a plan stops fitting.
pub fn slice_stages(cost: &dyn StageCost, o: &SliceOptions) -> Result<SlicePlan> {
    let (l, dev) = (o.layers, o.hosts as usize * o.devices_per_host as usize);
    if l == 0 || dev == 0 || o.microbatches == 0 {
        return Err(Error::Input(
            "stage slicing needs at least one layer, one device and one micro-batch".into(),
        ));
    }
    let shapes = submesh_shapes(o.hosts, o.devices_per_host);
    let max_s = o.max_stages.unwrap_or(l).min(l).min(dev);
    // Bound the work before allocating: the table is l²·|shapes| estimates, the DP l·dev·max_s.
    let work = (l * l * shapes.len()) as f64 + (l * dev * max_s) as f64 * (l * shapes.len()) as f64;
    if work > 4e9 {
        return Err(Error::Input(format!(
            "stage slicing of {l} layers over {dev} devices is too large for the DP ({work:.1e} steps); group layers or limit --max-stages"
        )));
    }
    let table: Vec<Vec<Vec<Option<StageEstimate>>>> = (0..l)
        .map(|k| {
            (k + 1..=l)
                .map(|i| shapes.iter().map(|&m| cost.estimate(k..i, m)).collect())
                .collect()
        })
        .collect();
    let mut candidates: Vec<f64> = table
        .iter()
        .flatten()
        .flatten()
        .flatten()
        .map(|e| e.time)
        .filter(|t| t.is_finite())
        .collect();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let b = f64::from(o.microbatches);
    let mut best: Option<(f64, Vec<StagePlan>)> = None;
    for &t_max in &candidates {
        if best.as_ref().is_some_and(|(lat, _)| b * t_max >= *lat) {
            break;
        }
        if let Some((sum, stages)) = dp_for(&table, &shapes, o, dev, max_s, t_max) {
            let lat = sum + (b - 1.0) * t_max;
            if best.as_ref().map_or(true, |(bl, _)| lat < *bl) {
                best = Some((lat, stages));
            }
        }
    }
    let (latency, stages) = best.ok_or_else(|| {
        Error::Input(format!(
            "no slicing of {l} layers over {dev} devices fits {:.3} GB per device",
            o.memory_limit / 1e9
        ))
    })?;
    Ok(SlicePlan { stages, latency })
}

/// `F(s, k, d)`: least `Σ t` slicing layers `k..` into `s` stages on exactly `d` devices, every
/// stage's time `≤ t_max` and memory within the limit. Returns the best over `s`.
fn dp_for(
    table: &[Vec<Vec<Option<StageEstimate>>>],
    shapes: &[Submesh],
    o: &SliceOptions,
    dev: usize,
    max_s: usize,
    t_max: f64,
) -> Option<(f64, Vec<StagePlan>)> {
    let l = table.len();
    const NONE: (f64, usize, usize) = (f64::INFINITY, 0, 0);
    // f[s][k][d] = (Σt, end layer, shape index) of the first stage of the best choice.
    let mut f = vec![vec![vec![NONE; dev + 1]; l + 1]; max_s + 1];
    let fits = |e: &StageEstimate, s: usize| {
        e.time <= t_max
            && e.static_bytes + (s as f64).min(f64::from(o.microbatches)) * e.activation_bytes
                <= o.memory_limit
    };
    for s in 1..=max_s {
        for k in (0..l).rev() {
            for d in 1..=dev {
                let mut cell = NONE;
                for i in k + 1..=l {
                    if s == 1 && i != l {
                        continue;
                    }
                    for (j, m) in shapes.iter().enumerate() {
                        let n = m.devices() as usize;
                        let Some(e) = table[k][i - k - 1][j].as_ref() else {
                            continue;
                        };
                        if n > d || !fits(e, s) {
                            continue;
                        }
                        let rest = if s == 1 {
                            if i == l && n == d {
                                0.0
                            } else {
                                f64::INFINITY
                            }
                        } else if i < l {
                            f[s - 1][i][d - n].0
                        } else {
                            f64::INFINITY
                        };
                        if e.time + rest < cell.0 {
                            cell = (e.time + rest, i, j);
                        }
                    }
                }
                f[s][k][d] = cell;
            }
        }
    }
    let s_best = (1..=max_s).min_by(|&a, &b| f[a][0][dev].0.total_cmp(&f[b][0][dev].0))?;
    if !f[s_best][0][dev].0.is_finite() {
        return None;
    }
    let (mut s, mut k, mut d) = (s_best, 0, dev);
    let mut stages = Vec::new();
    while s > 0 {
        let (_, i, j) = f[s][k][d];
        let e = table[k][i - k - 1][j]?;
        let held = (s as f64).min(f64::from(o.microbatches));
        stages.push(StagePlan {
            layers: k..i,
            submesh: shapes[j],
            time: e.time,
            memory: e.static_bytes + held * e.activation_bytes,
        });
        d -= shapes[j].devices() as usize;
        k = i;
        s -= 1;
    }
    Some((f[s_best][0][dev].0, stages))
}

/// The default stage cost for a GPT whose layer list is `[embedding, block × layers, LM head]`:
/// the blocks' FLOPs (`24·b·s·h² + 4·b·s²·h` forward, twice that backward), the head's
/// `2·b·s·h·V` (×3 with backward), at the device's achievable matmul rate over the stage's
/// devices (tensor parallel), plus Megatron's two all-reduces of `b·s·h` 16-bit values per block
/// forward and two backward; memory: 16 bytes per parameter (Adam, mixed precision) over the
/// devices, and Korthikanti's `s·b·h·(34 + 5·a·s/h)` activation bytes per block.
#[derive(Clone, Debug)]
pub struct GptStageCost {
    /// The model's shape.
    pub shape: GptShape,
    /// Sequences per micro-batch.
    pub micro_batch: u64,
    /// The cluster the stages run on.
    pub cluster: Cluster,
}

impl GptStageCost {
    /// Entries of the layer list: embedding, the blocks, the LM head.
    pub fn layer_count(&self) -> usize {
        self.shape.layers as usize + 2
    }
}

impl StageCost for GptStageCost {
    fn estimate(&self, layers: Range<usize>, submesh: Submesh) -> Option<StageEstimate> {
        let g = &self.shape;
        let (b, s, h, a, v) = (
            self.micro_batch as f64,
            g.seq as f64,
            g.hidden as f64,
            g.heads as f64,
            g.vocab as f64,
        );
        let last = self.layer_count() - 1;
        let blocks = layers.clone().filter(|&x| x != 0 && x != last).count() as f64;
        let (emb, head) = (layers.contains(&0), layers.contains(&last));
        let t = f64::from(submesh.devices());
        let dev = &self.cluster.device;
        let rate = dev.peak_flops.get(Precision::Bf16) * dev.achievable.matmul * t;
        let flops = 3.0
            * (blocks * (24.0 * b * s * h * h + 4.0 * b * s * s * h)
                + if head { 2.0 * b * s * h * v } else { 0.0 });
        let link = if submesh.hosts > 1 {
            self.cluster
                .network_for(u64::from(submesh.devices_per_host))
        } else {
            self.cluster.scale_up()
        };
        let all_reduce = if t > 1.0 {
            ring_all_reduce(submesh.devices().into(), 2.0 * b * s * h, link)
        } else {
            0.0
        };
        let time = flops / rate + 4.0 * blocks * all_reduce;
        let params =
            blocks * 12.0 * h * h + if emb { v * h } else { 0.0 } + if head { v * h } else { 0.0 };
        let activation = (blocks * s * b * h * (34.0 + 5.0 * a * s / h)
            + if head { 4.0 * b * s * v } else { 0.0 })
            / t;
        Some(StageEstimate {
            time,
            static_bytes: 16.0 * params / t,
            activation_bytes: activation,
        })
    }
}

/// Alpa's DP ([`slice_stages`]) for the pipelined planner's case: exactly `stages` stages,
/// each on the same submesh (the planner's (dp, tp) replica of a mesh), over `layers` layers;
/// `cost(range, held)` prices layers `range` as one stage holding `held` micro-batches of
/// activations (`min(stages − j, B)` for stage `j`, 1F1B; its `activation_bytes` are for all
/// of them, held against `memory_limit` with `static_bytes`), `None` where it cannot run. Every
/// stage gets at least one layer. Minimises `Σ t_i + (B − 1)·max t_j` over the maximum
/// stage times `t_max` in increasing order, stopping once `Σ_min + (B − 1)·t_max` (`Σ_min` the
/// least `Σ t` of any slicing) reaches the best found. Returns the layers per stage and the
/// latency.
pub fn slice_fixed(
    cost: &dyn Fn(Range<usize>, usize) -> Option<StageEstimate>,
    layers: usize,
    stages: usize,
    microbatches: u32,
    memory_limit: f64,
) -> Result<(Vec<usize>, f64)> {
    if stages == 0 || layers < stages || microbatches == 0 {
        return Err(Error::Input(format!(
            "slicing {layers} layers into {stages} non-empty stages with {microbatches} \
             micro-batches is impossible"
        )));
    }
    // A stage of `stages − j` from the end holds this many micro-batches.
    let held = |j: usize| (stages - j).min(microbatches as usize);
    // table[j][k][n]: stage j holding layers k..k+n+1, where every other stage can still get
    // one layer (j ≤ k, k + n + 1 ≤ layers − (stages − j − 1)).
    let span = layers - stages + 1;
    let mut table = vec![vec![vec![None; span]; layers]; stages];
    let mut candidates = Vec::new();
    for (j, row) in table.iter_mut().enumerate() {
        for k in j..=j + layers - stages {
            for n in 0..span {
                let end = k + n + 1;
                if end > layers - (stages - j - 1) {
                    break;
                }
                let e = cost(k..end, held(j)).filter(|e| e.time.is_finite());
                if let Some(e) = e {
                    if e.static_bytes + e.activation_bytes <= memory_limit {
                        candidates.push(e.time);
                        row[k][n] = Some(e);
                    }
                }
            }
        }
    }
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let b = f64::from(microbatches) - 1.0;
    let Some((sum_min, _)) = fixed_dp(&table, layers, f64::INFINITY) else {
        return Err(Error::Input(format!(
            "no slicing of {layers} layers into {stages} stages fits {:.3} GB per device",
            memory_limit / 1e9
        )));
    };
    let mut best: Option<(f64, Vec<usize>)> = None;
    for &t_max in &candidates {
        if best
            .as_ref()
            .is_some_and(|(lat, _)| sum_min + b * t_max >= *lat)
        {
            break;
        }
        if let Some((sum, cuts)) = fixed_dp(&table, layers, t_max) {
            let lat = sum + b * t_max;
            if best.as_ref().map_or(true, |(bl, _)| lat < *bl) {
                best = Some((lat, cuts));
            }
        }
    }
    let (lat, cuts) =
        best.ok_or_else(|| Error::Input("stage slicing: no maximum stage time admitted".into()))?;
    Ok((cuts, lat))
}

/// `F(j, k)`: least `Σ t` slicing layers `k..` into stages `j..`, each stage's time at most
/// `t_max`; the layers per stage of the best slicing from `(0, 0)`.
fn fixed_dp(
    table: &[Vec<Vec<Option<StageEstimate>>>],
    layers: usize,
    t_max: f64,
) -> Option<(f64, Vec<usize>)> {
    let stages = table.len();
    let mut f = vec![vec![(f64::INFINITY, 0usize); layers + 1]; stages + 1];
    f[stages][layers].0 = 0.0;
    for j in (0..stages).rev() {
        for k in j..=j + layers - stages {
            let mut cell = (f64::INFINITY, 0);
            for (n, e) in table[j][k].iter().enumerate() {
                let Some(e) = e else { continue };
                let end = k + n + 1;
                if e.time > t_max || end > layers {
                    continue;
                }
                let v = e.time + f[j + 1][end].0;
                if v < cell.0 {
                    cell = (v, n + 1);
                }
            }
            f[j][k] = cell;
        }
    }
    if !f[0][0].0.is_finite() {
        return None;
    }
    let (mut k, mut cuts) = (0, Vec::with_capacity(stages));
    for row in f.iter().take(stages) {
        let n = row[k].1;
        cuts.push(n);
        k += n;
    }
    Some((f[0][0].0, cuts))
}
