//! The default solver: exact structural elimination, with the ILP only where the memory
//! limit binds on a small core.
//!
//! 1. Memory ignored, the model is solved exactly by `reduce`'s chain and leaf eliminations and
//!    then bucket elimination ([`super::bucket`]) of what is left. If that pick fits the memory
//!    limit (or there is none), it is the optimum.
//! 2. Otherwise the values whose memory depends on their choice are the ones the limit couples.
//!    When, after eliminating every other value exactly, at most [`ILP_CORE`] of them are
//!    left, the ILP solves that core with the memory constraint: exact.
//! 3. Otherwise Lagrangian relaxation: the exact minimum of cost + λ·memory for a sequence of
//!    λ (bracketed by doubling, then bisected), the cheapest pick that fits kept, and
//!    `min(cost + λ·memory) − λ·limit` as a lower bound on the optimum; the relative gap
//!    between the two is returned (0 in cases 1 and 2). A limit that even the least-memory
//!    pick (found exactly) exceeds has no plan.
//!
//! When bucket elimination would make a table above `bucket::MAX_TABLE` entries, the ILP
//! solves the model as before; should microlp fail on it (a singular basis), trivial ops are
//! merged into their operands (`follow`, Alpa's merging) and the smaller model is solved by
//! elimination: a plan, though not a proven optimum (`IlpSize::merged` counts the merged ops).

use super::bucket;
use super::exhaustive;
use super::follow;
use super::ilp::{self, evaluate, prepared, pruned, IlpSize, Picked};
use super::model::Model;
use super::reduce::{eliminate, Problem};
use super::Solver;
use crate::error::Result;

/// Most free values of a memory-bound core that the ILP takes (microlp solves ~50 values in
/// well under a second; 228 took 2.6 s and 734 over a minute: BENCHMARKS.md).
const ILP_CORE: usize = 48;

/// Bisection steps on λ once a bracket is found.
const LAGRANGE_STEPS: usize = 24;

/// What a solver returns: the pick (`None`: none fits), the size of what it solved, and the
/// relative gap between the pick and a lower bound on the optimum (0 when exact).
pub(crate) type Solved = (Option<Picked>, IlpSize, f64);

/// Solves `m` with `solver`.
pub(crate) fn run(solver: Solver, m: &Model) -> Result<Solved> {
    match solver {
        Solver::Elimination => solve(m, ILP_CORE),
        Solver::Lagrangian => solve(m, 0),
        Solver::Ilp => ilp::solve(m).map(|(p, s)| (p, s, 0.0)),
        Solver::Exhaustive => Ok((exhaustive::solve(m)?, IlpSize::default(), 0.0)),
    }
}

/// The exact minimum of `p`'s cost (its memory limit ignored): per value its choice, and the
/// size of what bucket elimination solved. `None`: the tables would be too large; `Some(None)`:
/// no pick has a finite cost.
fn min_cost(p: &Problem, times: usize) -> Option<Option<(Vec<usize>, IlpSize)>> {
    let unlimited = Problem {
        memory_limit: None,
        ..p.clone()
    };
    let reduced = eliminate(&unlimited);
    let rest = &reduced.rest;
    let order = bucket::plan(rest, times)?;
    let size = IlpSize {
        free_values: free_values(rest),
        eliminated: p.cost.len() - reduced.kept.len(),
        largest_table: order.largest,
        ..IlpSize::default()
    };
    let Some((rest_pick, _)) = bucket::solve(rest, &order) else {
        return Some(None);
    };
    Some(Some((reduced.pick(&rest_pick, p.cost.len()), size)))
}

/// Values of `p` with more than one live choice.
fn free_values(p: &Problem) -> usize {
    p.cost
        .iter()
        .filter(|cs| cs.iter().filter(|c| c.is_finite()).count() > 1)
        .count()
}

/// The default solver (see the module doc), the ILP taking memory-bound cores of up to
/// `ilp_core` free values.
pub(crate) fn solve(m: &Model, ilp_core: usize) -> Result<Solved> {
    let problem = prepared(m)?;
    if ilp::over_any_limit(&problem) {
        return Ok((None, IlpSize::default(), 0.0));
    }
    match exact(m, &problem, ilp_core) {
        Err(e) if ilp::solver_failed(&e) => merged(m, &problem, ilp_core).unwrap_or(Err(e)),
        r => r,
    }
}

/// Steps 1 to 3 of the module doc, or the ILP where the tables would be too large.
fn exact(m: &Model, problem: &Problem, ilp_core: usize) -> Result<Solved> {
    let view = Solving {
        m,
        expand: &|p| p,
        times: 1,
    };
    match min_cost(problem, 1) {
        Some(free) => view.solve(problem, free, ilp_core),
        None => view.ilp(problem),
    }
}

/// Where the ILP fails (microlp can stop on a singular basis), the model with trivial ops
/// merged into their operands (`follow`), solved by elimination with tables up to 4 times
/// the usual limits: a plan, not a proven optimum (`IlpSize::merged` says how many ops were
/// merged). `None` when even that problem's tables are too large.
fn merged(m: &Model, problem: &Problem, ilp_core: usize) -> Option<Result<Solved>> {
    const TIMES: usize = 4;
    let same = |v: usize, b: usize, u: usize, a: usize| {
        crate::reshard::same_layout(&m.choices[v][b].result, &m.choices[u][a].result)
    };
    let merged = follow::merge(problem, &m.leaders, &same);
    let smaller = match pruned(merged.problem.clone()) {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    let free = min_cost(&smaller, TIMES)?;
    let expand = |p: Vec<usize>| merged.expand(&p);
    let view = Solving {
        m,
        expand: &expand,
        times: TIMES,
    };
    Some(
        view.solve(&smaller, free, ilp_core)
            .map(|(picked, mut size, gap)| {
                size.merged = merged.merged;
                (picked, size, gap)
            }),
    )
}

/// A problem's solve, its picks turned into the model's by `expand`.
struct Solving<'a> {
    m: &'a Model,
    expand: &'a dyn Fn(Vec<usize>) -> Vec<usize>,
    /// How many times the usual table limits elimination may use.
    times: usize,
}

impl Solving<'_> {
    fn evaluate(&self, pick: &[usize]) -> (Vec<usize>, f64, f64) {
        let full = (self.expand)(pick.to_vec());
        let (s, mem) = evaluate(self.m, &full);
        (full, s, mem)
    }

    fn ilp(&self, problem: &Problem) -> Result<Solved> {
        ilp::solve_expanded(self.m, problem, self.expand).map(|(p, s)| (p, s, 0.0))
    }

    /// Steps 1 to 3 of the module doc, `free` being `problem`'s minimum without its limit.
    fn solve(
        &self,
        problem: &Problem,
        free: Option<(Vec<usize>, IlpSize)>,
        ilp_core: usize,
    ) -> Result<Solved> {
        let m = self.m;
        let Some((pick, size)) = free else {
            return Ok((None, IlpSize::default(), 0.0));
        };
        let (pick, seconds, memory) = self.evaluate(&pick);
        let fits = |mem: f64| m.memory_limit.map_or(true, |l| mem <= l * (1.0 + 1e-9));
        if fits(memory) {
            let picked = seconds.is_finite().then_some(Picked {
                pick,
                seconds,
                memory,
            });
            return Ok((picked, size, 0.0));
        }
        let limit = m.memory_limit.expect("a limit the free pick exceeds");
        let core = eliminate(problem);
        if free_values(&core.rest) <= ilp_core {
            return self.ilp(problem);
        }
        self.lagrangian(problem, limit, size, (seconds, memory))
    }
}

/// `p` with every live choice's cost `cost + λ·memory`, no memory limit.
fn priced(p: &Problem, lambda: f64) -> Problem {
    let cost = p
        .cost
        .iter()
        .zip(&p.memory)
        .map(|(cs, ms)| cs.iter().zip(ms).map(|(c, m)| c + lambda * m).collect())
        .collect();
    Problem {
        cost,
        memory_limit: None,
        ..p.clone()
    }
}

/// `p` with memory as the only cost (resharding free where allowed): its minimum is the least
/// memory of any pick.
fn memory_only(p: &Problem) -> Problem {
    let cost = p
        .cost
        .iter()
        .zip(&p.memory)
        .map(|(cs, ms)| {
            cs.iter()
                .zip(ms)
                .map(|(c, m)| if c.is_finite() { *m } else { f64::INFINITY })
                .collect()
        })
        .collect();
    let mut factors = p.factors.clone();
    for f in &mut factors {
        for c in &mut f.cost {
            if c.is_finite() {
                *c = 0.0;
            }
        }
    }
    Problem {
        cost,
        factors,
        memory_limit: None,
        ..p.clone()
    }
}

impl Solving<'_> {
    /// Case 3 of the module doc: `free` is the unconstrained optimum (seconds, memory) that does not
    /// fit `limit`.
    fn lagrangian(
        &self,
        problem: &Problem,
        limit: f64,
        size: IlpSize,
        free: (f64, f64),
    ) -> Result<Solved> {
        let fits = |mem: f64| mem <= limit * (1.0 + 1e-9);
        let Some(Some((least, _))) = min_cost(&memory_only(problem), self.times) else {
            return self.ilp(problem);
        };
        let (least, ls, lm) = self.evaluate(&least);
        if !fits(lm) || !ls.is_finite() {
            return Ok((None, size, 0.0));
        }
        let mut best = Picked {
            pick: least,
            seconds: ls,
            memory: lm,
        };
        // λ = 0 is the free optimum: a lower bound.
        let mut bound = free.0;
        // Try λ, keeping the best pick that fits and the best bound; whether it fits.
        let at = |lambda: f64, best: &mut Picked, bound: &mut f64| -> Option<bool> {
            let (pick, _) = min_cost(&priced(problem, lambda), self.times)??;
            let (pick, s, mem) = self.evaluate(&pick);
            *bound = bound.max(s + lambda * (mem - limit));
            if fits(mem) && s < best.seconds {
                *best = Picked {
                    pick,
                    seconds: s,
                    memory: mem,
                };
            }
            Some(fits(mem))
        };
        // Seconds per byte at which the free pick's memory costs as much as its time.
        let mut hi = (free.0 / free.1.max(1.0)).max(1e-30);
        let mut lo = 0.0;
        let mut bracketed = false;
        for _ in 0..80 {
            match at(hi, &mut best, &mut bound) {
                Some(true) => {
                    bracketed = true;
                    break;
                }
                Some(false) => {
                    lo = hi;
                    hi *= 2.0;
                }
                None => break,
            }
        }
        if bracketed {
            for _ in 0..LAGRANGE_STEPS {
                let mid = 0.5 * (lo + hi);
                match at(mid, &mut best, &mut bound) {
                    Some(true) => hi = mid,
                    Some(false) => lo = mid,
                    None => break,
                }
            }
        }
        let gap = if best.seconds > 0.0 {
            ((best.seconds - bound) / best.seconds).max(0.0)
        } else {
            0.0
        };
        Ok((Some(best), size, gap))
    }
}
