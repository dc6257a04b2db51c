//! Sharding rules derived from op factors (no per-op code): project the shardings of an op's
//! tensors onto its factors, resolve conflicts, and project the factor shardings back.
//!
//! A factor is sharded by the axes of the dims that carry it. A dim with several (compound)
//! factors hands its axes to its factors major first, each axis only where its size divides what
//! is left of the factor; a dim with one factor takes any axes (uneven shards are padded, as XLA
//! and `torch.chunk` do). `NeedReplication` factors are never sharded.

use shardc_ir::{Factor, FactorKind, Mesh, OpFactors, Sharding};

/// The mesh axes splitting each factor of one op, major first (`axes[f]` for factor `f`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct FactorShardings {
    pub axes: Vec<Vec<String>>,
}

/// One tensor's opinion on one factor.
#[derive(Clone, Debug)]
pub(crate) struct Candidate<'a> {
    pub axes: &'a [String],
    /// Precedence of the sharding it came from: lower wins (the user priority of its source).
    pub priority: u32,
    /// Index of the tensor among the op's operands then result, for tie-breaking and reasons.
    pub tensor: usize,
    /// From a closed dim: the factor must have exactly these axes for this tensor to agree.
    pub closed: bool,
}

/// How conflicts between candidates are settled.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Where tensors disagree on a factor, keep only what they agree on (the common prefix).
    Basic,
    /// Where tensors disagree, the candidate of the best precedence wins.
    Aggressive,
}

fn axis_size(mesh: &Mesh, a: &str) -> u64 {
    mesh.axis_size(a).unwrap_or(1)
}

fn axes_size(mesh: &Mesh, axes: &[String]) -> u64 {
    axes.iter().map(|a| axis_size(mesh, a)).product()
}

/// Projects one tensor's dim shardings onto the factors of its dims: `(factor, axes)` for every
/// factor that receives axes.
pub(crate) fn project<'a>(
    dims: &[Vec<usize>],
    factors: &[Factor],
    sharding: &'a Sharding,
    mesh: &Mesh,
) -> Vec<(usize, &'a [String], bool)> {
    let mut out = Vec::new();
    for (d, fl) in dims.iter().enumerate() {
        let Some(ds) = sharding.dims.get(d) else {
            break;
        };
        if fl.is_empty() {
            continue;
        }
        if ds.axes.is_empty() {
            // A closed, unsplit dim says its factors stay unsplit: an empty candidate, which
            // conflicts with (and so holds back) other tensors' claims until the last phase.
            if !ds.open {
                out.extend(
                    fl.iter()
                        .filter(|&&f| factors[f].kind != FactorKind::NeedReplication)
                        .map(|&f| (f, &ds.axes[..], true)),
                );
            }
            continue;
        }
        if let [f] = fl[..] {
            if factors[f].kind != FactorKind::NeedReplication {
                out.push((f, &ds.axes[..], !ds.open));
            }
            continue;
        }
        // Compound dim: hand the axes to the factors major first, only where sizes divide.
        let mut i = 0;
        let mut left = factors[fl[0]].size;
        // Per factor of the dim, the range of the dim's axes it receives.
        let mut per: Vec<(usize, usize)> = vec![(0, 0); fl.len()];
        for (j, a) in ds.axes.iter().enumerate() {
            while i < fl.len() && left == 1 {
                i += 1;
                left = fl.get(i).map_or(1, |&f| factors[f].size);
            }
            if i >= fl.len() || factors[fl[i]].kind == FactorKind::NeedReplication {
                break;
            }
            let n = axis_size(mesh, a);
            if left % n != 0 {
                break;
            }
            if per[i].0 == per[i].1 {
                per[i] = (j, j);
            }
            per[i].1 = j + 1;
            left /= n;
        }
        for (k, (lo, hi)) in per.into_iter().enumerate() {
            if hi > lo {
                out.push((fl[k], &ds.axes[lo..hi], !ds.open));
            }
        }
    }
    out
}

fn is_prefix(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Settles each factor's sharding from its candidates, then makes every axis shard at most one
/// factor (factors of better precedence keep theirs; the others are cut before the clash).
/// Returns the factor shardings and, per factor, the tensors whose candidate it follows.
pub(crate) fn resolve(
    factors: &[Factor],
    candidates: &[Vec<Candidate>],
    strategy: Strategy,
) -> (FactorShardings, Vec<Vec<usize>>) {
    let n = factors.len();
    let mut chosen: Vec<(&[String], u32)> = vec![(&[], u32::MAX); n];
    let mut sources: Vec<Vec<usize>> = vec![Vec::new(); n];
    for f in 0..n {
        let cands = &candidates[f];
        if cands.is_empty() || factors[f].kind == FactorKind::NeedReplication {
            continue;
        }
        // The longest candidate; it wins outright when all others are its prefixes (merging
        // compatible partial shardings).
        let longest = cands
            .iter()
            .max_by(|a, b| {
                a.axes
                    .len()
                    .cmp(&b.axes.len())
                    .then(b.priority.cmp(&a.priority))
                    .then(b.tensor.cmp(&a.tensor))
            })
            .expect("invariant: cands is non-empty");
        let agrees = |c: &Candidate, axes: &[String]| {
            if c.closed {
                c.axes == axes
            } else {
                is_prefix(c.axes, axes)
            }
        };
        let compatible = cands.iter().all(|c| agrees(c, longest.axes));
        let axes: &[String] = if compatible {
            longest.axes
        } else {
            match strategy {
                Strategy::Basic => {
                    let mut p = longest.axes;
                    for c in cands {
                        let k = p.iter().zip(c.axes).take_while(|(x, y)| x == y).count();
                        p = &p[..k];
                    }
                    p
                }
                Strategy::Aggressive => {
                    let best = cands
                        .iter()
                        .min_by(|a, b| {
                            a.priority
                                .cmp(&b.priority)
                                .then(b.axes.len().cmp(&a.axes.len()))
                                .then(a.tensor.cmp(&b.tensor))
                        })
                        .expect("invariant: cands is non-empty");
                    best.axes
                }
            }
        };
        let agreeing: Vec<&Candidate> = cands
            .iter()
            .filter(|c| !c.axes.is_empty() && is_prefix(c.axes, axes))
            .collect();
        let prio = agreeing
            .iter()
            .map(|c| c.priority)
            .min()
            .unwrap_or(u32::MAX);
        sources[f] = agreeing.iter().map(|c| c.tensor).collect();
        chosen[f] = (axes, prio);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&f| (chosen[f].1, f));
    let mut used: Vec<&str> = Vec::new();
    let mut axes = vec![Vec::new(); n];
    for f in order {
        let mine = chosen[f].0;
        let keep = mine
            .iter()
            .take_while(|a| !used.contains(&a.as_str()))
            .count();
        axes[f] = mine[..keep].to_vec();
        used.extend(mine[..keep].iter().map(String::as_str));
        if axes[f].is_empty() {
            sources[f].clear();
        }
    }
    (FactorShardings { axes }, sources)
}

/// Projects factor shardings back onto one tensor: the axes of each dim. A compound dim shows
/// its factors' axes major first, as far as that is a valid split of the dim (a minor factor's
/// axes show only when every factor before it is fully split or of size 1).
pub(crate) fn back_project(
    dims: &[Vec<usize>],
    factors: &[Factor],
    fs: &FactorShardings,
    mesh: &Mesh,
) -> Vec<Vec<String>> {
    dims.iter()
        .map(|fl| {
            if let [f] = fl[..] {
                return fs.axes[f].clone();
            }
            let mut acc = Vec::new();
            let mut blocked = false;
            for &f in fl {
                let axes = &fs.axes[f];
                let size = factors[f].size;
                if axes.is_empty() {
                    blocked |= size > 1;
                    continue;
                }
                let n = axes_size(mesh, axes);
                if blocked || size % n != 0 {
                    break;
                }
                acc.extend(axes.iter().cloned());
                blocked = n != size;
            }
            acc
        })
        .collect()
}

/// The axes of the sharded reduction factors: the result is a pending reduction over them.
pub(crate) fn reduction_axes(op: &OpFactors, fs: &FactorShardings) -> Vec<String> {
    op.factors
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == FactorKind::Reduction)
        .flat_map(|(i, _)| fs.axes[i].iter().cloned())
        .collect()
}

/// Whether any window factor is sharded (a halo exchange or data movement is needed).
pub(crate) fn sharded_windows(op: &OpFactors, fs: &FactorShardings) -> Vec<usize> {
    op.factors
        .iter()
        .enumerate()
        .filter(|(i, f)| f.kind == FactorKind::Window && !fs.axes[*i].is_empty())
        .map(|(i, _)| i)
        .collect()
}

/// Whether the factor table fits the tensors it describes (one entry per operand and dim).
pub(crate) fn fits(op: &OpFactors, operand_ranks: &[usize], result_rank: usize) -> bool {
    let in_range = |dims: &[Vec<usize>]| dims.iter().flatten().all(|&f| f < op.factors.len());
    op.operands.len() == operand_ranks.len()
        && op
            .operands
            .iter()
            .zip(operand_ranks)
            .all(|(d, &r)| d.len() == r && in_range(d))
        && op.result.len() == result_rank
        && in_range(&op.result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardc_ir::{DType, Op, TensorType};

    fn mesh() -> Mesh {
        "dp=2,tp=4".parse().unwrap()
    }

    fn matmul() -> OpFactors {
        let op = Op::DotGeneral {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![1],
            rhs_contract: vec![0],
        };
        let (a, b) = (
            TensorType::new(DType::F32, vec![8, 16]),
            TensorType::new(DType::F32, vec![16, 32]),
        );
        shardc_ir::op_factors(&op, &[&a, &b], &TensorType::new(DType::F32, vec![8, 32]))
    }

    #[test]
    fn compound_dim_hands_axes_major_first_where_sizes_divide() {
        // A reshape [12] -> [3, 4]: factors 3 (major) and 4; dp=2 does not divide 3.
        let op = shardc_ir::op_factors(
            &Op::Reshape,
            &[&TensorType::new(DType::F32, vec![12])],
            &TensorType::new(DType::F32, vec![3, 4]),
        );
        let m: Mesh = "a=3,b=2,c=2".parse().unwrap();
        let s = Sharding::from_dims(&[&["a", "b"]]);
        let p = project(&op.operands[0], &op.factors, &s, &m);
        let names = |p: Vec<(usize, &[String], bool)>| {
            p.into_iter()
                .map(|(k, a, _)| (k, a.join(",")))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(p), vec![(0, "a".to_string()), (1, "b".to_string())]);
        let s = Sharding::from_dims(&[&["b"]]);
        assert!(project(&op.operands[0], &op.factors, &s, &m).is_empty());
    }

    #[test]
    fn conflicting_candidates_keep_their_common_prefix_or_the_best_precedence() {
        let f = matmul();
        let owned = |axes: &[&str]| axes.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let (dp_tp, dp, tp) = (owned(&["dp", "tp"]), owned(&["dp"]), owned(&["tp"]));
        let cand = |axes: &'static str, priority, tensor| Candidate {
            axes: match axes {
                "dp,tp" => &dp_tp[..],
                "dp" => &dp[..],
                _ => &tp[..],
            },
            priority,
            tensor,
            closed: false,
        };
        let mut c = vec![Vec::new(); f.factors.len()];
        c[0] = vec![cand("dp,tp", 1, 0), cand("dp", 1, 2)];
        c[1] = vec![cand("tp", 1, 1), cand("dp", 0, 2)];
        let (basic, _) = resolve(&f.factors, &c, Strategy::Basic);
        // Factor 0: compatible, the longer wins; factor 1: disagree, nothing agreed; factor 0
        // took dp and tp, so nothing is left to clash over.
        assert_eq!(basic.axes[0], vec!["dp", "tp"]);
        assert!(basic.axes[1].is_empty());
        let (aggr, _) = resolve(&f.factors, &c, Strategy::Aggressive);
        // Factor 1 follows priority 0 (dp), which beats factor 0's priority-1 claim on dp.
        assert_eq!(aggr.axes[1], vec!["dp"]);
        assert!(aggr.axes[0].is_empty());
    }

    #[test]
    fn sharded_contracting_factor_is_a_pending_reduction() {
        let f = matmul();
        let m = mesh();
        let w2 = Sharding::from_dims(&[&["tp"], &[]]);
        let p = project(&f.operands[1], &f.factors, &w2, &m);
        let mut c = vec![Vec::new(); f.factors.len()];
        for (k, axes, closed) in p {
            c[k].push(Candidate {
                axes,
                priority: 0,
                tensor: 1,
                closed,
            });
        }
        let (fs, _) = resolve(&f.factors, &c, Strategy::Basic);
        assert_eq!(reduction_axes(&f, &fs), vec!["tp"]);
        assert_eq!(
            back_project(&f.operands[0], &f.factors, &fs, &m),
            vec![vec![], vec!["tp".to_string()]]
        );
        assert_eq!(
            back_project(&f.result, &f.factors, &fs, &m),
            vec![Vec::<String>::new(); 2]
        );
    }
}
