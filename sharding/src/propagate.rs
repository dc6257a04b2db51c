//! The propagation engine: user annotations spread through the graph's op factor rules, forward
//! and backward, to a fixpoint, every step recorded as a variant in the e-graph.
//!
//! Conflicts are settled in this order, each a documented, deterministic rule:
//! 1. **User priority**: annotations of priority 0 propagate to a fixpoint before those of
//!    priority 1 are even seen (a value annotated at a later priority is neither read nor written
//!    until its round), and so on.
//! 2. **Op kind** (Shardy's op priorities): within a round, ops whose factors are all
//!    pass-through (elementwise, transpose, broadcast, plain reshapes) run to a fixpoint first,
//!    then every op (dots, reductions, convolutions, slices...).
//! 3. **Merging**: where tensors of an op shard a factor compatibly (one's axes a prefix of the
//!    other's) the longer sharding wins; where they disagree, at first only their common part
//!    propagates, and in a last phase the sharding of better precedence wins (lower user
//!    priority, then more axes, then the earlier operand, the result last).
//!
//! Propagation only refines: an open dim gains minor axes, a closed dim (every annotated dim not
//! marked open) never changes. Ops that have no usable rule (collectives, send/recv in an input
//! graph, or a factor table that does not fit) give a replicated result and a warning.

use std::collections::{BTreeMap, VecDeque};

use shardc_ir::{
    AllowedDirection, Annotation, DimSharding, FactorKind, Graph, Mesh, Op, OpFactors, ReduceFn,
    Sharding, ShardingAssignment, ValueId,
};

use crate::egraph::{VariantGraph, VariantRecord};
use crate::error::{Result, ShardingError};
use crate::needs;
use crate::reason::{Phase, Reason};
use crate::rules::{self, Candidate, Strategy};

/// A graph with a sharding for every value, and why each value has it.
pub struct ShardedGraph {
    pub graph: Graph,
    pub assignment: ShardingAssignment,
    /// Ops without a usable sharding rule, one line each, in node order.
    pub warnings: Vec<String>,
    pub(crate) variants: VariantGraph,
}

impl ShardedGraph {
    /// The sharding of `v`.
    pub fn sharding(&self, v: ValueId) -> &Sharding {
        &self.assignment.shardings[v.index()]
    }

    /// Why `v` has its sharding (the reason of its final variant).
    pub fn reason(&self, v: ValueId) -> &Reason {
        &self.variants.current(v).reason
    }

    /// Every sharding `v` took during propagation and every sharding a consumer needs it in,
    /// with the reason for each, in the order they were derived.
    pub fn history(&self, v: ValueId) -> Vec<(&Sharding, &Reason)> {
        self.variants
            .variants(v)
            .into_iter()
            .map(|r| (&r.sharding, &r.reason))
            .collect()
    }

    /// Number of e-nodes (variants and reshards) in the e-graph.
    pub fn enode_count(&self) -> usize {
        self.variants.egraph.total_size()
    }
}

/// What propagation may do beyond following the annotations: XLA's flags for the program's
/// interface, and groups of values that share one sharding.
#[derive(Clone, Debug, Default)]
pub struct PropagateOptions {
    /// Values (by name) on the program's interface whose sharding propagation chooses (XLA's
    /// `allow_spmd_sharding_propagation_to_parameters` / `_to_output`): an annotation on one
    /// is where it starts (every dim open to refinement), and a final sharding that splits a
    /// dim unevenly is replaced by replication (callers see the interface's layout).
    pub free: Vec<String>,
    /// Values (by name) whose sharding is fixed from outside: their annotation, or replicated
    /// without one. XLA's default for the entry's parameters and root: the caller's layout.
    pub fixed: Vec<String>,
    /// Groups of values (by name) that take one sharding (XLA's `shard_as`/`shard_like`,
    /// Shardy's sharding groups): within a group, shardings spread as through an
    /// elementwise op. Members must have the same rank.
    pub groups: Vec<Vec<String>>,
    /// Propagation barriers: ops (by their value's name, one operand) that shardings cross only
    /// the allowed way.
    pub barriers: Vec<(String, AllowedDirection)>,
}

/// Propagates `annotations` (value name → sharding) through `graph` on `mesh`.
pub fn propagate(graph: &Graph, mesh: &Mesh, annotations: &[Annotation]) -> Result<ShardedGraph> {
    propagate_with(graph, mesh, annotations, &PropagateOptions::default())
}

/// [`propagate`] with [`PropagateOptions`].
pub fn propagate_with(
    graph: &Graph,
    mesh: &Mesh,
    annotations: &[Annotation],
    options: &PropagateOptions,
) -> Result<ShardedGraph> {
    mesh.validate()?;
    let index = graph.name_index();
    let id = |name: &str| {
        index
            .get(name)
            .copied()
            .ok_or_else(|| ShardingError::UnknownValue(name.to_string()))
    };
    let mut free = vec![false; graph.len()];
    for name in &options.free {
        free[id(name)?.index()] = true;
    }
    // A free value's annotation is where it starts, not a constraint: every dim is open.
    let mut opened: Vec<Annotation> = annotations
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if index.get(a.value.as_str()).is_some_and(|v| free[v.index()]) {
                a.sharding.dims.iter_mut().for_each(|d| d.open = true);
            }
            a
        })
        .collect();
    // A fixed value without an annotation is replicated, as if annotated so.
    for name in &options.fixed {
        let v = id(name)?;
        if free[v.index()] {
            return Err(ShardingError::Invalid {
                value: name.clone(),
                message: "it is both free and fixed".into(),
            });
        }
        if !annotations.iter().any(|a| &a.value == name) {
            opened.push(Annotation {
                value: name.clone(),
                sharding: Sharding::replicated(graph.ty(v).rank()),
                priority: 0,
            });
        }
    }
    manual_region_constraints(graph, &mut opened);
    let mut annotated: Vec<Option<&Annotation>> = vec![None; graph.len()];
    for a in &opened {
        let v = id(&a.value)?;
        a.sharding
            .validate(mesh, graph.ty(v).rank())
            .map_err(|message| ShardingError::Invalid {
                value: a.value.clone(),
                message,
            })?;
        if annotated[v.index()].is_some() {
            return Err(ShardingError::Invalid {
                value: a.value.clone(),
                message: "annotated twice".into(),
            });
        }
        annotated[v.index()] = Some(a);
    }
    let mut groups = Vec::new();
    for group in &options.groups {
        let members: Vec<ValueId> = group.iter().map(|n| id(n)).collect::<Result<_>>()?;
        let Some(&first) = members.first() else {
            continue;
        };
        let rank = graph.ty(first).rank();
        if let Some(&odd) = members.iter().find(|&&m| graph.ty(m).rank() != rank) {
            return Err(ShardingError::Invalid {
                value: graph.node(odd).name.clone(),
                message: format!(
                    "its shard group mixes ranks: `{}` has rank {rank}, it has rank {}",
                    graph.node(first).name,
                    graph.ty(odd).rank()
                ),
            });
        }
        // One pass-through factor per dim, shared by every member.
        let f = OpFactors::elementwise(graph.ty(first).dims(), members.len(), 0);
        groups.push((members, f));
    }
    let mut barrier = vec![None; graph.len()];
    for (name, allowed) in &options.barriers {
        let v = id(name)?;
        if graph.node(v).operands.len() != 1 {
            return Err(ShardingError::Invalid {
                value: name.clone(),
                message: format!(
                    "a propagation barrier must have one operand, `{}` has {}",
                    graph.node(v).op.name(),
                    graph.node(v).operands.len()
                ),
            });
        }
        barrier[v.index()] = Some(*allowed);
    }
    let mut rounds: Vec<u32> = annotated.iter().flatten().map(|a| a.priority).collect();
    let mut engine = Engine::new(graph, mesh, annotated, groups, barrier);
    rounds.sort_unstable();
    rounds.dedup();
    for round in rounds {
        engine.round = round;
        engine.activate(round);
        for phase in [Phase::PassThrough, Phase::AllOps, Phase::Aggressive] {
            engine.fixpoint(phase);
        }
    }
    for v in graph.ids().filter(|v| free[v.index()]) {
        engine.even_interface(v);
    }
    engine.finish()
}

/// Propagation does not enter a manual region (shard_map, see `shardc_ir::manual`): its
/// per-device values stay replicated (each device keeps its own whole local value), and the
/// whole values at its boundary take the region's split, unless annotated otherwise.
fn manual_region_constraints(graph: &Graph, opened: &mut Vec<Annotation>) {
    let manual = shardc_ir::manual::manual_values(graph);
    let fixed = |v: ValueId, sharding: Sharding, opened: &mut Vec<Annotation>| {
        let name = &graph.node(v).name;
        if !opened.iter().any(|a| &a.value == name) {
            opened.push(Annotation {
                value: name.clone(),
                sharding,
                priority: 0,
            });
        }
    };
    let split = |dims: &[Vec<String>]| {
        let mut s = Sharding::replicated(dims.len());
        for (d, axes) in s.dims.iter_mut().zip(dims) {
            d.axes = axes.clone();
        }
        s
    };
    for v in graph.ids() {
        let node = graph.node(v);
        match &node.op {
            Op::FullToShard { dims } => fixed(node.operands[0], split(dims), opened),
            Op::ShardToFull { dims } => fixed(v, split(dims), opened),
            _ => {}
        }
        if manual[v.index()] {
            fixed(v, Sharding::replicated(node.ty.rank()), opened);
        }
    }
}

struct Engine<'a> {
    graph: &'a Graph,
    mesh: &'a Mesh,
    factors: Vec<OpFactors>,
    has_rule: Vec<bool>,
    pass_through: Vec<bool>,
    users: Vec<Vec<ValueId>>,
    annotated: Vec<Option<&'a Annotation>>,
    /// Shard-as groups: values that take one sharding, and the factors (one pass-through per
    /// dim) their rule reads.
    groups: Vec<(Vec<ValueId>, OpFactors)>,
    /// Per node, the way shardings may cross it if it is a propagation barrier.
    barrier: Vec<Option<AllowedDirection>>,
    vg: VariantGraph,
    warnings: Vec<String>,
    round: u32,
}

/// The pending reduction a sharded reduction factor of `op` leaves.
fn partial_fn(op: &Op) -> ReduceFn {
    match op {
        Op::Reduce { func, .. } => *func,
        _ => ReduceFn::Sum,
    }
}

fn open(rank: usize) -> Sharding {
    Sharding {
        dims: vec![DimSharding::open(); rank],
        ..Sharding::replicated(rank)
    }
}

impl<'a> Engine<'a> {
    fn new(
        graph: &'a Graph,
        mesh: &'a Mesh,
        annotated: Vec<Option<&'a Annotation>>,
        groups: Vec<(Vec<ValueId>, OpFactors)>,
        barrier: Vec<Option<AllowedDirection>>,
    ) -> Self {
        let mut e = Engine {
            graph,
            mesh,
            factors: Vec::with_capacity(graph.len()),
            has_rule: Vec::with_capacity(graph.len()),
            pass_through: Vec::with_capacity(graph.len()),
            users: graph.users(),
            annotated,
            groups,
            barrier,
            vg: VariantGraph::new(),
            warnings: Vec::new(),
            round: 0,
        };
        for v in graph.ids() {
            let node = graph.node(v);
            let f = crate::gspmd::propagation_factors(graph, v, graph.factors(v));
            let usable = needs::usable(graph, v, &f);
            let (sharding, reason) = if usable {
                (open(node.ty.rank()), Reason::Unknown)
            } else {
                e.warnings.push(format!(
                    "`{}` ({}): no usable sharding rule, its result is replicated",
                    node.name,
                    node.op.name()
                ));
                (
                    Sharding::replicated(node.ty.rank()),
                    Reason::Fallback {
                        op: node.op.name().to_string(),
                    },
                )
            };
            let rule = usable && !node.op.is_source();
            e.pass_through
                .push(rule && f.factors.iter().all(|x| x.kind == FactorKind::PassThrough));
            e.has_rule.push(rule);
            e.factors.push(f);
            e.vg.add_variant(
                VariantRecord {
                    value: v,
                    sharding,
                    priority: u32::MAX,
                    reason,
                },
                &node.operands,
            );
        }
        e
    }

    fn blocked(&self, v: ValueId) -> bool {
        self.annotated[v.index()].is_some_and(|a| a.priority > self.round)
    }

    fn activate(&mut self, round: u32) {
        for v in self.graph.ids() {
            let Some(a) = self.annotated[v.index()] else {
                continue;
            };
            if a.priority == round {
                self.vg.add_variant(
                    VariantRecord {
                        value: v,
                        sharding: a.sharding.clone(),
                        priority: a.priority,
                        reason: Reason::Annotation {
                            priority: a.priority,
                        },
                    },
                    &self.graph.node(v).operands,
                );
            }
        }
    }

    fn eligible(&self, n: usize, phase: Phase) -> bool {
        self.has_rule[n] && (phase != Phase::PassThrough || self.pass_through[n])
    }

    fn fixpoint(&mut self, phase: Phase) {
        let n = self.graph.len();
        let mut queued = vec![false; n];
        let mut queue: VecDeque<usize> = VecDeque::new();
        for i in (0..n).filter(|&i| self.eligible(i, phase)) {
            queued[i] = true;
            queue.push_back(i);
        }
        loop {
            while let Some(i) = queue.pop_front() {
                queued[i] = false;
                let changed = self.apply(ValueId(i as u32), phase);
                self.requeue(&changed, phase, &mut queued, &mut queue);
            }
            // Shard-as groups act like one more pass-through op over their members.
            let changed = self.apply_groups(phase);
            if changed.is_empty() {
                break;
            }
            self.requeue(&changed, phase, &mut queued, &mut queue);
        }
    }

    /// Queues the nodes whose rules read the values in `changed`: their own and their users'.
    fn requeue(
        &self,
        changed: &[ValueId],
        phase: Phase,
        queued: &mut [bool],
        queue: &mut VecDeque<usize>,
    ) {
        for &v in changed {
            let around = std::iter::once(v).chain(self.users[v.index()].iter().copied());
            for w in around {
                if !queued[w.index()] && self.eligible(w.index(), phase) {
                    queued[w.index()] = true;
                    queue.push_back(w.index());
                }
            }
        }
    }

    /// Spreads shardings within each shard-as group; returns the values refined.
    fn apply_groups(&mut self, phase: Phase) -> Vec<ValueId> {
        let mut updates = Vec::new();
        for (members, f) in &self.groups {
            let Some((records, fs, sources)) =
                self.resolve_among(members, f, |t| &f.operands[t], phase)
            else {
                continue;
            };
            for (t, rec) in records.iter().enumerate() {
                let Some(cur) = rec else { continue };
                let proposed = rules::back_project(&f.operands[t], &f.factors, &fs, self.mesh);
                let Some(new) = refine(&cur.sharding, &proposed, &[], ReduceFn::Sum) else {
                    continue;
                };
                let (from, priority) =
                    provenance(&records, sources.iter().flatten().copied(), t, cur.priority);
                updates.push(VariantRecord {
                    value: members[t],
                    sharding: new,
                    priority,
                    reason: Reason::ShardAs {
                        from: from.iter().map(|&s| members[s]).collect(),
                    },
                });
            }
        }
        self.commit(updates)
    }

    /// An interface value propagation was free to shard keeps its sharding only if every dim
    /// splits evenly (its callers see the layout); otherwise it is replicated, as XLA does.
    fn even_interface(&mut self, v: ValueId) {
        let cur = &self.vg.current(v).sharding;
        let sizes = self.graph.ty(v).dims();
        if (0..sizes.len()).all(|d| sizes[d] % cur.shards_of_dim(self.mesh, d) == 0) {
            return;
        }
        let record = VariantRecord {
            value: v,
            sharding: Sharding::replicated(sizes.len()),
            priority: u32::MAX,
            reason: Reason::Uneven,
        };
        self.vg.add_variant(record, &self.graph.node(v).operands);
    }

    /// Applies the rule of node `n`; returns the values whose sharding it refined.
    fn apply(&mut self, n: ValueId, phase: Phase) -> Vec<ValueId> {
        let updates = self.derive(n, phase);
        self.commit(updates)
    }

    /// Adds each refined variant to the e-graph; returns the values refined.
    fn commit(&mut self, updates: Vec<VariantRecord>) -> Vec<ValueId> {
        let mut changed = Vec::with_capacity(updates.len());
        for record in updates {
            let v = record.value;
            self.vg.add_variant(record, &self.graph.node(v).operands);
            changed.push(v);
        }
        changed
    }

    /// The refined variants the rule of node `n` derives from the current shardings.
    fn derive(&self, n: ValueId, phase: Phase) -> Vec<VariantRecord> {
        let node = self.graph.node(n);
        let f = &self.factors[n.index()];
        let tensors: Vec<ValueId> = node.operands.iter().copied().chain([n]).collect();
        let result = tensors.len() - 1;
        let dims_of = |t: usize| {
            if t == result {
                &f.result
            } else {
                &f.operands[t]
            }
        };
        let Some((records, fs, sources)) = self.resolve_among(&tensors, f, dims_of, phase) else {
            return Vec::new();
        };
        let reduced = rules::reduction_axes(f, &fs);
        let mut out = Vec::new();
        for (t, rec) in records.iter().enumerate() {
            let Some(cur) = rec else { continue };
            let crosses = match self.barrier.get(n.index()).copied().flatten() {
                None => true,
                Some(AllowedDirection::Forward) => t == result,
                Some(AllowedDirection::Backward) => t != result,
                Some(AllowedDirection::None) => false,
            };
            if !crosses {
                continue;
            }
            let v = tensors[t];
            let proposed = rules::back_project(dims_of(t), &f.factors, &fs, self.mesh);
            let fixed = self.annotated[v.index()].is_some();
            let partial: &[String] = if t == result && !fixed { &reduced } else { &[] };
            let Some(new) = refine(&cur.sharding, &proposed, partial, partial_fn(&node.op)) else {
                continue;
            };
            // Who this tensor's new sharding comes from: the tensors behind its factors (and,
            // for the result, behind the reduction factors).
            let reductions = f
                .factors
                .iter()
                .enumerate()
                .filter(|(_, x)| t == result && x.kind == FactorKind::Reduction)
                .map(|(i, _)| i);
            let behind = dims_of(t)
                .iter()
                .flatten()
                .copied()
                .chain(reductions)
                .flat_map(|k| sources[k].iter().copied());
            let (from, priority) = provenance(&records, behind, t, cur.priority);
            out.push(VariantRecord {
                value: v,
                sharding: new,
                priority,
                reason: Reason::Rule {
                    op: n,
                    from: from.iter().map(|&s| tensors[s]).collect(),
                    phase,
                    round: self.round,
                },
            });
        }
        out
    }

    /// The current records of `tensors` (`None` for those a later priority round holds back)
    /// and their factors' shardings resolved for `phase`, with the tensors behind each factor;
    /// `None` when no tensor shards any factor.
    #[allow(clippy::type_complexity)]
    fn resolve_among<'f>(
        &self,
        tensors: &[ValueId],
        f: &'f OpFactors,
        dims_of: impl Fn(usize) -> &'f Vec<Vec<usize>>,
        phase: Phase,
    ) -> Option<(
        Vec<Option<&VariantRecord>>,
        rules::FactorShardings,
        Vec<Vec<usize>>,
    )> {
        let records: Vec<Option<&VariantRecord>> = tensors
            .iter()
            .map(|&v| (!self.blocked(v)).then(|| self.vg.current(v)))
            .collect();
        let mut cands: Vec<Vec<Candidate>> = vec![Vec::new(); f.factors.len()];
        let mut any = false;
        for (t, rec) in records.iter().enumerate() {
            let Some(rec) = rec else { continue };
            for (k, axes, closed) in
                rules::project(dims_of(t), &f.factors, &rec.sharding, self.mesh)
            {
                any |= !axes.is_empty();
                cands[k].push(Candidate {
                    axes,
                    priority: rec.priority,
                    tensor: t,
                    closed,
                });
            }
        }
        if !any {
            return None;
        }
        let strategy = if phase == Phase::Aggressive {
            Strategy::Aggressive
        } else {
            Strategy::Basic
        };
        let (fs, sources) = rules::resolve(&f.factors, &cands, strategy);
        Some((records, fs, sources))
    }

    fn finish(mut self) -> Result<ShardedGraph> {
        let shardings: Vec<Sharding> = self
            .graph
            .ids()
            .map(|v| {
                let mut s = self.vg.current(v).sharding.clone();
                for d in &mut s.dims {
                    d.open = false;
                }
                s
            })
            .collect();
        let assignment = ShardingAssignment {
            mesh: self.mesh.clone(),
            shardings,
        };
        // What each consumer needs its operands in becomes a reshard e-node, so the e-graph holds
        // every layout a value is used in (what an automatic choice extracts from).
        let mut reshards: BTreeMap<(ValueId, usize), Sharding> = BTreeMap::new();
        for n in self.graph.ids().filter(|n| self.has_rule[n.index()]) {
            let needs = needs::op_needs(self.graph, n, &self.factors[n.index()], &assignment);
            for (i, (&o, req)) in self
                .graph
                .node(n)
                .operands
                .iter()
                .zip(needs.operands)
                .enumerate()
            {
                if !crate::reshard::same_layout(&assignment.shardings[o.index()], &req) {
                    reshards.insert((n, i), req);
                }
            }
        }
        for ((n, i), req) in reshards {
            let o = self.graph.node(n).operands[i];
            self.vg.add_reshard(
                o,
                req,
                Reason::Consumer {
                    user: n,
                    operand: i,
                },
            );
        }
        self.vg.egraph.rebuild();
        Ok(ShardedGraph {
            graph: self.graph.clone(),
            assignment,
            warnings: self.warnings,
            variants: self.vg,
        })
    }
}

/// The tensors (other than `t`) a new sharding of `t` comes from, sorted, and the best user
/// priority among them and `t`'s own.
fn provenance(
    records: &[Option<&VariantRecord>],
    behind: impl Iterator<Item = usize>,
    t: usize,
    own: u32,
) -> (Vec<usize>, u32) {
    let mut from: Vec<usize> = behind.filter(|&s| s != t).collect();
    from.sort_unstable();
    from.dedup();
    let priority = from
        .iter()
        .filter_map(|&s| records[s].map(|r| r.priority))
        .chain([own])
        .min()
        .unwrap_or(u32::MAX);
    (from, priority)
}

/// Refines `cur` towards `proposed` (axes per dim) and the pending axes `partial`: an open dim
/// whose axes are a prefix of the proposal gains the rest, as far as no axis is used twice.
/// Returns `None` when nothing changes.
fn refine(
    cur: &Sharding,
    proposed: &[Vec<String>],
    partial: &[String],
    func: ReduceFn,
) -> Option<Sharding> {
    let mut used: Vec<&str> = cur.used_axes();
    // Per dim, how many of the proposal's axes it takes.
    let mut take: Vec<usize> = Vec::new();
    for (d, p) in cur.dims.iter().zip(proposed) {
        let n = d.axes.len();
        let mut k = n;
        if d.open && p.len() > n && d.axes[..] == p[..n] {
            while k < p.len() && !used.contains(&p[k].as_str()) {
                used.push(&p[k]);
                k += 1;
            }
        }
        take.push(k);
    }
    let new_partial: Vec<&String> = partial
        .iter()
        .filter(|a| !used.contains(&a.as_str()))
        .collect();
    let grows = cur.dims.iter().zip(&take).any(|(d, &k)| k > d.axes.len());
    if !grows && new_partial.is_empty() {
        return None;
    }
    let mut s = cur.clone();
    for ((d, p), &k) in s.dims.iter_mut().zip(proposed).zip(&take) {
        if k > d.axes.len() {
            d.axes.extend(p[d.axes.len()..k].iter().cloned());
        }
    }
    if !new_partial.is_empty() {
        s.partial.extend(new_partial.into_iter().cloned());
        s.partial_fn = func;
    }
    Some(s)
}
