//! The collectives a sharded graph needs: operands resharded to what each op's factors require
//! given its result's sharding, pending sums reduced (once, at their producer), results brought
//! from the sharding the op computes them in to the assigned one, and halo exchanges for sharded
//! window factors. Also `explain`: why a value has its sharding and what its consumers need.

use std::fmt;

use shardc_cost_model::CommUse;
use shardc_ir::{Graph, ShardingAssignment, TensorType, ValueId};

use crate::error::{Result, ShardingError};
use crate::format::jax;
use crate::needs::{self, OpNeeds};
use crate::propagate::ShardedGraph;
use crate::reason::Reason;
use crate::reshard::{local_type, reshard, same_layout, ReshardKind};

/// A collective with the value it moves (`None`: the node's own result).
struct Need {
    comm: CommUse,
    operand: Option<ValueId>,
}

/// Every collective `assignment` implies for `graph`, in node order.
pub fn required_collectives(
    graph: &Graph,
    assignment: &ShardingAssignment,
) -> Result<Vec<CommUse>> {
    Ok(needs_of(graph, assignment, true, None)?
        .into_iter()
        .map(|n| n.comm)
        .collect())
}

/// [`required_collectives`] with each collective-permute's source-target pairs left empty:
/// what the planner prices (bytes and groups), without walking the devices for every permute.
/// `like[v]` names a node of the same op and types as `v` (the representative of its layer
/// class, `auto::layers`), which comes no later than `v`: where the two nodes and their operands
/// have the same shardings, `v`'s requirements are the representative's, worked out once.
pub(crate) fn required_collectives_unpaired(
    graph: &Graph,
    assignment: &ShardingAssignment,
    like: &[usize],
) -> Result<Vec<CommUse>> {
    Ok(needs_of(graph, assignment, false, Some(like))?
        .into_iter()
        .map(|n| n.comm)
        .collect())
}

fn check(graph: &Graph, assignment: &ShardingAssignment) -> Result<()> {
    if assignment.shardings.len() != graph.len() {
        return Err(ShardingError::Invalid {
            value: graph.name.clone(),
            message: format!(
                "the assignment has {} shardings, the graph {} values",
                assignment.shardings.len(),
                graph.len()
            ),
        });
    }
    for v in graph.ids() {
        assignment.shardings[v.index()]
            .validate(&assignment.mesh, graph.ty(v).rank())
            .map_err(|message| ShardingError::Invalid {
                value: graph.node(v).name.clone(),
                message,
            })?;
    }
    Ok(())
}

fn needs_of(
    graph: &Graph,
    assignment: &ShardingAssignment,
    paired: bool,
    like: Option<&[usize]>,
) -> Result<Vec<Need>> {
    check(graph, assignment)?;
    let mesh = &assignment.mesh;
    let assigned = &assignment.shardings;
    let ops = op_requirements(graph, assignment, like);
    let ops = |v: ValueId| ops.slot[v.index()].map(|k| &ops.table[k as usize]);
    let users = graph.users();
    let name = |v: ValueId| graph.node(v).name.as_str();
    let mut out = Vec::new();
    // Pending sums are reduced once, at the producer: straight into what the consumers need if
    // they all need the same (a reduce-scatter where that is sharded), else to the plain value.
    let mut reduced = assigned.clone();
    for v in graph.ids() {
        let s = &assigned[v.index()];
        if s.partial.is_empty() {
            continue;
        }
        let plain = shardc_ir::Sharding {
            partial: Vec::new(),
            ..s.clone()
        };
        let mut targets: Vec<shardc_ir::Sharding> = Vec::new();
        let mut add = |t: shardc_ir::Sharding| {
            if !targets.iter().any(|x| same_layout(x, &t)) {
                targets.push(t);
            }
        };
        for &u in &users[v.index()] {
            match ops(u) {
                Some((_, need)) => {
                    for (i, &o) in graph.node(u).operands.iter().enumerate() {
                        if o == v {
                            add(need.operands[i].clone());
                        }
                    }
                }
                None => add(shardc_ir::Sharding::replicated(s.rank())),
            }
        }
        if graph.outputs.contains(&v) {
            add(plain.clone());
        }
        let target = match targets.len() {
            0 => continue,
            1 => targets.remove(0),
            _ => plain,
        };
        let why = format!(
            "`{}` is a pending {} over {}: reduced to {} for its consumers",
            name(v),
            s.partial_fn.name(),
            s.partial.join(","),
            jax(&target)
        );
        push(
            &mut out,
            mesh,
            v,
            None,
            s,
            &target,
            graph.ty(v),
            why,
            paired,
        )?;
        reduced[v.index()] = target;
    }
    // One reshard per value, target layout and pass (forward, backward, update): the consumers
    // of one pass that need a value in one layout read one collective's result (the
    // partitioner's e-graph merges identical collectives; Megatron's sequence-parallel backward
    // gathers the output gradient once for both of its matmuls). The next pass does it again,
    // as Megatron re-gathers in the backward rather than keeping the gathered activation
    // (Korthikanti et al. 2022 §4.2.2).
    let mut done: std::collections::BTreeSet<(ValueId, shardc_ir::Sharding, u8, bool)> =
        std::collections::BTreeSet::new();
    for n in graph.ids() {
        let Some((f, need)) = ops(n) else {
            continue;
        };
        for (i, &o) in graph.node(n).operands.iter().enumerate() {
            let from = &reduced[o.index()];
            let to = &need.operands[i];
            if same_layout(from, to) {
                continue;
            }
            // Needs are closed shardings, so equal layouts are equal values.
            let key = (
                o,
                to.clone(),
                match graph.node(n).phase {
                    shardc_ir::Phase::Forward => 0u8,
                    shardc_ir::Phase::BackwardInput | shardc_ir::Phase::BackwardWeight => 1,
                    shardc_ir::Phase::Update => 2,
                },
                graph.node(n).recompute,
            );
            if !done.insert(key) {
                continue;
            }
            let why = format!(
                "operand {i} `{}` of `{}`: {} to {}",
                name(o),
                name(n),
                jax(from),
                jax(to)
            );
            push(
                &mut out,
                mesh,
                n,
                Some(o),
                from,
                to,
                graph.ty(o),
                why,
                paired,
            )?;
        }
        let target = &assigned[n.index()];
        if !same_layout(&need.natural, target) {
            let why = format!(
                "result of `{}`: computed as {}, assigned {}",
                name(n),
                jax(&need.natural),
                jax(target)
            );
            push(
                &mut out,
                mesh,
                n,
                None,
                &need.natural,
                target,
                graph.ty(n),
                why,
                paired,
            )?;
        }
        for (k, places) in needs::windows(f, &need.factors) {
            let axis = need.factors.axes[k]
                .last()
                .expect("invariant: sharded window factor")
                .clone();
            let size = mesh.axis_size(&axis).unwrap_or(1);
            for (i, d) in places {
                let o = graph.node(n).operands[i];
                let mut local = local_type(&need.operands[i], graph.ty(o), mesh);
                // Estimate of the halo: half the size change across the op each way, at least one
                // element, at most the local shard (the partitioner computes the exact halo).
                let change = graph.ty(o).dims()[d].abs_diff(f.factors[k].size);
                let width = change.div_ceil(2).max(1).min(local.dims()[d]);
                let mut dims = local.dims().to_vec();
                dims[d] = width;
                local = TensorType::new(local.dtype, dims);
                for (dir, pairs) in [
                    ("up", (0..size - 1).map(|c| (c, c + 1)).collect::<Vec<_>>()),
                    ("down", (0..size - 1).map(|c| (c + 1, c)).collect()),
                ] {
                    out.push(Need {
                        comm: CommUse {
                            node: n,
                            op: shardc_ir::Op::CollectivePermute {
                                axes: vec![axis.clone()],
                                pairs,
                            },
                            local_operand: local.clone(),
                            reason: format!(
                                "halo of operand {i} `{}` dim {d} of `{}` sharded on {axis} ({dir})",
                                name(o),
                                name(n)
                            ),
                        },
                        operand: Some(o),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Every op's requirements ([`needs::op_needs`]): `slot[v]` indexes `table` (`None`: a source,
/// or an op without a usable rule).
struct Requirements {
    slot: Vec<Option<u32>>,
    table: Vec<(shardc_ir::OpFactors, OpNeeds)>,
}

/// The requirements of every op, those of a node that is [`required_collectives_unpaired`]'s
/// `like` of another with the same shardings (its own and its operands') shared.
fn op_requirements(
    graph: &Graph,
    assignment: &ShardingAssignment,
    like: Option<&[usize]>,
) -> Requirements {
    let assigned = &assignment.shardings;
    let mut slot: Vec<Option<u32>> = Vec::with_capacity(graph.len());
    let mut table = Vec::new();
    for n in graph.ids() {
        let rep = like.map_or(n.index(), |l| l[n.index()]);
        if rep < n.index() {
            let (a, b) = (graph.node(n), graph.node(ValueId(rep as u32)));
            let same = assigned[n.index()] == assigned[rep]
                && a.operands.len() == b.operands.len()
                && a.operands
                    .iter()
                    .zip(&b.operands)
                    .all(|(x, y)| assigned[x.index()] == assigned[y.index()]);
            if same {
                slot.push(slot[rep]);
                continue;
            }
        }
        let f = graph.factors(n);
        if graph.node(n).op.is_source() || !needs::usable(graph, n, &f) {
            slot.push(None);
            continue;
        }
        let need = needs::op_needs(graph, n, &f, assignment);
        slot.push(Some(table.len() as u32));
        table.push((f, need));
    }
    Requirements { slot, table }
}

/// Appends the collectives of resharding `from` to `to` on behalf of `node`.
#[allow(clippy::too_many_arguments)]
fn push(
    out: &mut Vec<Need>,
    mesh: &shardc_ir::Mesh,
    node: ValueId,
    operand: Option<ValueId>,
    from: &shardc_ir::Sharding,
    to: &shardc_ir::Sharding,
    ty: &TensorType,
    why: String,
    paired: bool,
) -> Result<()> {
    let steps = if paired {
        reshard(from, to, ty, mesh)?
    } else {
        crate::reshard::reshard_unpaired(from, to, ty, mesh)?
    };
    for step in steps {
        if let Some(op) = step.collective() {
            out.push(Need {
                comm: CommUse {
                    node,
                    op,
                    local_operand: step.local_operand,
                    reason: why.clone(),
                },
                operand,
            });
        }
    }
    Ok(())
}

/// Why one value has its sharding, and the collectives its consumers need.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub value: ValueId,
    pub name: String,
    pub sharding: shardc_ir::Sharding,
    /// The chain of reasons, from the value back to the annotations, one line each.
    pub chain: Vec<String>,
    /// Collectives that move this value (its consumers' reshards, its own pending sum).
    pub collectives: Vec<CommUse>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.name, jax(&self.sharding))?;
        writeln!(f, "why:")?;
        for l in &self.chain {
            writeln!(f, "  {l}")?;
        }
        if self.collectives.is_empty() {
            writeln!(f, "collectives: none")?;
        } else {
            writeln!(f, "collectives:")?;
            for c in &self.collectives {
                writeln!(f, "  {} on {}: {}", c.op.name(), c.local_operand, c.reason)?;
                if let Some(k) = describe(&c.op) {
                    writeln!(f, "    {k}")?;
                }
            }
        }
        Ok(())
    }
}

fn describe(op: &shardc_ir::Op) -> Option<String> {
    use shardc_ir::Op;
    let kind = match op.clone() {
        Op::AllGather { dim, axes } => ReshardKind::AllGather { dim, axes },
        Op::ReduceScatter { dim, axes, func } => ReshardKind::ReduceScatter { dim, axes, func },
        Op::AllReduce { axes, func } => ReshardKind::AllReduce { axes, func },
        Op::AllToAll {
            split_dim,
            concat_dim,
            axes,
        } => ReshardKind::AllToAll {
            split_dim,
            concat_dim,
            axes,
        },
        Op::CollectivePermute { axes, pairs } => ReshardKind::CollectivePermute { axes, pairs },
        _ => return None,
    };
    Some(kind.to_string())
}

impl ShardedGraph {
    /// The collectives this graph's assignment needs (see [`required_collectives`]).
    pub fn collectives(&self) -> Result<Vec<CommUse>> {
        required_collectives(&self.graph, &self.assignment)
    }

    /// Why `v` has its sharding (following rules back to annotations) and the collectives that
    /// move it.
    pub fn explain(&self, v: ValueId) -> Result<Explanation> {
        if v.index() >= self.graph.len() {
            return Err(ShardingError::UnknownValue(v.to_string()));
        }
        let name = |v: ValueId| self.graph.node(v).name.clone();
        let mut chain = Vec::new();
        let mut seen = vec![false; self.graph.len()];
        let mut stack = vec![(v, 0usize)];
        // Depth-first back to the annotations; a long chain is cut, the rest is one more hop.
        while let Some((w, depth)) = stack.pop() {
            if seen[w.index()] || chain.len() >= 64 {
                continue;
            }
            seen[w.index()] = true;
            let pad = "  ".repeat(depth);
            let s = jax(self.sharding(w));
            match self.reason(w) {
                Reason::Unknown => chain.push(format!(
                    "{pad}`{}`: {s}: no annotation reaches it, replicated",
                    name(w)
                )),
                Reason::Annotation { priority } => chain.push(format!(
                    "{pad}`{}`: {s}: annotated (priority {priority})",
                    name(w)
                )),
                Reason::Fallback { op } => chain.push(format!(
                    "{pad}`{}`: {s}: `{op}` has no usable sharding rule, replicated",
                    name(w)
                )),
                Reason::Consumer { user, .. } => chain.push(format!(
                    "{pad}`{}`: {s}: needed by `{}`",
                    name(w),
                    name(*user)
                )),
                Reason::Uneven => chain.push(format!(
                    "{pad}`{}`: {s}: an interface value the propagated sharding split unevenly, so replicated",
                    name(w)
                )),
                Reason::ShardAs { from } => {
                    let from_names: Vec<String> =
                        from.iter().map(|&x| format!("`{}`", name(x))).collect();
                    chain.push(format!(
                        "{pad}`{}`: {s}: shard-as group with {}",
                        name(w),
                        from_names.join(", ")
                    ));
                    for &x in from.iter().rev() {
                        stack.push((x, depth + 1));
                    }
                }
                Reason::Rule {
                    op,
                    from,
                    phase,
                    round,
                } => {
                    let via = if *op == w {
                        format!("its op `{}`", self.graph.node(*op).op.name())
                    } else {
                        format!(
                            "its user `{}` ({})",
                            name(*op),
                            self.graph.node(*op).op.name()
                        )
                    };
                    let from_names: Vec<String> =
                        from.iter().map(|&x| format!("`{}`", name(x))).collect();
                    chain.push(format!(
                        "{pad}`{}`: {s}: rule of {via} from {} ({phase:?}, priority round {round})",
                        name(w),
                        from_names.join(", ")
                    ));
                    for &x in from.iter().rev() {
                        stack.push((x, depth + 1));
                    }
                }
            }
        }
        let collectives = needs_of(&self.graph, &self.assignment, true, None)?
            .into_iter()
            .filter(|n| n.operand == Some(v) || (n.operand.is_none() && n.comm.node == v))
            .map(|n| n.comm)
            .collect();
        Ok(Explanation {
            value: v,
            name: name(v),
            sharding: self.sharding(v).clone(),
            chain,
            collectives,
        })
    }

    /// Every value with its sharding and reason, then the collectives: the text a person reviews.
    pub fn report(&self) -> Result<String> {
        use std::fmt::Write;
        let mut out = String::new();
        let g = &self.graph;
        let width = g.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
        for v in g.ids() {
            let n = g.node(v);
            let why = match self.reason(v) {
                Reason::Unknown => "unreached".to_string(),
                Reason::Annotation { priority } => format!("annotation p{priority}"),
                Reason::Fallback { .. } => "no rule".to_string(),
                Reason::Consumer { .. } => "consumer".to_string(),
                Reason::ShardAs { .. } => "shard-as group".to_string(),
                Reason::Uneven => "uneven interface".to_string(),
                Reason::Rule { op, .. } if *op == v => format!("forward via {}", n.op.name()),
                Reason::Rule { op, .. } => format!("backward from `{}`", g.node(*op).name),
            };
            let _ = writeln!(
                out,
                "{:width$}  {:16} {:40} {why}",
                n.name,
                n.ty.to_string(),
                jax(self.sharding(v))
            );
        }
        let comms = self.collectives()?;
        let _ = writeln!(out, "collectives:");
        if comms.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for c in comms {
            let k = describe(&c.op).unwrap_or_else(|| c.op.name().to_string());
            let _ = writeln!(out, "  {k} on {}: {}", c.local_operand, c.reason);
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use shardc_ir::zoo::{gpt, GptConfig, GptShardings};
    use shardc_ir::{training_step, DType, Mesh, RecomputeMode, Sharding, TrainOptions};

    use super::*;
    use crate::auto::layers;
    use crate::propagate::propagate;

    fn megatron_step(mesh: &Mesh) -> (Graph, ShardingAssignment) {
        let fwd = gpt(&GptConfig {
            layers: 4,
            hidden: 64,
            heads: 4,
            seq: 16,
            vocab: 128,
            batch: 8,
            dtype: DType::F32,
            shardings: GptShardings::MegatronSequenceParallel(mesh.clone()),
        })
        .unwrap();
        let mut g = training_step(
            &fwd,
            &TrainOptions {
                recompute: Some(RecomputeMode::Full),
                ..TrainOptions::default()
            },
        )
        .unwrap();
        shardc_ir::zoo::annotate_megatron_training(&mut g);
        let a = propagate(&g, mesh, &g.annotations).unwrap().assignment;
        (g, a)
    }

    /// The requirements shared between layer classes are the ones worked out node by node:
    /// the same collectives, in the same order, with the same reasons, also where one layer's
    /// value is sharded unlike its class (which must not take the representative's needs).
    #[test]
    fn shared_requirements_are_each_nodes_own() {
        let mesh = Mesh::new(&[("dp", 2), ("tp", 2)]).unwrap();
        let (g, mut a) = megatron_step(&mesh);
        let like = layers::classes(&g).representatives();
        assert!(
            like.iter().enumerate().filter(|&(v, &r)| r < v).count() > g.len() / 2,
            "most nodes share a representative"
        );
        let own = |a: &ShardingAssignment| -> Vec<CommUse> {
            needs_of(&g, a, false, None)
                .unwrap()
                .into_iter()
                .map(|n| n.comm)
                .collect()
        };
        let shared = required_collectives_unpaired(&g, &a, &like).unwrap();
        assert!(!shared.is_empty());
        assert_eq!(shared, own(&a));
        // One layer's sharded forward value replicated: its readers need other collectives than
        // the representative layer's.
        let v = g
            .ids()
            .find(|&v| {
                g.node(v).name.starts_with("layers.2.")
                    && like[v.index()] < v.index()
                    && !a.shardings[v.index()].used_axes().is_empty()
                    && g.node(v).phase == shardc_ir::Phase::Forward
            })
            .unwrap();
        a.shardings[v.index()] = Sharding::replicated(g.ty(v).rank());
        let shared = required_collectives_unpaired(&g, &a, &like).unwrap();
        let own = own(&a);
        assert_eq!(shared, own);
        assert_ne!(
            own,
            required_collectives_unpaired(&g, &megatron_step(&mesh).1, &like).unwrap()
        );
    }
}
