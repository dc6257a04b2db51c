//! Alpa's operator merging (REFERENCES.md): a trivial op (every factor passes through: an
//! elementwise op, a broadcast, a transpose) follows its largest operand. Its choice becomes a
//! function of its leader's: the cheapest (own cost plus the resharding between the two) of
//! those that give it the leader's layout, or where none does, the cheapest; its other tables
//! join the leader's.
//!
//! This is not exact: a follower's other neighbours no longer weigh in on its choice. The
//! default solver merges only as a last resort: where the ILP it fell back to fails (microlp
//! stopping on a singular basis), which happens only on cores too wide for exact elimination
//! (a training step's layer on a two-axis mesh of a thousand devices: fifteen choices per
//! activation, a best order holding 15^8-entry tables) where TRW-S also found no pick.

use std::collections::{BTreeMap, BTreeSet};

use super::reduce::{Factor, Problem};

/// A problem with its followers merged into their leaders, and how to pick them back.
pub(crate) struct Merged {
    pub problem: Problem,
    /// Per value of the original problem, the value it follows at the end (itself for the
    /// values left) ...
    root: Vec<usize>,
    /// ... and the map from the root's choices to its own (`None` for the roots).
    map: Vec<Option<Vec<usize>>>,
    /// A root's index in `problem`.
    index: Vec<usize>,
    /// Values merged.
    pub merged: usize,
}

impl Merged {
    /// Every original value's pick from a pick of the merged problem.
    pub fn expand(&self, pick: &[usize]) -> Vec<usize> {
        (0..self.root.len())
            .map(|v| {
                let r = pick[self.index[self.root[v]]];
                match &self.map[v] {
                    None => r,
                    Some(m) => m[r],
                }
            })
            .collect()
    }
}

/// Merges each value with a leader (`leaders[v]`, directly linked to it) into it, in value
/// order; a leader merged earlier into its own leader passes its follower on. `same(v, b, u,
/// a)`: whether choice `b` of `v` gives its value the layout choice `a` of `u` gives `u`'s.
pub(crate) fn merge(
    p: &Problem,
    leaders: &[Option<usize>],
    same: &dyn Fn(usize, usize, usize, usize) -> bool,
) -> Merged {
    let n = p.cost.len();
    let mut cost = p.cost.clone();
    let mut memory = p.memory.clone();
    // Tables by (lo, hi), row-major over lo's choices.
    let mut tables: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    let mut adj: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for f in &p.factors {
        let t = tables
            .entry((f.lo, f.hi))
            .or_insert_with(|| vec![0.0; f.cost.len()]);
        for (x, c) in t.iter_mut().zip(&f.cost) {
            *x += c;
        }
        adj[f.lo].insert(f.hi);
        adj[f.hi].insert(f.lo);
    }
    let mut root: Vec<usize> = (0..n).collect();
    let mut map: Vec<Option<Vec<usize>>> = vec![None; n];
    let mut members: Vec<Vec<usize>> = (0..n).map(|v| vec![v]).collect();
    let mut merged = 0;
    for v in 0..n {
        let Some(leader) = leaders.get(v).copied().flatten() else {
            continue;
        };
        let r = root[leader];
        if r == v || root[v] != v || !adj[v].contains(&r) {
            continue;
        }
        let (nr, nv) = (cost[r].len(), cost[v].len());
        // The table between r and v, read as [a of r][b of v].
        let t = tables
            .remove(&(r.min(v), r.max(v)))
            .expect("invariant: adjacent values share a table");
        let at = |a: usize, b: usize| if r < v { t[a * nv + b] } else { t[b * nr + a] };
        let mut follow = vec![0usize; nr];
        for a in 0..nr {
            if !cost[r][a].is_finite() {
                continue;
            }
            // The leader's own choice under the root's.
            let la = map[leader].as_ref().map_or(a, |m| m[a]);
            let best = |copy: bool| {
                (0..nv)
                    .filter(|&b| !copy || same(v, b, leader, la))
                    .map(|b| (b, cost[v][b] + at(a, b)))
                    .filter(|x| x.1.is_finite())
                    .min_by(|x, y| x.1.total_cmp(&y.1))
            };
            // Alpa's follower copies its operand's layout; where it cannot, its best response.
            let (b, c) = best(true)
                .or_else(|| best(false))
                .unwrap_or((0, f64::INFINITY));
            follow[a] = b;
            cost[r][a] += c;
            memory[r][a] += memory[v][b];
        }
        adj[v].remove(&r);
        adj[r].remove(&v);
        for w in std::mem::take(&mut adj[v]) {
            adj[w].remove(&v);
            let nw = cost[w].len();
            let g = tables
                .remove(&(v.min(w), v.max(w)))
                .expect("invariant: adjacent values share a table");
            let vw = |b: usize, c: usize| if v < w { g[b * nw + c] } else { g[c * nv + b] };
            let h = tables
                .entry((r.min(w), r.max(w)))
                .or_insert_with(|| vec![0.0; nr * nw]);
            for a in 0..nr {
                for c in 0..nw {
                    let k = if r < w { a * nw + c } else { c * nr + a };
                    h[k] += vw(follow[a], c);
                }
            }
            adj[r].insert(w);
            adj[w].insert(r);
        }
        for x in std::mem::take(&mut members[v]) {
            root[x] = r;
            map[x] = Some(match &map[x] {
                None => follow.clone(),
                Some(m) => follow.iter().map(|&b| m[b]).collect(),
            });
            members[r].push(x);
        }
        cost[v] = Vec::new();
        merged += 1;
    }
    let kept: Vec<usize> = (0..n).filter(|&v| root[v] == v).collect();
    let mut index = vec![usize::MAX; n];
    for (k, &v) in kept.iter().enumerate() {
        index[v] = k;
    }
    let factors = tables
        .into_iter()
        .map(|((lo, hi), cost)| Factor {
            lo: index[lo],
            hi: index[hi],
            nb: p.cost[hi].len(),
            cost,
        })
        .collect();
    Merged {
        problem: Problem {
            cost: kept.iter().map(|&v| cost[v].clone()).collect(),
            memory: kept.iter().map(|&v| memory[v].clone()).collect(),
            factors,
            memory_limit: p.memory_limit,
        },
        root,
        map,
        index,
        merged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auto::testutil::{brute, cost_of, random, Rng};

    #[test]
    fn a_merged_pick_costs_what_the_merged_problem_says_and_followers_copy_their_leader() {
        // 1 follows 0, 2 follows 1 (so 0 at the end), 4 follows 3; 2 and 4 share a table.
        let doms = [3, 3, 3, 2, 2, 3];
        let edges = [(0, 1), (1, 2), (2, 4), (3, 4), (0, 5), (4, 5), (2, 3)];
        let leaders = [None, Some(0), Some(1), None, Some(3), None];
        // Layouts: choice k of each value is layout k.
        let same = |_v: usize, b: usize, _u: usize, a: usize| a == b;
        for seed in 1..20 {
            let p = random(&mut Rng(seed), &doms, &edges, 0);
            let m = merge(&p, &leaders, &same);
            assert_eq!(m.merged, 3);
            assert_eq!(m.problem.cost.len(), 3);
            let (best, pick) = brute(&m.problem);
            let full = m.expand(&pick);
            assert_eq!(full[1], full[0], "seed {seed}");
            assert_eq!(full[2], full[0], "seed {seed}");
            assert!(
                (cost_of(&p, &full) - best).abs() < 1e-12,
                "seed {seed}: the merged problem prices its pick as the model does"
            );
            // No better than the whole problem's optimum, as a restriction of it.
            assert!(best >= brute(&p).0 - 1e-12);
        }
    }
}
