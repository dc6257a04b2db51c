//! Exact reduction of the model before the ILP: min-sum variable elimination of the values
//! with at most two neighbours (leaves fold into their neighbour's cost, a value between two
//! others becomes one edge between them), to a fixpoint, then the ILP on what is left and the
//! eliminated values picked back in reverse order given their neighbours' picks.
//!
//! Eliminating a value is exact for the objective (a minimum over its choices is taken for each
//! pick of its neighbours). Under a memory limit only values whose memory is the same for every
//! choice are eliminated (their memory is a constant), so the memory constraint stays exact
//! too. Long chains (an optimizer's elementwise update, a backward's elementwise ops) and
//! leaves (broadcast constants, biases) are most of a training step; what is left is the
//! part where choices really interact.

use std::collections::{BTreeMap, BTreeSet};

use super::model::Model;

/// The tie-break between picks of equal modelled time: seconds per byte kept, far below any
/// difference the model prices (a GB is a picosecond) yet above f64's rounding of a step's
/// seconds. Without it the solvers return whichever of two tied picks they meet first: on the
/// MoE known answer data and expert parallelism price the same in the model, and the one with
/// the expert weights split (less memory, and faster in the whole-step estimate) was left to
/// chance.
pub(crate) const TIE_SECONDS_PER_BYTE: f64 = 1e-21;

/// One pairwise cost table: `cost[a * nb + b]` for choice `a` of `lo` and `b` of `hi`
/// (`lo < hi`).
#[derive(Clone, Debug)]
pub(crate) struct Factor {
    pub lo: usize,
    pub hi: usize,
    pub nb: usize,
    pub cost: Vec<f64>,
}

impl Factor {
    /// The table over the two ends' live choices only (`live_lo`, `live_hi`: their indices),
    /// row-major.
    pub(crate) fn live_table(&self, live_lo: &[usize], live_hi: &[usize]) -> Vec<f64> {
        let mut t = Vec::with_capacity(live_lo.len() * live_hi.len());
        for &a in live_lo {
            for &b in live_hi {
                t.push(self.cost[a * self.nb + b]);
            }
        }
        t
    }

    fn at(&self, from: usize, a: usize, b: usize) -> f64 {
        // `a` is a choice of `from`, `b` one of the other end.
        if from == self.lo {
            self.cost[a * self.nb + b]
        } else {
            self.cost[b * self.nb + a]
        }
    }
}

/// The solver's view of a model: per value the cost and memory of each choice (dead choices
/// at infinite cost), pairwise tables, and a constant.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    pub cost: Vec<Vec<f64>>,
    pub memory: Vec<Vec<f64>>,
    pub factors: Vec<Factor>,
    pub memory_limit: Option<f64>,
}

/// The largest magnitude among `xs`' finite entries (0 when none).
pub(crate) fn most_finite(xs: &[f64]) -> f64 {
    xs.iter()
        .filter(|c| c.is_finite())
        .fold(0.0f64, |m, c| m.max(c.abs()))
}

impl Problem {
    /// Per value, the indices of its live choices (finite cost).
    pub fn live_choices(&self) -> Vec<Vec<usize>> {
        self.cost
            .iter()
            .map(|cs| (0..cs.len()).filter(|&i| cs[i].is_finite()).collect())
            .collect()
    }

    /// The model's values, choices and edges (edges between the same two classes summed).
    /// Each choice's cost carries [`TIE_SECONDS_PER_BYTE`] per byte it keeps, so that of two
    /// picks the model prices the same, the solvers return the one of less memory.
    pub fn of(m: &Model) -> Problem {
        let cost: Vec<Vec<f64>> = m
            .choices
            .iter()
            .map(|cs| {
                cs.iter()
                    .map(|c| c.cost + TIE_SECONDS_PER_BYTE * c.memory)
                    .collect()
            })
            .collect();
        let memory = m
            .choices
            .iter()
            .map(|cs| cs.iter().map(|c| c.memory).collect())
            .collect();
        let mut by_pair: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        let mut factors: Vec<Factor> = Vec::new();
        let mut cost = cost;
        for e in &m.edges {
            if e.from == e.to {
                // A value read by itself cannot happen in a DAG; keep the diagonal if it did.
                for (a, c) in cost[e.from].iter_mut().enumerate() {
                    *c += e.cost[a][a];
                }
                continue;
            }
            let (lo, hi) = (e.from.min(e.to), e.from.max(e.to));
            let nb = cost[hi].len();
            let k = *by_pair.entry((lo, hi)).or_insert_with(|| {
                factors.push(Factor {
                    lo,
                    hi,
                    nb,
                    cost: vec![0.0; cost[lo].len() * nb],
                });
                factors.len() - 1
            });
            let f = &mut factors[k];
            for (a, row) in e.cost.iter().enumerate() {
                for (b, &c) in row.iter().enumerate() {
                    let (x, y) = if e.from == lo { (a, b) } else { (b, a) };
                    f.cost[x * nb + y] += c;
                }
            }
        }
        Problem {
            cost,
            memory,
            factors,
            memory_limit: m.memory_limit,
        }
    }
}

/// How one eliminated value is picked back.
#[derive(Clone, Debug)]
enum Step {
    /// One live choice (its tables folded into its neighbours).
    Fixed { v: usize, choice: usize },
    /// No neighbours left: its cheapest choice.
    Alone { v: usize, cost: Vec<f64> },
    /// One neighbour `u`: cheapest given `u`'s pick.
    Leaf {
        v: usize,
        u: usize,
        cost: Vec<f64>,
        f: Factor,
    },
    /// Two neighbours.
    Chain {
        v: usize,
        u: usize,
        w: usize,
        cost: Vec<f64>,
        fu: Factor,
        fw: Factor,
    },
}

/// A problem with some values eliminated: the rest to solve, and how to pick the others back.
pub(crate) struct Eliminated {
    /// The values still to solve (indices into the original problem), in order.
    pub kept: Vec<usize>,
    /// The problem over `kept` (renumbered).
    pub rest: Problem,
    steps: Vec<Step>,
}

impl Eliminated {
    /// Every value's pick from the picks of the kept values.
    pub fn pick(&self, rest_pick: &[usize], n: usize) -> Vec<usize> {
        let mut pick = vec![0usize; n];
        for (k, &v) in self.kept.iter().enumerate() {
            pick[v] = rest_pick[k];
        }
        let argmin = |f: &dyn Fn(usize) -> f64, n: usize| {
            (0..n).min_by(|&x, &y| f(x).total_cmp(&f(y))).unwrap_or(0)
        };
        for s in self.steps.iter().rev() {
            match s {
                Step::Fixed { v, choice } => pick[*v] = *choice,
                Step::Alone { v, cost } => pick[*v] = argmin(&|b| cost[b], cost.len()),
                Step::Leaf { v, u, cost, f } => {
                    let a = pick[*u];
                    pick[*v] = argmin(&|b| cost[b] + f.at(*v, b, a), cost.len());
                }
                Step::Chain {
                    v,
                    u,
                    w,
                    cost,
                    fu,
                    fw,
                } => {
                    let (a, c) = (pick[*u], pick[*w]);
                    pick[*v] = argmin(&|b| fu.at(*v, b, a) + cost[b] + fw.at(*v, b, c), cost.len());
                }
            }
        }
        pick
    }
}

/// Whether a value's memory is one constant over its live choices.
fn constant_memory(cost: &[f64], memory: &[f64]) -> bool {
    let mut live = cost
        .iter()
        .zip(memory)
        .filter(|(c, _)| c.is_finite())
        .map(|(_, m)| *m);
    let Some(first) = live.next() else {
        return true;
    };
    live.all(|m| m == first)
}

/// Eliminates every value it can exactly (see the module doc).
pub(crate) fn eliminate(p: &Problem) -> Eliminated {
    let n = p.cost.len();
    let mut cost = p.cost.clone();
    let mut factors: Vec<Option<Factor>> = p.factors.iter().cloned().map(Some).collect();
    // Neighbour → factor index, per value.
    let mut adj: Vec<BTreeMap<usize, usize>> = vec![BTreeMap::new(); n];
    for (k, f) in p.factors.iter().enumerate() {
        adj[f.lo].insert(f.hi, k);
        adj[f.hi].insert(f.lo, k);
    }
    let mut memory_offset = 0.0;
    let eligible = |v: usize, cost: &[Vec<f64>]| {
        p.memory_limit.is_none() || constant_memory(&cost[v], &p.memory[v])
    };
    let mut gone = vec![false; n];
    // A value with one live choice is a constant whatever its degree: its tables become its
    // neighbours' unary costs. (Adam's bias corrections are scalars every parameter's update
    // reads: left in, they tie all the updates into one core.)
    let single = |cs: &[f64]| cs.iter().filter(|c| c.is_finite()).count() == 1;
    let mut queue: BTreeSet<usize> = (0..n)
        .filter(|&v| adj[v].len() <= 2 || single(&cost[v]))
        .collect();
    let mut steps = Vec::new();
    while let Some(v) = queue.pop_first() {
        if gone[v] || !eligible(v, &cost) {
            continue;
        }
        if adj[v].len() > 2 {
            if !single(&cost[v]) {
                continue;
            }
            gone[v] = true;
            let b = cost[v]
                .iter()
                .position(|c| c.is_finite())
                .expect("invariant: a Fixed value has one live choice");
            if p.memory_limit.is_some() {
                memory_offset += p.memory[v][b];
            }
            let nbrs: Vec<(usize, usize)> = std::mem::take(&mut adj[v]).into_iter().collect();
            for (i, &(u, k)) in nbrs.iter().enumerate() {
                adj[u].remove(&v);
                let f = factors[k].take().expect("invariant: a live factor");
                let constant = if i == 0 { cost[v][b] } else { 0.0 };
                for a in 0..cost[u].len() {
                    cost[u][a] += f.at(v, b, a) + constant;
                }
                queue.insert(u);
            }
            steps.push(Step::Fixed { v, choice: b });
            continue;
        }
        gone[v] = true;
        if p.memory_limit.is_some() {
            memory_offset += cost[v]
                .iter()
                .zip(&p.memory[v])
                .find(|(c, _)| c.is_finite())
                .map_or(0.0, |(_, m)| *m);
        }
        let nbrs: Vec<(usize, usize)> = adj[v].iter().map(|(&u, &k)| (u, k)).collect();
        for &(u, _) in &nbrs {
            adj[u].remove(&v);
        }
        let cv = std::mem::take(&mut cost[v]);
        match nbrs[..] {
            [] => steps.push(Step::Alone { v, cost: cv }),
            [(u, k)] => {
                let f = factors[k].take().expect("invariant: a live factor");
                for a in 0..cost[u].len() {
                    let best = (0..cv.len())
                        .map(|b| cv[b] + f.at(v, b, a))
                        .fold(f64::INFINITY, f64::min);
                    cost[u][a] += best;
                }
                steps.push(Step::Leaf { v, u, cost: cv, f });
                queue.insert(u);
            }
            [(u, ku), (w, kw)] => {
                let fu = factors[ku].take().expect("invariant: a live factor");
                let fw = factors[kw].take().expect("invariant: a live factor");
                let (nu, nw) = (cost[u].len(), cost[w].len());
                // u < w: the new table is indexed [a of u][c of w].
                let mut table = vec![f64::INFINITY; nu * nw];
                for b in 0..cv.len() {
                    if !cv[b].is_finite() {
                        continue;
                    }
                    let left: Vec<f64> = (0..nu).map(|a| fu.at(v, b, a) + cv[b]).collect();
                    let right: Vec<f64> = (0..nw).map(|c| fw.at(v, b, c)).collect();
                    for (a, &l) in left.iter().enumerate() {
                        if !l.is_finite() {
                            continue;
                        }
                        let row = &mut table[a * nw..(a + 1) * nw];
                        for (t, &r) in row.iter_mut().zip(&right) {
                            let x = l + r;
                            if x < *t {
                                *t = x;
                            }
                        }
                    }
                }
                match adj[u].get(&w) {
                    Some(&k) => {
                        let f = factors[k].as_mut().expect("invariant: a live factor");
                        for a in 0..nu {
                            for c in 0..nw {
                                let (x, y) = if f.lo == u { (a, c) } else { (c, a) };
                                f.cost[x * f.nb + y] += table[a * nw + c];
                            }
                        }
                    }
                    None => {
                        let k = factors.len();
                        factors.push(Some(Factor {
                            lo: u,
                            hi: w,
                            nb: nw,
                            cost: table,
                        }));
                        adj[u].insert(w, k);
                        adj[w].insert(u, k);
                    }
                }
                steps.push(Step::Chain {
                    v,
                    u,
                    w,
                    cost: cv,
                    fu,
                    fw,
                });
                queue.insert(u);
                queue.insert(w);
            }
            _ => unreachable!("degree checked above"),
        }
    }
    let kept: Vec<usize> = (0..n).filter(|&v| !gone[v]).collect();
    let mut index = vec![usize::MAX; n];
    for (k, &v) in kept.iter().enumerate() {
        index[v] = k;
    }
    let mut rest_factors = Vec::new();
    for f in factors.into_iter().flatten() {
        let (lo, hi) = (index[f.lo], index[f.hi]);
        // Renumbering keeps the order of the two ends (kept is ascending).
        rest_factors.push(Factor { lo, hi, ..f });
    }
    let rest = Problem {
        cost: kept.iter().map(|&v| cost[v].clone()).collect(),
        memory: kept.iter().map(|&v| p.memory[v].clone()).collect(),
        factors: rest_factors,
        memory_limit: p.memory_limit.map(|l| l - memory_offset),
    };
    Eliminated { kept, rest, steps }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auto::testutil::{brute, cost_of, random, Rng};

    #[test]
    fn a_value_with_one_live_choice_is_eliminated_whatever_its_degree() {
        // A hub (value 0, like Adam's bias corrections) read by five values that form a ring
        // with a chord among themselves.
        let doms = [3, 3, 2, 4, 3, 2];
        let edges = [
            (0, 1),
            (0, 2),
            (0, 3),
            (0, 4),
            (0, 5),
            (1, 2),
            (2, 3),
            (3, 4),
            (4, 5),
            (1, 5),
            (1, 3),
        ];
        for seed in 1..20 {
            let mut p = random(&mut Rng(seed), &doms, &edges, 0);
            p.cost[0][0] = f64::INFINITY;
            p.cost[0][2] = f64::INFINITY;
            let r = eliminate(&p);
            assert!(!r.kept.contains(&0), "seed {seed}: the hub is left");
            let (_, rest) = brute(&r.rest);
            let pick = r.pick(&rest, p.cost.len());
            assert_eq!(pick[0], 1, "seed {seed}: the hub's one live choice");
            let (want, _) = brute(&p);
            let got = cost_of(&p, &pick);
            assert!((got - want).abs() < 1e-12, "seed {seed}: {got} vs {want}");
        }
    }
}
