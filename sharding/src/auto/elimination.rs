//! The default solver: exact structural elimination (TRW-S where its tables would be too
//! large), with the ILP only where the memory limit binds on a small core.
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
//!    pick (found exactly) exceeds has no plan. A caller that needs only to know whether the
//!    optimum is slower than some time ([`lower_bound`]) stops the λ search once the bound
//!    passes it.
//!
//! When bucket elimination would make a table above `bucket::MAX_TABLE` entries (a tensor-
//! parallel mesh's tied transformer layer: about 8 values of ~14 choices in one table), the
//! minimum of steps 1 and 3 comes from TRW-S ([`super::dual`]) instead: a pick and a lower
//! bound from the LP relaxation's dual, their difference carried as the solve's gap (0 on the
//! GPT-3-shaped cores, where the relaxation is tight and the bound closes in 10-80 sweeps).
//! Only when TRW-S decodes no finite pick does the ILP solve the model; should microlp fail
//! on it (a singular basis), trivial ops are merged into their operands (`follow`, Alpa's
//! merging) and the smaller model is solved by elimination: a plan, though not a proven
//! optimum (`IlpSize::merged` counts the merged ops).

use super::bucket;
use super::dual;
use super::exhaustive;
use super::follow;
use super::ilp::{self, evaluate, prepared, pruned, IlpSize, Picked};
use super::model::Model;
use super::reduce::{eliminate, most_finite, Problem};
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
    run_until(solver, m, &Cutoff::none())
}

/// [`run`], stopping as soon as the Lagrangian's bound proves the optimum no faster than
/// `cutoff.seconds` (then the pick is `None` and `cutoff.proven` holds the bound).
fn run_until(solver: Solver, m: &Model, cutoff: &Cutoff) -> Result<Solved> {
    match solver {
        Solver::Elimination => solve(m, ILP_CORE, cutoff),
        Solver::Lagrangian => solve(m, 0, cutoff),
        Solver::Ilp => ilp::solve(m).map(|(p, s)| (p, s, 0.0)),
        Solver::Exhaustive => Ok((exhaustive::solve(m)?, IlpSize::default(), 0.0)),
    }
}

/// A lower bound of the seconds of every pick of `m` within its memory limit (infinite when
/// none fits): exact or the Lagrangian's, and once it reaches `cutoff` the search for it stops,
/// so a bound at or above `cutoff` says only that the optimum is no faster than that.
pub(crate) fn lower_bound(solver: Solver, m: &Model, cutoff: f64) -> Result<(f64, IlpSize)> {
    let cut = Cutoff {
        seconds: cutoff,
        proven: std::cell::Cell::new(None),
    };
    let (picked, size, gap) = run_until(solver, m, &cut)?;
    let bound = match (picked, cut.proven.get()) {
        (_, Some(b)) => b,
        (Some(p), None) => p.seconds * (1.0 - gap),
        (None, None) => f64::INFINITY,
    };
    Ok((bound, size))
}

/// Where a solve may stop: once its lower bound reaches `seconds`, recorded in `proven`.
struct Cutoff {
    seconds: f64,
    proven: std::cell::Cell<Option<f64>>,
}

impl Cutoff {
    fn none() -> Self {
        Cutoff {
            seconds: f64::INFINITY,
            proven: std::cell::Cell::new(None),
        }
    }

    /// Whether `bound` reaches the cutoff (and if so, records it).
    fn reached(&self, bound: f64) -> bool {
        let hit = bound >= self.seconds;
        if hit {
            self.proven.set(Some(bound));
        }
        hit
    }
}

/// The minimum of `p`'s cost (its memory limit ignored), found without the ILP: per value its
/// choice, the size of what was solved, and how far the pick's cost may lie above the minimum
/// (0 when bucket elimination solved it; TRW-S's gap to its bound where the tables would be
/// too large). `None`: the tables would be too large and TRW-S decoded no finite pick;
/// `Some(None)`: no pick has a finite cost.
fn min_cost(p: &Problem, times: usize, warm: Option<&dual::Messages>) -> Option<Option<Free>> {
    let unlimited = Problem {
        memory_limit: None,
        ..p.clone()
    };
    let reduced = eliminate(&unlimited);
    let rest = &reduced.rest;
    let mut size = IlpSize {
        free_values: free_values(rest),
        eliminated: p.cost.len() - reduced.kept.len(),
        ..IlpSize::default()
    };
    let mut messages = None;
    let (rest_pick, slack) = match bucket::plan(rest, times) {
        Some(order) => {
            size.largest_table = order.largest;
            let Some((rest_pick, _)) = bucket::solve(rest, &order) else {
                return Some(None);
            };
            (rest_pick, 0.0)
        }
        None => {
            // TRW-S decodes picks; finding no finite one proves nothing: the ILP decides.
            let d = dual::solve(rest, warm).filter(|d| d.cost.is_finite())?;
            let slack = (d.cost - d.bound).max(0.0);
            size.dual_sweeps = d.iterations;
            messages = Some(d.messages);
            (d.pick, slack)
        }
    };
    Some(Some(Free {
        pick: reduced.pick(&rest_pick, p.cost.len()),
        size,
        slack,
        messages,
    }))
}

/// A minimum of cost found by [`min_cost`].
struct Free {
    pick: Vec<usize>,
    size: IlpSize,
    /// How far the pick's cost may lie above the minimum (seconds): 0 when exact.
    slack: f64,
    /// TRW-S's messages, where it ran.
    messages: Option<dual::Messages>,
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
fn solve(m: &Model, ilp_core: usize, cutoff: &Cutoff) -> Result<Solved> {
    let problem = prepared(m)?;
    if ilp::over_any_limit(&problem) {
        return Ok((None, IlpSize::default(), 0.0));
    }
    match exact(m, &problem, ilp_core, cutoff) {
        Err(e) if ilp::solver_failed(&e) => merged(m, &problem, ilp_core, cutoff).unwrap_or(Err(e)),
        r => r,
    }
}

/// Steps 1 to 3 of the module doc, or the ILP where the tables would be too large.
fn exact(m: &Model, problem: &Problem, ilp_core: usize, cutoff: &Cutoff) -> Result<Solved> {
    let view = Solving {
        m,
        expand: &|p| p,
        times: 1,
        cutoff,
    };
    match min_cost(problem, 1, None) {
        Some(free) => view.solve(problem, free, ilp_core),
        None => view.ilp(problem),
    }
}

/// Where the ILP fails (microlp can stop on a singular basis), the model with trivial ops
/// merged into their operands (`follow`), solved by elimination with tables up to 4 times
/// the usual limits: a plan, not a proven optimum (`IlpSize::merged` says how many ops were
/// merged). `None` when even that problem's tables are too large.
fn merged(
    m: &Model,
    problem: &Problem,
    ilp_core: usize,
    cutoff: &Cutoff,
) -> Option<Result<Solved>> {
    const TIMES: usize = 4;
    let same = |v: usize, b: usize, u: usize, a: usize| {
        crate::reshard::same_layout(&m.choices[v][b].result, &m.choices[u][a].result)
    };
    let merged = follow::merge(problem, &m.leaders, &same);
    let smaller = match pruned(merged.problem.clone()) {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    let free = min_cost(&smaller, TIMES, None)?;
    let expand = |p: Vec<usize>| merged.expand(&p);
    let view = Solving {
        m,
        expand: &expand,
        times: TIMES,
        cutoff,
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
    /// Where the Lagrangian may stop.
    cutoff: &'a Cutoff,
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
    fn solve(&self, problem: &Problem, free: Option<Free>, ilp_core: usize) -> Result<Solved> {
        let m = self.m;
        let Some(Free {
            pick,
            size,
            slack,
            messages,
        }) = free
        else {
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
            return Ok((picked, size, relative(slack, seconds)));
        }
        let limit = m
            .memory_limit
            .expect("invariant: a limit the free pick exceeds");
        let core = eliminate(problem);
        if free_values(&core.rest) <= ilp_core {
            return self.ilp(problem);
        }
        self.lagrangian(problem, limit, size, (seconds - slack, memory), messages)
    }
}

/// `slack` relative to `seconds` (0 when either is 0).
fn relative(slack: f64, seconds: f64) -> f64 {
    if slack > 0.0 && seconds > 0.0 {
        slack / seconds
    } else {
        0.0
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

/// `p` with memory as the cost and time only breaking ties (all of a pick's seconds weigh less
/// than a byte): its minimum is the least memory of any pick, to the byte. The ties matter to
/// TRW-S, whose picks are decoded from its messages: with time weightless, every compatible
/// pair of choices is as good as any other and the decoding can walk into an incompatible one.
fn memory_only(p: &Problem) -> Problem {
    let seconds: f64 = p.cost.iter().map(|cs| most_finite(cs)).sum::<f64>()
        + p.factors.iter().map(|f| most_finite(&f.cost)).sum::<f64>();
    let per_second = if seconds > 0.0 { 1.0 / seconds } else { 0.0 };
    // Dead choices and incompatible pairs stay infinite (`inf * 0` would be NaN).
    let weigh = |c: f64| if c.is_finite() { c * per_second } else { c };
    let cost = p
        .cost
        .iter()
        .zip(&p.memory)
        .map(|(cs, ms)| cs.iter().zip(ms).map(|(&c, m)| m + weigh(c)).collect())
        .collect();
    let mut factors = p.factors.clone();
    for f in &mut factors {
        for c in &mut f.cost {
            *c = weigh(*c);
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
    /// Case 3 of the module doc: `free` is a lower bound on the unconstrained optimum's seconds
    /// and the memory of the unconstrained pick, which does not fit `limit`.
    fn lagrangian(
        &self,
        problem: &Problem,
        limit: f64,
        size: IlpSize,
        free: (f64, f64),
        mut warm: Option<dual::Messages>,
    ) -> Result<Solved> {
        let fits = |mem: f64| mem <= limit * (1.0 + 1e-9);
        // The least memory of any pick: no plan if even that does not fit, and a plan to
        // start from if it does. Where TRW-S decodes no pick for it, the λ search below still
        // may, and the ILP decides if it does not.
        let mut best = match min_cost(&memory_only(problem), self.times, None) {
            Some(None) => return Ok((None, size, 0.0)),
            None => None,
            Some(Some(least)) => {
                let (least_pick, ls, lm) = self.evaluate(&least.pick);
                // The least memory of any pick is at least `lm - slack`.
                if !fits(lm - least.slack) {
                    return Ok((None, size, 0.0));
                }
                (fits(lm) && ls.is_finite()).then_some(Picked {
                    pick: least_pick,
                    seconds: ls,
                    memory: lm,
                })
            }
        };
        // λ = 0 is the free optimum: a lower bound.
        let mut bound = free.0;
        if self.cutoff.reached(bound) {
            return Ok((None, size, 0.0));
        }
        // Try λ, keeping the best pick that fits and the best bound; whether it fits.
        let mut at = |lambda: f64, best: &mut Option<Picked>, bound: &mut f64| -> Option<bool> {
            let Free {
                pick,
                slack,
                messages,
                ..
            } = min_cost(&priced(problem, lambda), self.times, warm.as_ref())??;
            if messages.is_some() {
                warm = messages;
            }
            let (pick, s, mem) = self.evaluate(&pick);
            *bound = bound.max(s + lambda * (mem - limit) - slack);
            if fits(mem) && best.as_ref().map_or(true, |b| s < b.seconds) {
                *best = Some(Picked {
                    pick,
                    seconds: s,
                    memory: mem,
                });
            }
            Some(fits(mem))
        };
        // Seconds per byte at which the free pick's memory costs as much as its time.
        let mut hi = (free.0 / free.1.max(1.0)).max(1e-30);
        let mut lo = 0.0;
        let mut bracketed = false;
        let cutoff = self.cutoff;
        for _ in 0..80 {
            let fit = at(hi, &mut best, &mut bound);
            if cutoff.reached(bound) {
                return Ok((None, size, 0.0));
            }
            match fit {
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
                // Within a thousandth, the picks on either side are the plans that bracket the
                // limit; what lies between moves the step by less than the bound's gap.
                if hi - lo <= 1e-3 * hi {
                    break;
                }
                let mid = 0.5 * (lo + hi);
                let fit = at(mid, &mut best, &mut bound);
                if cutoff.reached(bound) {
                    return Ok((None, size, 0.0));
                }
                match fit {
                    Some(true) => hi = mid,
                    Some(false) => lo = mid,
                    None => break,
                }
            }
        }
        let Some(best) = best else {
            // TRW-S found no pick that fits, though one may: the ILP decides.
            return self.ilp(problem);
        };
        let gap = relative((best.seconds - bound).max(0.0), best.seconds);
        Ok((Some(best), size, gap))
    }
}
