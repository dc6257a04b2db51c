//! Sequential tree-reweighted message passing (TRW-S: Kolmogorov, "Convergent tree-reweighted
//! message passing for energy minimization", PAMI 2006) for the model's pairwise min-sum
//! problem where bucket elimination's tables would be too large: a lower bound from the dual
//! of the LP relaxation (Alpa's ILP with its integrality dropped), and picks decoded from the
//! messages. When the best pick's cost meets the bound, the pick is proven optimal without
//! branching.
//!
//! The bound does not rest on the messages having converged: with any messages the energy is
//! reparametrised (a message is added to its target's unary term and subtracted from its edge's
//! table, which changes no pick's energy), split into the monotonic chains of the value order
//! that TRW-S is defined over (each value's unary term shared evenly among the chains through
//! it), and each chain minimised exactly by dynamic programming; the sum of the chains' minima
//! is at most any pick's energy.
//!
//! Dead choices are left out; an incompatible pair of choices (infinite cost) is priced at a
//! cost above any finite pick's, which only lowers the bound. On the GPT-3-shaped cores the LP
//! relaxation is tight (the ILP's root relaxation came back integral), so the bound closes.

use super::reduce::{most_finite, Problem};

/// One edge: `i < j`, the table over their live choices (`table[a * dj + b]`, `dj` being
/// `to_j`'s length), and the two messages (to `j`, over `j`'s choices; to `i`, over `i`'s).
struct Edge {
    i: usize,
    j: usize,
    table: Vec<f64>,
    to_j: Vec<f64>,
    to_i: Vec<f64>,
}

impl Edge {
    /// `j`'s live choices: the table's row length.
    fn dj(&self) -> usize {
        self.to_j.len()
    }
}

/// What the solver found: the best pick (original choice indices) and its cost, and the
/// largest lower bound proven on the optimum.
pub(crate) struct Dual {
    pub pick: Vec<usize>,
    pub cost: f64,
    pub bound: f64,
    pub iterations: usize,
    /// The final messages, to start a solve of the same problem with other costs from.
    pub messages: Messages,
}

/// Every edge's two messages, and the edges' ends and sizes they were made for.
#[derive(Clone, Debug, Default)]
pub(crate) struct Messages {
    shape: Vec<(usize, usize, usize, usize)>,
    to: Vec<(Vec<f64>, Vec<f64>)>,
}

/// Most forward-backward sweeps.
const MAX_SWEEPS: usize = 400;
/// The relative gap at which the pick counts as optimal (the ILP's own tolerances are wider).
pub(crate) const CLOSED: f64 = 1e-9;

/// TRW-S on `p` (memory ignored), starting from `warm`'s messages when they were made for a
/// problem of the same shape (the Lagrangian's problems differ in their costs only, and start
/// near each other's fixed points). `None` when some value has no live choice.
pub(crate) fn solve(p: &Problem, warm: Option<&Messages>) -> Option<Dual> {
    let n = p.cost.len();
    let live = p.live_choices();
    if live.iter().any(Vec::is_empty) {
        return None;
    }
    let theta: Vec<Vec<f64>> = live
        .iter()
        .zip(&p.cost)
        .map(|(l, cs)| l.iter().map(|&i| cs[i]).collect())
        .collect();
    let mut edges: Vec<Edge> = p
        .factors
        .iter()
        .map(|f| Edge {
            i: f.lo,
            j: f.hi,
            table: f.live_table(&live[f.lo], &live[f.hi]),
            to_j: vec![0.0; live[f.hi].len()],
            to_i: vec![0.0; live[f.lo].len()],
        })
        .collect();
    let magnitude = 1.0
        + theta.iter().map(|t| most_finite(t)).sum::<f64>()
        + edges.iter().map(|e| most_finite(&e.table)).sum::<f64>();
    let shape: Vec<(usize, usize, usize, usize)> = edges
        .iter()
        .map(|e| (e.i, e.j, e.to_i.len(), e.dj()))
        .collect();
    if let Some(w) = warm.filter(|w| w.shape == shape) {
        for (e, (to_i, to_j)) in edges.iter_mut().zip(&w.to) {
            e.to_i.clone_from(to_i);
            e.to_j.clone_from(to_j);
        }
    }
    // Above any finite pick's energy.
    let big = 1e3 * magnitude;
    for e in &mut edges {
        for c in &mut e.table {
            if !c.is_finite() {
                *c = big;
            }
        }
    }
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, e) in edges.iter().enumerate() {
        adj[e.i].push(k);
        adj[e.j].push(k);
    }
    let rho: Vec<f64> = (0..n)
        .map(|v| {
            let before = adj[v].iter().filter(|&&k| edges[k].j == v).count();
            let after = adj[v].len() - before;
            before.max(after).max(1) as f64
        })
        .collect();
    let chains = chains(n, &edges, &adj);
    let mut s = State {
        theta,
        edges,
        adj,
        rho,
    };
    let mut best: Option<(Vec<usize>, f64)> = None;
    let mut bound = f64::NEG_INFINITY;
    let mut iterations = 0;
    let mut stalled = 0;
    for sweep in 0..MAX_SWEEPS {
        iterations = sweep + 1;
        let mut pick = s.forward();
        s.polish(&mut pick);
        let cost = energy(p, &live, &pick);
        if best.as_ref().map_or(true, |(_, c)| cost < *c) {
            best = Some((pick, cost));
        }
        s.backward();
        let b = s.bound(&chains);
        if b > bound + 1e-12 * bound.abs().max(1e-300) {
            stalled = 0;
        } else {
            stalled += 1;
        }
        bound = bound.max(b);
        let c = best.as_ref().map_or(f64::INFINITY, |b| b.1);
        if (c.is_finite() && c - bound <= CLOSED * c.abs()) || stalled >= 20 {
            break;
        }
    }
    let messages = Messages {
        shape,
        to: s
            .edges
            .iter()
            .map(|e| (e.to_i.clone(), e.to_j.clone()))
            .collect(),
    };
    let (pick, cost) = best?;

    Some(Dual {
        pick: pick.iter().enumerate().map(|(v, &k)| live[v][k]).collect(),
        cost,
        bound: bound.min(cost),
        iterations,
        messages,
    })
}

/// The energy of a pick of live-choice positions, with the problem's own (infinite) costs.
fn energy(p: &Problem, live: &[Vec<usize>], pick: &[usize]) -> f64 {
    let mut t: f64 = pick
        .iter()
        .enumerate()
        .map(|(v, &k)| p.cost[v][live[v][k]])
        .sum();
    for f in &p.factors {
        t += f.cost[live[f.lo][pick[f.lo]] * f.nb + live[f.hi][pick[f.hi]]];
    }
    t
}

struct State {
    theta: Vec<Vec<f64>>,
    edges: Vec<Edge>,
    adj: Vec<Vec<usize>>,
    rho: Vec<f64>,
}

impl State {
    /// The value's unary term plus every message into it.
    fn hat(&self, v: usize) -> Vec<f64> {
        let mut h = self.theta[v].clone();
        for &k in &self.adj[v] {
            let e = &self.edges[k];
            let m = if e.j == v { &e.to_j } else { &e.to_i };
            for (x, y) in h.iter_mut().zip(m) {
                *x += y;
            }
        }
        h
    }

    /// The message along edge `k` from its end `from`, given `from`'s `hat`.
    fn send(&mut self, k: usize, from: usize, hat: &[f64]) {
        let rho = self.rho[from];
        let e = &mut self.edges[k];
        let (di, dj) = (e.to_i.len(), e.dj());
        if from == e.i {
            let base: Vec<f64> = (0..di).map(|a| hat[a] / rho - e.to_i[a]).collect();
            for b in 0..dj {
                e.to_j[b] = (0..di)
                    .map(|a| base[a] + e.table[a * dj + b])
                    .fold(f64::INFINITY, f64::min);
            }
            let least = e.to_j.iter().copied().fold(f64::INFINITY, f64::min);
            e.to_j.iter_mut().for_each(|m| *m -= least);
        } else {
            let base: Vec<f64> = (0..dj).map(|b| hat[b] / rho - e.to_j[b]).collect();
            for a in 0..di {
                let row = &e.table[a * dj..(a + 1) * dj];
                e.to_i[a] = row
                    .iter()
                    .zip(&base)
                    .map(|(t, m)| t + m)
                    .fold(f64::INFINITY, f64::min);
            }
            let least = e.to_i.iter().copied().fold(f64::INFINITY, f64::min);
            e.to_i.iter_mut().for_each(|m| *m -= least);
        }
    }

    /// One pass in value order, sending each value's messages to later values; returns the
    /// pick decoded on the way (each value's best choice given the earlier picks and the
    /// later values' messages).
    fn forward(&mut self) -> Vec<usize> {
        let n = self.theta.len();
        let mut pick = vec![0usize; n];
        for v in 0..n {
            let hat = self.hat(v);
            let mut score = self.theta[v].clone();
            for &k in &self.adj[v] {
                let e = &self.edges[k];
                if e.j == v {
                    let a = pick[e.i];
                    for (b, s) in score.iter_mut().enumerate() {
                        *s += e.table[a * e.dj() + b];
                    }
                } else {
                    for (s, m) in score.iter_mut().zip(&e.to_i) {
                        *s += m;
                    }
                }
            }
            pick[v] = argmin(&score);
            for i in 0..self.adj[v].len() {
                let k = self.adj[v][i];
                if self.edges[k].i == v {
                    self.send(k, v, &hat);
                }
            }
        }
        pick
    }

    /// Iterated conditional modes on a decoded pick: each value in turn takes its best choice
    /// given its neighbours' picks, until none changes (at most a few rounds). The decoding
    /// can meet a value whose every choice is incompatible with the earlier picks (the LP
    /// relaxation is not tight on every problem); this mends most such picks.
    fn polish(&self, pick: &mut [usize]) {
        for _ in 0..8 {
            let mut changed = false;
            for v in 0..pick.len() {
                let score = self.score(v, pick, None);
                let best = argmin(&score);
                if score[best] < score[pick[v]] {
                    pick[v] = best;
                    changed = true;
                }
            }
            // Pairs: both ends of each edge re-picked together given their other neighbours
            // (an incompatible pair that no single change mends).
            for k in 0..self.edges.len() {
                let (u, v) = (self.edges[k].i, self.edges[k].j);
                let su = self.score(u, pick, Some(k));
                let sv = self.score(v, pick, Some(k));
                let e = &self.edges[k];
                let now = su[pick[u]] + sv[pick[v]] + e.table[pick[u] * e.dj() + pick[v]];
                let mut best = (now, pick[u], pick[v]);
                for (a, x) in su.iter().enumerate() {
                    for (b, y) in sv.iter().enumerate() {
                        let t = x + y + e.table[a * e.dj() + b];
                        if t < best.0 {
                            best = (t, a, b);
                        }
                    }
                }
                if best.0 < now {
                    pick[u] = best.1;
                    pick[v] = best.2;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// Per choice of `v`, its unary cost plus its tables against its neighbours' picks, the
    /// edge `skip` left out.
    fn score(&self, v: usize, pick: &[usize], skip: Option<usize>) -> Vec<f64> {
        let mut score = self.theta[v].clone();
        for &k in &self.adj[v] {
            if Some(k) == skip {
                continue;
            }
            let e = &self.edges[k];
            if e.j == v {
                let a = pick[e.i];
                for (b, s) in score.iter_mut().enumerate() {
                    *s += e.table[a * e.dj() + b];
                }
            } else {
                let b = pick[e.j];
                for (a, s) in score.iter_mut().enumerate() {
                    *s += e.table[a * e.dj() + b];
                }
            }
        }
        score
    }

    /// One pass against value order, sending each value's messages to earlier values.
    fn backward(&mut self) {
        for v in (0..self.theta.len()).rev() {
            let hat = self.hat(v);
            for i in 0..self.adj[v].len() {
                let k = self.adj[v][i];
                if self.edges[k].j == v {
                    self.send(k, v, &hat);
                }
            }
        }
    }

    /// The sum of the chains' minima of the reparametrised energy: a lower bound on every
    /// pick's energy (module doc).
    fn bound(&self, chains: &[Chain]) -> f64 {
        let hats: Vec<Vec<f64>> = (0..self.theta.len()).map(|v| self.hat(v)).collect();
        let share = |v: usize| -> Vec<f64> { hats[v].iter().map(|h| h / self.rho[v]).collect() };
        let mut total = 0.0;
        for c in chains {
            let mut f = share(c.start);
            for &k in &c.edges {
                let e = &self.edges[k];
                let (di, dj) = (e.to_i.len(), e.dj());
                let mut g = share(e.j);
                for (b, gb) in g.iter_mut().enumerate() {
                    let best = (0..di)
                        .map(|a| f[a] + e.table[a * dj + b] - e.to_j[b] - e.to_i[a])
                        .fold(f64::INFINITY, f64::min);
                    *gb += best;
                }
                f = g;
            }
            total += f.iter().copied().fold(f64::INFINITY, f64::min);
        }
        total
    }
}

fn argmin(xs: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in xs.iter().enumerate() {
        if *x < xs[best] {
            best = i;
        }
    }
    best
}

/// A monotonic chain: a first value and the edges that follow it, each from the previous
/// edge's later end.
struct Chain {
    start: usize,
    edges: Vec<usize>,
}

/// The monotonic chains of the value order: at each value the chains arriving by its edges
/// from earlier values go on along its edges to later ones, one each; the rest end or start
/// there, so that a value lies on `max(edges before, edges after, 1)` chains, the weight TRW-S
/// gives it.
fn chains(n: usize, edges: &[Edge], adj: &[Vec<usize>]) -> Vec<Chain> {
    let mut chains: Vec<Chain> = Vec::new();
    // The chain each edge lies on.
    let mut on: Vec<usize> = vec![usize::MAX; edges.len()];
    for v in 0..n {
        let arriving: Vec<usize> = adj[v]
            .iter()
            .filter(|&&k| edges[k].j == v)
            .map(|&k| on[k])
            .collect();
        let leaving: Vec<usize> = adj[v]
            .iter()
            .copied()
            .filter(|&k| edges[k].i == v)
            .collect();
        if arriving.is_empty() && leaving.is_empty() {
            chains.push(Chain {
                start: v,
                edges: Vec::new(),
            });
        }
        for (t, &k) in leaving.iter().enumerate() {
            let c = match arriving.get(t) {
                Some(&c) => c,
                None => {
                    chains.push(Chain {
                        start: v,
                        edges: Vec::new(),
                    });
                    chains.len() - 1
                }
            };
            chains[c].edges.push(k);
            on[k] = c;
        }
    }
    chains
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auto::reduce::Factor;
    use crate::auto::testutil::Rng;

    fn brute(p: &Problem) -> f64 {
        crate::auto::testutil::brute(p).0
    }

    fn below(rng: &mut Rng, k: usize) -> usize {
        ((rng.next() * k as f64) as usize).min(k - 1)
    }

    fn random(rng: &mut Rng, n: usize, density: f64) -> Problem {
        let cost: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                let d = 2 + below(rng, 3);
                (0..d)
                    .map(|_| {
                        if below(rng, 8) == 0 {
                            f64::INFINITY
                        } else {
                            rng.next() * 3.0
                        }
                    })
                    .collect()
            })
            .collect();
        let mut factors = Vec::new();
        for lo in 0..n {
            for hi in lo + 1..n {
                if rng.next() < density {
                    let nb = cost[hi].len();
                    let table = (0..cost[lo].len() * nb)
                        .map(|_| {
                            if below(rng, 6) == 0 {
                                f64::INFINITY
                            } else {
                                rng.next() * 2.0
                            }
                        })
                        .collect();
                    factors.push(Factor {
                        lo,
                        hi,
                        nb,
                        cost: table,
                    });
                }
            }
        }
        Problem {
            memory: cost.iter().map(|c| vec![0.0; c.len()]).collect(),
            cost,
            factors,
            memory_limit: None,
        }
    }

    #[test]
    fn bound_never_exceeds_the_optimum_and_the_pick_is_its_energy() {
        let mut rng = Rng(7);
        let mut closed = 0;
        for case in 0..120 {
            let p = random(
                &mut rng,
                3 + case % 6,
                if case % 2 == 0 { 0.3 } else { 0.7 },
            );
            let best = brute(&p);
            let Some(d) = solve(&p, None) else {
                assert!(p.cost.iter().any(|c| c.iter().all(|x| !x.is_finite())));
                continue;
            };
            let live: Vec<Vec<usize>> = p
                .cost
                .iter()
                .map(|cs| (0..cs.len()).filter(|&i| cs[i].is_finite()).collect())
                .collect();
            let pos: Vec<usize> = d
                .pick
                .iter()
                .enumerate()
                .map(|(v, c)| live[v].iter().position(|x| x == c).unwrap())
                .collect();
            assert_eq!(d.cost, energy(&p, &live, &pos), "case {case}");
            assert!(d.cost >= best - 1e-9, "case {case}: pick below the optimum");
            if best.is_finite() {
                assert!(
                    d.bound <= best + 1e-9,
                    "case {case}: bound {} > {best}",
                    d.bound
                );
            }
            if d.cost.is_finite() && d.cost - d.bound <= CLOSED * d.cost.abs() {
                closed += 1;
                assert!(
                    (d.cost - best).abs() <= 1e-6 * best.abs().max(1.0),
                    "case {case}"
                );
            }
        }
        assert!(closed > 30, "the bound closed on only {closed} of 120");
    }

    #[test]
    fn trees_are_solved_exactly() {
        // On a tree the LP relaxation is tight and TRW-S reaches it.
        let mut rng = Rng(11);
        for case in 0..40 {
            let n = 4 + case % 7;
            let mut p = random(&mut rng, n, 0.0);
            for c in &mut p.cost {
                c.iter_mut()
                    .for_each(|x| *x = if x.is_finite() { *x } else { 1.5 });
            }
            for v in 1..n {
                let lo = below(&mut rng, v);
                let nb = p.cost[v].len();
                let cost = (0..p.cost[lo].len() * nb).map(|_| rng.next()).collect();
                p.factors.push(Factor {
                    lo,
                    hi: v,
                    nb,
                    cost,
                });
            }
            let best = brute(&p);
            let d = solve(&p, None).unwrap();
            assert!(
                (d.cost - best).abs() <= 1e-9,
                "case {case}: {} vs {best}",
                d.cost
            );
            assert!(
                d.cost - d.bound <= 1e-7,
                "case {case}: bound {} vs {best}",
                d.bound
            );
        }
    }
}
