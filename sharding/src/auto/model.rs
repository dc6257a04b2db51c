//! The planner's model of one mesh: per value its sharding choices, each with what the op costs
//! under it (compute and the op's own collectives) and the memory it holds, and per operand edge
//! the resharding cost of every pair of choices (infinite where the partitioner would read the
//! pair differently than the choice assumes).
//!
//! A choice of an op is a *factor sharding* (mesh axes per factor of its iteration space), as
//! Alpa's strategies are; the result's sharding and what each operand must be resharded to follow
//! from it. The partitioner reads contracted factors off the operands' shardings
//! (`needs::op_needs`), so an edge allows only producer choices whose sharding projects onto the
//! consumer's contracted factors exactly as the consumer's choice shards them; every choice is
//! checked against `op_needs` itself when it is made, so a plan costs what the model says.

use std::collections::BTreeMap;

use shardc_cost_model::{local_bytes, saved_activations, Zero};
use shardc_ir::{
    DimSharding, Factor, FactorKind, Graph, Mesh, Op, OpFactors, ReduceFn, Role, Sharding,
    ShardingAssignment, TensorType, ValueId,
};

use super::cost::Pricing;
use super::layers::Classes;
use crate::error::{Result, ShardingError};
use crate::needs;
use crate::reshard::{local_type, reshard_unpaired, same_layout};
use crate::rules::{self, FactorShardings};

mod edges;

use edges::build_edges;
pub(crate) use edges::carry_seconds;

/// One way to shard one value (and the op producing it).
#[derive(Clone, Debug)]
pub(crate) struct Choice {
    /// The value's sharding.
    pub result: Sharding,
    /// What the op needs of each operand.
    pub operands: Vec<Sharding>,
    /// The op's factor shardings (empty for sources and ops without a rule).
    pub factors: Vec<Vec<String>>,
    /// Seconds of the op and its own collectives on one device, under the step options the
    /// model was last set to ([`Model::set_step`]).
    pub cost: f64,
    /// Bytes the value holds on one device for the whole step (0 if it is not kept), under
    /// the same options.
    pub memory: f64,
    /// What does not depend on the step options: `cost` without ZeRO-3's gathers, ...
    pub base: f64,
    /// ... the kept bytes before ZeRO and micro-batching divide them, ...
    pub own: f64,
    /// ... and ZeRO-3's gathers of a parameter not already split over the data axis.
    pub gather: f64,
}

/// The resharding cost between a producer and one consumer operand: `cost[a][b]` for producer
/// choice `a` and consumer choice `b`, `f64::INFINITY` where the pair is not allowed.
#[derive(Clone, Debug)]
pub(crate) struct Edge {
    pub from: usize,
    pub to: usize,
    pub cost: Vec<Vec<f64>>,
}

/// The choices of every class of values (a value, or the values at one position of identical
/// layers, costs and memory summed over them) and the edges between classes.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub choices: Vec<Vec<Choice>>,
    pub edges: Vec<Edge>,
    /// Bytes per device the kept values may hold.
    pub memory_limit: Option<f64>,
    pub classes: Classes,
    /// The role of each class's values.
    pub roles: Vec<Role>,
    /// The class each class follows where the solver merges trivial ops into their operands
    /// (`follow`): a class whose op passes every factor through follows its largest operand's.
    pub leaders: Vec<Option<usize>>,
}

impl Model {
    /// Sets every choice's cost and memory for a step's ZeRO stage, micro-batches and memory
    /// limit; the choices and edges themselves do not depend on them, so one model serves the
    /// whole search on its mesh.
    pub fn set_step(&mut self, opts: &StepOptions, mesh: &Mesh) {
        let dp = opts
            .data_axis
            .as_deref()
            .and_then(|d| mesh.axis_size(d))
            .unwrap_or(1) as f64;
        self.memory_limit = opts.memory_limit;
        for (cs, &role) in self.choices.iter_mut().zip(&self.roles) {
            for c in cs {
                let on_data = opts
                    .data_axis
                    .as_deref()
                    .is_some_and(|d| c.result.used_axes().contains(&d));
                let split = |stage: Zero| {
                    if opts.zero >= stage && !on_data {
                        dp
                    } else {
                        1.0
                    }
                };
                c.memory = match role {
                    Role::Parameter => c.own / split(Zero::Stage3),
                    Role::Gradient => c.own / split(Zero::Stage2),
                    Role::OptimizerState => c.own / split(Zero::Stage1),
                    _ => c.own / opts.micro_batches.max(1) as f64,
                };
                c.cost = c.base
                    + if opts.zero >= Zero::Stage3 {
                        c.gather
                    } else {
                        0.0
                    };
            }
        }
    }

    /// Every value's sharding under a pick of one choice per class.
    pub fn assignment(&self, pick: &[usize], mesh: &Mesh) -> ShardingAssignment {
        ShardingAssignment {
            mesh: mesh.clone(),
            shardings: self
                .classes
                .of
                .iter()
                .map(|&c| self.choices[c][pick[c]].result.clone())
                .collect(),
        }
    }
}

/// How the step runs, as far as the model's memory and costs depend on it.
#[derive(Clone, Debug)]
pub(crate) struct StepOptions {
    pub zero: Zero,
    /// The mesh axis ZeRO shards model state over.
    pub data_axis: Option<String>,
    /// Micro-batches: saved activations are held for one at a time.
    pub micro_batches: u64,
    pub memory_limit: Option<f64>,
}

/// Ops whose window factors the partitioner splits with a halo exchange.
fn splits_windows(op: &Op) -> bool {
    matches!(op, Op::Convolution(_))
}

/// One pass-through factor per dim: the choices of a source value are its dims' shardings.
fn source_factors(ty: &TensorType) -> OpFactors {
    OpFactors {
        factors: ty
            .dims()
            .iter()
            .map(|&size| Factor {
                size,
                kind: FactorKind::PassThrough,
            })
            .collect(),
        operands: Vec::new(),
        result: (0..ty.rank()).map(|d| vec![d]).collect(),
        flops_per_point: 0,
    }
}

/// Every way to give each mesh axis to at most one allowed factor whose size it divides (with
/// the axes before it on that factor), in mesh-axis order.
pub(crate) fn factor_assignments(
    factors: &[Factor],
    allowed: &[bool],
    mesh: &Mesh,
) -> Vec<Vec<Vec<String>>> {
    let mut out = vec![vec![Vec::new(); factors.len()]];
    for axis in &mesh.axes {
        let mut next = Vec::with_capacity(out.len() * (factors.len() + 1));
        for fs in &out {
            next.push(fs.clone());
            for (k, f) in factors.iter().enumerate() {
                if !allowed[k] || axis.size == 1 {
                    continue;
                }
                let split: u64 = fs[k]
                    .iter()
                    .map(|a: &String| mesh.axis_size(a).unwrap_or(1))
                    .product();
                if f.size % (split * axis.size) != 0 {
                    continue;
                }
                let mut c = fs.clone();
                c[k].push(axis.name.clone());
                next.push(c);
            }
        }
        out = next;
    }
    out
}

fn closed(axes: Vec<Vec<String>>) -> Sharding {
    Sharding {
        dims: axes
            .into_iter()
            .map(|a| DimSharding {
                axes: a,
                open: false,
            })
            .collect(),
        ..Sharding::default()
    }
}

/// The sharding an annotation asks for, every dim closed.
pub(crate) fn closed_copy(s: &Sharding) -> Sharding {
    Sharding {
        dims: s
            .dims
            .iter()
            .map(|d| DimSharding {
                axes: d.axes.clone(),
                open: false,
            })
            .collect(),
        ..s.clone()
    }
}

/// The value a trivial op follows (Alpa's merging), for an op that passes every factor
/// through: an elementwise op or transpose its operand of most elements (the first of those), a
/// broadcast its one reader (it answers to what reads it, not to the smaller value it widens).
fn leader(graph: &Graph, v: ValueId, readers: &[Vec<ValueId>]) -> Option<ValueId> {
    let node = graph.node(v);
    if node.op.is_source() || node.operands.is_empty() {
        return None;
    }
    let f = graph.factors(v);
    if !needs::usable(graph, v, &f) || f.factors.iter().any(|x| x.kind != FactorKind::PassThrough) {
        return None;
    }
    let mut best: Option<ValueId> = None;
    for &o in &node.operands {
        if best.map_or(true, |b| {
            graph.ty(o).shape.elements() > graph.ty(b).shape.elements()
        }) {
            best = Some(o);
        }
    }
    match best {
        Some(b) if graph.ty(b).shape.elements() == node.ty.shape.elements() => Some(b),
        _ => match readers[v.index()][..] {
            [w] => Some(w),
            _ => None,
        },
    }
}

/// Builds the model of `graph` on `pricing`'s mesh; `fixed[v]` pins a value's sharding, and
/// the values of one class (`classes`) take one choice.
pub(crate) fn build(
    graph: &Graph,
    pricing: &Pricing,
    fixed: &BTreeMap<usize, Sharding>,
    opts: &StepOptions,
    classes: Classes,
) -> Result<Model> {
    let mesh = pricing.mesh;
    let kept = kept_values(graph);
    let mut scratch = ShardingAssignment {
        mesh: mesh.clone(),
        shardings: graph
            .ids()
            .map(|v| Sharding::replicated(graph.ty(v).rank()))
            .collect(),
    };
    let mut choices = Vec::with_capacity(classes.members.len());
    let mut factor_tables = Vec::with_capacity(classes.members.len());
    for (c, members) in classes.members.iter().enumerate() {
        let v = ValueId(classes.rep(c) as u32);
        let count = members.len() as f64;
        let (f, mut cs) = node_choices(graph, v, pricing, &mut scratch)?;
        let all_gathers = StepOptions {
            zero: Zero::Stage3,
            ..opts.clone()
        };
        for ch in &mut cs {
            ch.base = count * ch.cost;
            ch.own = if kept[v.index()] {
                count * local_bytes(graph.ty(v), &ch.result, mesh)
            } else {
                0.0
            };
            ch.gather = count * zero3_gathers(graph, v, &ch.result, pricing, &all_gathers)?;
        }
        for &m in members {
            let Some(want) = fixed.get(&m) else { continue };
            cs.retain(|ch| same_layout(&ch.result, want));
            if cs.is_empty() {
                return Err(ShardingError::Invalid {
                    value: graph.nodes[m].name.clone(),
                    message: format!(
                        "the annotation {} is not a sharding its op can produce on mesh {mesh} \
                         (a dim split unevenly, an axis on a dim its op cannot split, or a \
                         different annotation on the same value of an identical layer)",
                        crate::format::jax(want)
                    ),
                });
            }
        }
        choices.push(cs);
        factor_tables.push(f);
    }
    let edges = build_edges(graph, pricing, &mut choices, &factor_tables, &classes)?;
    let roles = (0..classes.members.len())
        .map(|c| graph.nodes[classes.rep(c)].role)
        .collect();
    let mut readers: Vec<Vec<ValueId>> = vec![Vec::new(); graph.len()];
    for v in graph.ids() {
        for &o in &graph.node(v).operands {
            if !readers[o.index()].contains(&v) {
                readers[o.index()].push(v);
            }
        }
    }
    let leaders = (0..classes.members.len())
        .map(|c| {
            leader(graph, ValueId(classes.rep(c) as u32), &readers)
                .map(|o| classes.of[o.index()])
                .filter(|&u| u != c)
        })
        .collect();
    let mut model = Model {
        choices,
        edges,
        memory_limit: opts.memory_limit,
        classes,
        roles,
        leaders,
    };
    model.set_step(opts, mesh);
    Ok(model)
}

/// The choices of one value.
fn node_choices(
    graph: &Graph,
    v: ValueId,
    pricing: &Pricing,
    scratch: &mut ShardingAssignment,
) -> Result<(Option<OpFactors>, Vec<Choice>)> {
    let node = graph.node(v);
    let mesh = pricing.mesh;
    if node.op.is_source() {
        let f = source_factors(&node.ty);
        let allowed: Vec<bool> = f.factors.iter().map(|x| x.size > 1).collect();
        let cs = factor_assignments(&f.factors, &allowed, mesh)
            .into_iter()
            .map(|fs| Choice {
                result: closed(fs),
                operands: Vec::new(),
                factors: Vec::new(),
                cost: 0.0,
                memory: 0.0,
                base: 0.0,
                own: 0.0,
                gather: 0.0,
            })
            .collect();
        return Ok((None, cs));
    }
    let f = graph.factors(v);
    if !needs::usable(graph, v, &f) {
        // No rule: everything replicated, the op run whole on every device.
        let operands: Vec<Sharding> = node
            .operands
            .iter()
            .map(|&o| Sharding::replicated(graph.ty(o).rank()))
            .collect();
        let result = Sharding::replicated(node.ty.rank());
        let cost = op_cost(graph, v, &f, &operands, &result, &[], pricing);
        return Ok((
            None,
            vec![Choice {
                result,
                operands,
                factors: Vec::new(),
                cost,
                memory: 0.0,
                base: 0.0,
                own: 0.0,
                gather: 0.0,
            }],
        ));
    }
    let allowed: Vec<bool> = f
        .factors
        .iter()
        .map(|x| match x.kind {
            FactorKind::PassThrough | FactorKind::Reduction => x.size > 1,
            FactorKind::Window => x.size > 1 && splits_windows(&node.op),
            FactorKind::NeedReplication => false,
        })
        .collect();
    let mut out: Vec<Choice> = Vec::new();
    for fs in factor_assignments(&f.factors, &allowed, mesh) {
        let table = FactorShardings { axes: fs };
        let operands: Vec<Sharding> = f
            .operands
            .iter()
            .map(|dims| closed(rules::back_project(dims, &f.factors, &table, mesh)))
            .collect();
        let mut natural = closed(rules::back_project(&f.result, &f.factors, &table, mesh));
        natural.partial = rules::reduction_axes(&f, &table);
        natural.partial_fn = match (&node.op, natural.partial.is_empty()) {
            (Op::Reduce { func, .. }, false) => *func,
            _ => ReduceFn::Sum,
        };
        if !agrees_with_partitioner(graph, v, &f, &operands, &natural, scratch) {
            continue;
        }
        let plain = Sharding {
            partial: Vec::new(),
            partial_fn: ReduceFn::Sum,
            ..natural.clone()
        };
        let base = op_cost(graph, v, &f, &operands, &natural, &table.axes, pricing);
        let mut push = |result: Sharding, extra: f64| {
            let c = Choice {
                result,
                operands: operands.clone(),
                factors: table.axes.clone(),
                cost: base + extra,
                memory: 0.0,
                base: 0.0,
                own: 0.0,
                gather: 0.0,
            };
            // Two factor shardings that read and give the same layouts are one choice.
            match out.iter_mut().find(|o| {
                same_layout(&o.result, &c.result)
                    && o.operands
                        .iter()
                        .zip(&c.operands)
                        .all(|(a, b)| same_layout(a, b))
                    && o.factors == c.factors
            }) {
                Some(o) if o.cost > c.cost => *o = c,
                Some(_) => {}
                None => out.push(c),
            }
        };
        if natural.partial.is_empty() {
            push(natural, 0.0);
            continue;
        }
        // Reduced at the op (an all-reduce), or left pending for the consumers to reduce into
        // what they need (a reduce-scatter: sequence parallelism's form).
        let reduce = reshard_seconds(&natural, &plain, &node.ty, v, pricing)?;
        push(plain, reduce);
        if natural.partial_fn == ReduceFn::Sum {
            push(natural, 0.0);
        }
    }
    if out.is_empty() {
        return Err(ShardingError::Invalid {
            value: node.name.clone(),
            message: "no sharding choice agrees with the partitioner's reading of its factors"
                .into(),
        });
    }
    Ok((Some(f), out))
}

/// Whether the partitioner, given the operands and result in the shardings a choice assumes,
/// reads the op's factors as the choice does.
fn agrees_with_partitioner(
    graph: &Graph,
    v: ValueId,
    f: &OpFactors,
    operands: &[Sharding],
    natural: &Sharding,
    scratch: &mut ShardingAssignment,
) -> bool {
    let node = graph.node(v);
    let plain = Sharding {
        partial: Vec::new(),
        partial_fn: ReduceFn::Sum,
        ..natural.clone()
    };
    let saved: Vec<Sharding> = node
        .operands
        .iter()
        .map(|o| scratch.shardings[o.index()].clone())
        .collect();
    let saved_v = std::mem::replace(&mut scratch.shardings[v.index()], plain);
    for (&o, s) in node.operands.iter().zip(operands) {
        scratch.shardings[o.index()] = s.clone();
    }
    // A value read twice with two different needs cannot hold both.
    let consistent = node
        .operands
        .iter()
        .zip(operands)
        .all(|(o, s)| same_layout(&scratch.shardings[o.index()], s));
    let need = needs::op_needs(graph, v, f, scratch);
    let ok = consistent
        && need.natural.dims == natural.dims
        && same_layout(&need.natural, natural)
        && need
            .operands
            .iter()
            .zip(operands)
            .all(|(a, b)| same_layout(a, b));
    for (&o, s) in node.operands.iter().zip(saved) {
        scratch.shardings[o.index()] = s;
    }
    scratch.shardings[v.index()] = saved_v;
    ok
}

/// Compute time of the op under a choice, plus its halo exchanges.
fn op_cost(
    graph: &Graph,
    v: ValueId,
    f: &OpFactors,
    operands: &[Sharding],
    natural: &Sharding,
    fs: &[Vec<String>],
    pricing: &Pricing,
) -> f64 {
    let node = graph.node(v);
    let mesh = pricing.mesh;
    let split: f64 = fs
        .iter()
        .flatten()
        .map(|a| mesh.axis_size(a).unwrap_or(1) as f64)
        .product();
    let flops = f.flops() as f64 / split;
    let bytes: f64 = node
        .operands
        .iter()
        .zip(operands)
        .map(|(&o, s)| local_bytes(graph.ty(o), s, mesh))
        .sum::<f64>()
        + local_bytes(&node.ty, natural, mesh);
    let mut t = pricing.op_seconds(&node.op, &node.ty, flops, bytes);
    if !fs.is_empty() {
        t += halo_seconds(graph, v, f, operands, fs, pricing);
    }
    t
}

/// The halo exchanges of the sharded window factors, estimated as `required_collectives` does:
/// half the size change across the op each way, one permute up and one down.
fn halo_seconds(
    graph: &Graph,
    v: ValueId,
    f: &OpFactors,
    operands: &[Sharding],
    fs: &[Vec<String>],
    pricing: &Pricing,
) -> f64 {
    let mesh = pricing.mesh;
    let table = FactorShardings { axes: fs.to_vec() };
    let mut t = 0.0;
    for (k, places) in needs::windows(f, &table) {
        let Some(axis) = fs[k].last() else { continue };
        let size = mesh.axis_size(axis).unwrap_or(1);
        for (i, d) in places {
            let o = graph.node(v).operands[i];
            let local = local_type(&operands[i], graph.ty(o), mesh);
            let change = graph.ty(o).dims()[d].abs_diff(f.factors[k].size);
            let width = change.div_ceil(2).max(1).min(local.dims()[d]);
            let mut dims = local.dims().to_vec();
            dims[d] = width;
            let halo = TensorType::new(local.dtype, dims);
            let op = Op::CollectivePermute {
                axes: vec![axis.clone()],
                pairs: (0..size - 1).map(|c| (c, c + 1)).collect(),
            };
            t += 2.0 * pricing.collective_seconds(&op, &halo).unwrap_or(0.0);
        }
    }
    t
}

/// Seconds of resharding a value of type `ty` from `from` to `to`.
fn reshard_seconds(
    from: &Sharding,
    to: &Sharding,
    ty: &TensorType,
    v: ValueId,
    pricing: &Pricing,
) -> Result<f64> {
    let _ = v;
    if free_reshard(from, to) {
        return Ok(0.0);
    }
    pricing.reshard_cached(from, to, ty, || {
        let mut t = 0.0;
        for step in reshard_unpaired(from, to, ty, pricing.mesh)? {
            if let Some(op) = step.collective() {
                t += pricing.collective_seconds(&op, &step.local_operand)?;
            }
        }
        Ok(t)
    })
}

/// Whether `to` is `from` or a local slice of it (no pending sum, every dim's axes extended
/// by axes `from` does not use): no collective, so no search is needed to price it.
fn free_reshard(from: &Sharding, to: &Sharding) -> bool {
    if same_layout(from, to) {
        return true;
    }
    if !from.partial.is_empty() || !to.partial.is_empty() || from.rank() != to.rank() {
        return false;
    }
    let used = from.used_axes();
    from.dims.iter().zip(&to.dims).all(|(a, b)| {
        b.axes.len() >= a.axes.len()
            && b.axes[..a.axes.len()] == a.axes[..]
            && b.axes[a.axes.len()..]
                .iter()
                .all(|x| !used.contains(&x.as_str()))
    })
}

/// Values the step keeps for its whole length: model state, and the forward activations the
/// cost model's liveness pass keeps for the backward pass ([`saved_activations`]: fusion-aware,
/// so a fused intermediate's written sources rather than the intermediate), so that the ILP's
/// memory constraint sums, per value, the bytes the whole-step estimate reports as weights,
/// gradients, optimizer state and activations. The estimate's transient peak (and a saved
/// value read at a smaller size than its own, a pending sum read reduce-scattered) is the only
/// difference left; the search closes it by shifting the constraint's limit.
pub(crate) fn kept_values(graph: &Graph) -> Vec<bool> {
    let saved = saved_activations(graph);
    graph
        .nodes
        .iter()
        .zip(saved)
        .map(|(n, s)| match n.role {
            Role::Parameter | Role::Gradient | Role::OptimizerState => true,
            _ => s,
        })
        .collect()
}

/// The seconds of every ZeRO-3 gather an assignment needs (the step estimate does not price
/// them; the planner's candidates and the Megatron-style sweep add them the same way).
pub(crate) fn zero3_gather_seconds(
    graph: &Graph,
    assignment: &ShardingAssignment,
    pricing: &Pricing,
    opts: &StepOptions,
) -> Result<f64> {
    let mut seconds = 0.0;
    for v in graph.ids() {
        seconds += zero3_gathers(graph, v, &assignment.shardings[v.index()], pricing, opts)?;
    }
    Ok(seconds)
}

/// ZeRO-3 gathers a parameter over the data axis before its forward and its backward use.
pub(crate) fn zero3_gathers(
    graph: &Graph,
    v: ValueId,
    s: &Sharding,
    pricing: &Pricing,
    opts: &StepOptions,
) -> Result<f64> {
    let n = graph.node(v);
    let Some(d) = opts.data_axis.as_deref() else {
        return Ok(0.0);
    };
    if opts.zero < Zero::Stage3 || n.role != Role::Parameter || s.used_axes().contains(&d) {
        return Ok(0.0);
    }
    if pricing.mesh.axis_size(d).unwrap_or(1) == 1 {
        return Ok(0.0);
    }
    let full = local_bytes(&n.ty, s, pricing.mesh);
    Ok(2.0 * pricing.all_gather_seconds(full, &[d.to_string()])?)
}
