//! Exact pruning of dominated choices: a choice of a value that is no cheaper than another
//! choice of the same value in any context (its own cost, its memory where a limit applies,
//! and its resharding cost against every live choice of every neighbour, entry by entry) can be
//! dropped without losing the optimum. Alpa's strategy space (REFERENCES.md) holds many such
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
            // Whether `b` dominates `a`: no worse anywhere, and better somewhere or earlier.
            let dominates = |b: usize, a: usize| -> bool {
                let (cb, ca) = (p.cost[v][b], p.cost[v][a]);
                let mut equal = cb == ca;
                if cb > ca {
                    return false;
                }
                if with_memory {
                    let (mb, ma) = (p.memory[v][b], p.memory[v][a]);
                    if mb > ma {
                        return false;
                    }
                    equal &= mb == ma;
                }
                for (k, sv, su, live) in &tables {
                    let cost = &p.factors[*k].cost;
                    for &c in live {
                        let (xb, xa) = (cost[b * sv + c * su], cost[a * sv + c * su]);
                        if xb > xa || (xb.is_infinite() && xa.is_finite()) {
                            return false;
                        }
                        equal &= xb == xa;
                    }
                }
                !equal || b < a
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
