//! Exact pruning of dominated choices: a choice of a value that is no cheaper than another
//! choice of the same value in any context (its own cost plus, per neighbour, the most its
//! resharding cost can differ over the neighbour's live choices: Goldstein's dead-end
//! elimination, "Efficient rotamer elimination applied to protein side-chains", Biophys. J.
//! 1994; and no less memory where a limit applies) can be dropped without losing the optimum. Alpa's strategy space (REFERENCES.md) holds many such
//! choices: a pending sum that every consumer reduces the same way, an axis on a dim that only
//! moves the same bytes as another's.
//!
//! Why it is exact: drop the choices one at a time, each dominated by a choice still alive at
//! that moment given its neighbours' choices alive then. Take an optimal pick and walk the drops
//! in order: when the pick uses the dropped choice, its neighbours use choices alive at that
//! moment (none dropped earlier), so switching to the dominating choice costs no more, needs no
//! more memory, and uses no choice dropped earlier. At the end the pick uses no dropped choice
//! and is still optimal (and fits the limit). Ties drop the later choice, so of two equal
//! choices one stays.

use super::reduce::Problem;

/// Marks dominated choices dead (infinite cost) until none is left; returns how many.
pub(crate) fn prune_dominated(p: &mut Problem) -> usize {
    let n = p.cost.len();
    let with_memory = p.memory_limit.is_some();
    let mut around: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, f) in p.factors.iter().enumerate() {
        around[f.lo].push(k);
        around[f.hi].push(k);
    }
    let mut dropped = 0;
    loop {
        let mut changed = false;
        for v in 0..n {
            let alive: Vec<usize> = (0..p.cost[v].len())
                .filter(|&i| p.cost[v][i].is_finite())
                .collect();
            if alive.len() < 2 {
                continue;
            }
            // Per neighbouring table: its stride along `v` and along the other end, and the
            // other end's live choices.
            let tables: Vec<(usize, usize, usize, Vec<usize>)> = around[v]
                .iter()
                .map(|&k| {
                    let f = &p.factors[k];
                    let u = if f.lo == v { f.hi } else { f.lo };
                    let (sv, su) = if f.lo == v { (f.nb, 1) } else { (1, f.nb) };
                    let live = (0..p.cost[u].len())
                        .filter(|&c| p.cost[u][c].is_finite())
                        .collect();
                    (k, sv, su, live)
                })
                .collect();
            // Whether `b` dominates `a` (Goldstein's dead-end elimination criterion): in every
            // context switching from `a` to `b` changes the cost by at most
            // `c(b) − c(a) + Σ_tables max_x (f(b, x) − f(a, x))`, the maximum over the contexts
            // where `a` is allowed. Dominated when that is below 0, or 0 and `b` is earlier.
            let dominates = |b: usize, a: usize| -> bool {
                if with_memory && p.memory[v][b] > p.memory[v][a] {
                    return false;
                }
                let mut worst = p.cost[v][b] - p.cost[v][a];
                for (k, sv, su, live) in &tables {
                    let cost = &p.factors[*k].cost;
                    let mut most = f64::NEG_INFINITY;
                    for &c in live {
                        let (xb, xa) = (cost[b * sv + c * su], cost[a * sv + c * su]);
                        if xa.is_infinite() {
                            continue;
                        }
                        if xb.is_infinite() {
                            return false;
                        }
                        most = most.max(xb - xa);
                    }
                    if most.is_finite() {
                        worst += most;
                    }
                }
                let memory_equal = !with_memory || p.memory[v][b] == p.memory[v][a];
                worst < 0.0 || (worst == 0.0 && (b < a || !memory_equal))
            };
            let mut dead = vec![false; p.cost[v].len()];
            for &a in &alive {
                if alive.iter().any(|&b| b != a && !dead[b] && dominates(b, a)) {
                    dead[a] = true;
                }
            }
            for (a, _) in dead.iter().enumerate().filter(|(_, &d)| d) {
                p.cost[v][a] = f64::INFINITY;
                dropped += 1;
                changed = true;
            }
        }
        if !changed {
            return dropped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auto::reduce::Factor;
    use crate::auto::testutil::{brute, random, Rng};

    #[test]
    fn dead_end_elimination_keeps_the_optimum() {
        let doms = [3, 4, 3, 2, 3];
        let edges = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 3)];
        let mut dropped = 0;
        for seed in 1..60 {
            let mut p = random(&mut Rng(seed), &doms, &edges, 0);
            // Own costs that differ more than the tables do, so that some choices are dead.
            for cs in &mut p.cost {
                for c in cs.iter_mut() {
                    *c *= 4.0;
                }
            }
            let (want, _) = brute(&p);
            dropped += prune_dominated(&mut p);
            let (got, _) = brute(&p);
            assert!((got - want).abs() < 1e-12, "seed {seed}: {got} vs {want}");
        }
        assert!(dropped > 0, "nothing was pruned: the test tests nothing");
    }

    #[test]
    fn a_choice_worse_by_more_than_its_tables_can_win_back_is_dropped() {
        // Choice 1 of value 0 costs 1 more and its table is cheaper by at most 0.5 against
        // choice 0 of value 1: never better, though not worse entry by entry.
        let mut p = Problem {
            cost: vec![vec![0.0, 1.0], vec![0.0, 0.0]],
            memory: vec![vec![0.0; 2]; 2],
            factors: vec![Factor {
                lo: 0,
                hi: 1,
                nb: 2,
                cost: vec![0.5, 0.0, 0.0, 0.2],
            }],
            memory_limit: None,
        };
        prune_dominated(&mut p);
        assert!(p.cost[0][1].is_infinite());
        assert!(p.cost[0][0].is_finite());
    }
}
