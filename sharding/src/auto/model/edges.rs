//! The model's edges: per operand position of each class, the resharding cost of every pair of
//! producer and consumer choices (infinite where the partitioner would read the pair
//! differently than the consumer's choice assumes), and the loop-carried edges from a training
//! step's updated values back to their state.

use std::collections::{BTreeMap, BTreeSet};

use shardc_ir::{FactorKind, Graph, Mesh, OpFactors, Sharding, ShardingAssignment, ValueId};

use super::{reshard_seconds, Choice, Edge};
use crate::auto::cost::Pricing;
use crate::auto::layers::Classes;
use crate::error::Result;
use crate::reshard::same_layout;
use crate::rules;

/// The edges between classes: for each operand position of each class, the resharding cost of
/// every pair, times the number of value edges it stands for. An edge within one class (a
/// value of one layer read at the same position of the next) can only pair a choice with
/// itself: its diagonal joins the class's own cost.
pub(super) fn build_edges(
    graph: &Graph,
    pricing: &Pricing,
    choices: &mut [Vec<Choice>],
    factor_tables: &[Option<OpFactors>],
    classes: &Classes,
) -> Result<Vec<Edge>> {
    // (producer class, consumer class, operand index) → (count, one instance).
    let mut groups: BTreeMap<(usize, usize, usize), (f64, ValueId, ValueId)> = BTreeMap::new();
    for v in graph.ids() {
        for (i, &o) in graph.node(v).operands.iter().enumerate() {
            let key = (classes.of[o.index()], classes.of[v.index()], i);
            groups.entry(key).or_insert((0.0, o, v)).0 += 1.0;
        }
    }
    let mut edges = carry_edges(graph, pricing, choices, classes)?;
    for ((cu, cv, i), (count, o, v)) in groups {
        let cost = edge_costs(
            graph,
            pricing,
            &choices[cu],
            &choices[cv],
            &factor_tables[cv],
            o,
            v,
            i,
        )?;
        if cu == cv {
            for (a, row) in cost.iter().enumerate() {
                choices[cu][a].base += count * row[a];
            }
            continue;
        }
        edges.push(Edge {
            from: cu,
            to: cv,
            cost: cost
                .into_iter()
                .map(|row| row.into_iter().map(|c| c * count).collect())
                .collect(),
        });
    }
    Ok(edges)
}

/// A training step's loop-carried edges: the next step reads each updated value (`new`) in its
/// state's sharding, so an update left sharded unlike its input is resharded back (a sharded
/// optimizer step's all-gather, deferred to the next step but paid all the same). Per pair of
/// classes, the resharding cost of every pair of choices times the updates it stands for.
fn carry_edges(
    graph: &Graph,
    pricing: &Pricing,
    choices: &[Vec<Choice>],
    classes: &Classes,
) -> Result<Vec<Edge>> {
    let mut groups: BTreeMap<(usize, usize), (f64, ValueId)> = BTreeMap::new();
    for &(state, new) in &graph.training.updates {
        let key = (classes.of[new.index()], classes.of[state.index()]);
        groups.entry(key).or_insert((0.0, new)).0 += 1.0;
    }
    let mut edges = Vec::new();
    for ((cn, cs), (count, new)) in groups {
        let ty = graph.ty(new);
        let mut cost = Vec::with_capacity(choices[cn].len());
        for a in &choices[cn] {
            let mut row = Vec::with_capacity(choices[cs].len());
            for b in &choices[cs] {
                row.push(count * reshard_seconds(&a.result, &b.result, ty, new, pricing)?);
            }
            cost.push(row);
        }
        edges.push(Edge {
            from: cn,
            to: cs,
            cost,
        });
    }
    Ok(edges)
}

/// The seconds of the loop-carried reshardings of an assignment ([`carry_edges`]).
pub(crate) fn carry_seconds(
    graph: &Graph,
    assignment: &ShardingAssignment,
    pricing: &Pricing,
) -> Result<f64> {
    let mut seconds = 0.0;
    for &(state, new) in &graph.training.updates {
        let (from, to) = (
            &assignment.shardings[new.index()],
            &assignment.shardings[state.index()],
        );
        seconds += reshard_seconds(from, to, graph.ty(new), new, pricing)?;
    }
    Ok(seconds)
}

/// The resharding cost of every pair of choices on the edge from `o` to operand `i` of `v`.
#[allow(clippy::too_many_arguments)]
fn edge_costs(
    graph: &Graph,
    pricing: &Pricing,
    from: &[Choice],
    to: &[Choice],
    factors: &Option<OpFactors>,
    o: ValueId,
    v: ValueId,
    i: usize,
) -> Result<Vec<Vec<f64>>> {
    let mesh = pricing.mesh;
    // Distinct targets among the consumer's choices, priced once per producer choice.
    let mut targets: Vec<&Sharding> = Vec::new();
    let target_of: Vec<usize> = to
        .iter()
        .map(|b| {
            let t = &b.operands[i];
            match targets.iter().position(|x| same_layout(x, t)) {
                Some(k) => k,
                None => {
                    targets.push(t);
                    targets.len() - 1
                }
            }
        })
        .collect();
    let contracted = contracted_factors(factors.as_ref(), i);
    let mut cost = Vec::with_capacity(from.len());
    for a in from {
        let mut priced: Vec<Option<f64>> = vec![None; targets.len()];
        let proj = match factors {
            Some(f) if !contracted.is_empty() => projection(f, i, &a.result, mesh, &contracted),
            _ => BTreeMap::new(),
        };
        let mut row = Vec::with_capacity(to.len());
        for (b, &t) in to.iter().zip(&target_of) {
            let compatible = contracted
                .iter()
                .all(|k| proj.get(k).map_or(&[][..], |x| &x[..]) == &b.factors[*k][..]);
            if !compatible {
                row.push(f64::INFINITY);
                continue;
            }
            let c = match priced[t] {
                Some(c) => c,
                None => {
                    let c = reshard_seconds(&a.result, targets[t], graph.ty(o), v, pricing)?;
                    priced[t] = Some(c);
                    c
                }
            };
            row.push(c);
        }
        cost.push(row);
    }
    Ok(cost)
}

/// The factors of operand `i` that the result does not carry (contracted, reduced).
fn contracted_factors(f: Option<&OpFactors>, i: usize) -> Vec<usize> {
    let Some(f) = f else { return Vec::new() };
    let in_result: BTreeSet<usize> = f.result.iter().flatten().copied().collect();
    let mut out: Vec<usize> = f.operands[i]
        .iter()
        .flatten()
        .copied()
        .filter(|k| !in_result.contains(k) && f.factors[*k].kind != FactorKind::NeedReplication)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// How operand `i`'s sharding projects onto the contracted factors.
fn projection(
    f: &OpFactors,
    i: usize,
    s: &Sharding,
    mesh: &Mesh,
    contracted: &[usize],
) -> BTreeMap<usize, Vec<String>> {
    rules::project(&f.operands[i], &f.factors, s, mesh)
        .into_iter()
        .filter(|(k, _, _)| contracted.contains(k))
        .map(|(k, axes, _)| (k, axes.to_vec()))
        .collect()
}
