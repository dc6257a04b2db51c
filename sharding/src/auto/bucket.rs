//! Exact min-sum bucket elimination (Dechter, "Bucket elimination: a unifying framework for
//! reasoning", AIJ 1999) over the model's pairwise factor graph, with tables over arbitrary
//! scopes: Alpa's objective (REFERENCES.md) solved structurally instead of by the ILP.
//!
//! Eliminating a value replaces every table that mentions it by one table over its neighbours
//! holding, for each pick of them, the least cost over the value's choices; the value's best
//! choice given its neighbours is kept (an argmin table) to pick it back. The cost of a whole
//! elimination is governed by the largest table it makes, which the order decides: the order is
//! greedy, each step the value whose table would be smallest (weighted min-degree), so a
//! training step's layer (a ladder of forward activations read by the backward, residual
//! streams, parameters read three times) eliminates with tables of a few neighbours. When the
//! order would make a table above [`MAX_TABLE`] entries, [`plan`] says so and the caller falls
//! back to the ILP.
//!
//! The memory constraint is not part of this method: it minimises cost alone (or, under a
//! Lagrange multiplier, cost + λ·memory, see `ilp::solve`).

use super::reduce::Problem;

/// The largest table one elimination may make (entries), and the most entries all argmin
/// tables together may hold: 2^22 f64 and u32 entries are 48 MB, which keeps planning well
/// within its 2 GiB.
pub(crate) const MAX_TABLE: usize = 1 << 22;
const MAX_TOTAL: usize = 1 << 24;

/// A cost table over `scope` (ascending value indices), row-major: the last value of the
/// scope varies fastest; indices are positions in each value's list of live choices.
#[derive(Clone, Debug)]
struct Table {
    scope: Vec<usize>,
    cost: Vec<f64>,
}

/// How one eliminated value is picked back: its best live choice (a position in `live`) for
/// each pick of `scope`.
struct Back {
    v: usize,
    scope: Vec<usize>,
    argmin: Vec<u32>,
}

/// An elimination order that stays within the table limits, and its largest table.
pub(crate) struct Order {
    order: Vec<usize>,
    /// Entries of the largest table it makes.
    pub largest: usize,
    /// Entries of all its tables.
    pub total: usize,
}

/// The better of two greedy elimination orders of `p` (each step the value whose table would be
/// smallest, or whose elimination adds the fewest table entries between its neighbours:
/// weighted min-fill), or `None` when both would make a table above [`MAX_TABLE`] entries (or
/// more than `MAX_TOTAL` in all).
/// `times`: the table limit that many times larger, the total half as many (the merged
/// model's last resort at 4: one table of 2^24 f64 and u32 entries is 200 MB, all of them
/// at most 400 MB).
pub(crate) fn plan(p: &Problem, times: usize) -> Option<Order> {
    let a = greedy(p, false);
    let b = greedy(p, true);
    let ok = |o: &Order| o.largest <= MAX_TABLE * times && o.total <= MAX_TOTAL * times.div_ceil(2);
    match (ok(&a), ok(&b)) {
        (true, true) if b.total < a.total => Some(b),
        (true, _) => Some(a),
        (false, true) => Some(b),
        (false, false) => None,
    }
}

/// One greedy order (see [`plan`]); `fill`: by weighted min-fill, else by table size.
fn greedy(p: &Problem, fill: bool) -> Order {
    use std::collections::BTreeSet;
    let n = p.cost.len();
    let live = p.live_choices();
    let dom: Vec<usize> = live.iter().map(|l| l.len().max(1)).collect();
    let mut adj: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for f in &p.factors {
        adj[f.lo].insert(f.hi);
        adj[f.hi].insert(f.lo);
    }
    let size = |v: usize, adj: &[BTreeSet<usize>]| -> usize {
        adj[v]
            .iter()
            .try_fold(1usize, |s, &u| s.checked_mul(dom[u]))
            .unwrap_or(usize::MAX)
    };
    let key_of = |v: usize, adj: &[BTreeSet<usize>]| -> (usize, usize) {
        let s = size(v, adj);
        if !fill {
            return (s, 0);
        }
        let nb: Vec<usize> = adj[v].iter().copied().collect();
        let mut added = 0usize;
        for (i, &x) in nb.iter().enumerate() {
            for &y in &nb[i + 1..] {
                if !adj[x].contains(&y) {
                    added = added.saturating_add(dom[x] * dom[y]);
                }
            }
        }
        (added, s)
    };
    let mut key: Vec<(usize, usize)> = (0..n).map(|v| key_of(v, &adj)).collect();
    let mut heap: BTreeSet<((usize, usize), usize)> = (0..n).map(|v| (key[v], v)).collect();
    let mut order = Vec::with_capacity(n);
    let (mut largest, mut total) = (1usize, 0usize);
    while let Some((_, v)) = heap.pop_first() {
        let s = size(v, &adj);
        largest = largest.max(s);
        total = total.saturating_add(s);
        order.push(v);
        let nbrs: Vec<usize> = std::mem::take(&mut adj[v]).into_iter().collect();
        for &u in &nbrs {
            adj[u].remove(&v);
            for &w in &nbrs {
                if w != u {
                    adj[u].insert(w);
                }
            }
        }
        // Min-fill keys change for the neighbours' neighbours too.
        let mut touched: BTreeSet<usize> = nbrs.iter().copied().collect();
        if fill {
            for &u in &nbrs {
                touched.extend(adj[u].iter().copied());
            }
        }
        for u in touched {
            heap.remove(&(key[u], u));
            key[u] = key_of(u, &adj);
            heap.insert((key[u], u));
        }
    }
    Order {
        order,
        largest,
        total,
    }
}

/// The cheapest pick of every value of `p` (choice indices of `p`, memory ignored) and its
/// cost, eliminating in `order`; `None` when no pick has a finite cost.
pub(crate) fn solve(p: &Problem, order: &Order) -> Option<(Vec<usize>, f64)> {
    let n = p.cost.len();
    let live = p.live_choices();
    if live.iter().any(Vec::is_empty) {
        return None;
    }
    let dom: Vec<usize> = live.iter().map(Vec::len).collect();
    let mut rank = vec![0usize; n];
    for (k, &v) in order.order.iter().enumerate() {
        rank[v] = k;
    }
    // Each table waits in the bucket of its scope's value eliminated first.
    let mut buckets: Vec<Vec<Table>> = vec![Vec::new(); n];
    for (v, cs) in p.cost.iter().enumerate() {
        buckets[v].push(Table {
            scope: vec![v],
            cost: live[v].iter().map(|&i| cs[i]).collect(),
        });
    }
    for f in &p.factors {
        let (lo, hi) = (f.lo, f.hi);
        let cost = f.live_table(&live[lo], &live[hi]);
        let first = if rank[lo] < rank[hi] { lo } else { hi };
        buckets[first].push(Table {
            scope: vec![lo, hi],
            cost,
        });
    }
    let mut constant = 0.0;
    let mut backs: Vec<Back> = Vec::with_capacity(n);
    for &v in &order.order {
        let tables = std::mem::take(&mut buckets[v]);
        let (table, back) = eliminate(v, &tables, &dom);
        backs.push(back);
        match table.scope.iter().min_by_key(|&&u| rank[u]) {
            Some(&u) => buckets[u].push(table),
            None => constant += table.cost[0],
        }
    }
    if !constant.is_finite() {
        return None;
    }
    let mut pos = vec![0usize; n];
    for b in backs.iter().rev() {
        let mut idx = 0usize;
        for &u in &b.scope {
            idx = idx * dom[u] + pos[u];
        }
        pos[b.v] = b.argmin[idx] as usize;
    }
    let pick = (0..n).map(|v| live[v][pos[v]]).collect();
    Some((pick, constant))
}

/// Eliminates `v` from the tables of its bucket: the table over their other values of the least
/// sum over `v`'s choices, and the argmin.
fn eliminate(v: usize, tables: &[Table], dom: &[usize]) -> (Table, Back) {
    let mut scope: Vec<usize> = tables
        .iter()
        .flat_map(|t| t.scope.iter().copied())
        .filter(|&u| u != v)
        .collect();
    scope.sort_unstable();
    scope.dedup();
    let size: usize = scope.iter().map(|&u| dom[u]).product();
    // Per table, its stride for each value of `scope` and for `v` (0 where it lacks one).
    let strides: Vec<(Vec<usize>, usize)> = tables
        .iter()
        .map(|t| {
            let mut own = vec![0usize; t.scope.len()];
            let mut s = 1;
            for k in (0..t.scope.len()).rev() {
                own[k] = s;
                s *= dom[t.scope[k]];
            }
            let at = |u: usize| t.scope.iter().position(|&x| x == u).map_or(0, |k| own[k]);
            (scope.iter().map(|&u| at(u)).collect(), at(v))
        })
        .collect();
    let dv = dom[v];
    let mut cost = vec![f64::INFINITY; size];
    let mut argmin = vec![0u32; size];
    let mut digit = vec![0usize; scope.len()];
    let mut base = vec![0usize; tables.len()];
    let mut sums = vec![0.0f64; dv];
    for idx in 0..size {
        sums.iter_mut().for_each(|s| *s = 0.0);
        for (t, (tab, (_, sv))) in tables.iter().zip(&strides).enumerate() {
            let b = base[t];
            for (x, s) in sums.iter_mut().enumerate() {
                *s += tab.cost[b + x * sv];
            }
        }
        let (mut best, mut arg) = (f64::INFINITY, 0u32);
        for (x, &s) in sums.iter().enumerate() {
            if s < best {
                best = s;
                arg = x as u32;
            }
        }
        cost[idx] = best;
        argmin[idx] = arg;
        // Next pick of `scope` (last value fastest), moving every table's offset with it.
        for k in (0..scope.len()).rev() {
            digit[k] += 1;
            for (t, (sk, _)) in strides.iter().enumerate() {
                base[t] += sk[k];
            }
            if digit[k] < dom[scope[k]] {
                break;
            }
            for (t, (sk, _)) in strides.iter().enumerate() {
                base[t] -= sk[k] * digit[k];
            }
            digit[k] = 0;
        }
    }
    (
        Table {
            scope: scope.clone(),
            cost,
        },
        Back { v, scope, argmin },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auto::testutil::{brute, cost_of, random, Rng};

    #[test]
    fn elimination_equals_brute_force_on_a_dense_problem() {
        // Six values, every pair a table (a clique: the largest table has five values), some
        // choices dead.
        let mut rng = Rng(7);
        let doms = [3, 2, 4, 3, 2, 3];
        let mut edges = Vec::new();
        for lo in 0..doms.len() {
            for hi in lo + 1..doms.len() {
                edges.push((lo, hi));
            }
        }
        let mut p = random(&mut rng, &doms, &edges, 7);
        p.cost[2][1] = f64::INFINITY;
        let order = plan(&p, 1).expect("small tables");
        let (pick, value) = solve(&p, &order).expect("feasible");
        let want = brute(&p).0;
        assert!((value - want).abs() < 1e-12, "{value} vs {want}");
        let again = cost_of(&p, &pick);
        assert!(
            (again - want).abs() < 1e-12,
            "the pick costs {again}, not {want}"
        );
    }
}
