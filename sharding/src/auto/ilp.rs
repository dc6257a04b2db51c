//! Solving the model: pruning of choices no neighbour allows, the exact eliminations of
//! `reduce`, then Alpa's ILP on what is left (REFERENCES.md:
//! one-hot `s_v` per value, edge variables `e_uv` linearising the resharding term with
//! `Σ_j e_uv[i,j] = s_u[i]` and `Σ_i e_uv[i,j] = s_v[j]`, memory `Σ s_vᵀ m_v ≤ M`), through
//! good_lp with the pure-Rust microlp solver.

use good_lp::{
    constraint, variable, Expression, ProblemVariables, ResolutionError, Solution, SolverModel,
    Variable,
};

use super::dominance::prune_dominated;
use super::model::Model;
use super::reduce::{eliminate, most_finite, Problem};
use crate::error::{Result, ShardingError};

/// The picked choice of every value and the objective (seconds) it reaches.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Picked {
    pub pick: Vec<usize>,
    pub seconds: f64,
    pub memory: f64,
}

/// Counts of the ILP, for reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IlpSize {
    /// Values whose choice the solver made (more than one choice left).
    pub free_values: usize,
    /// 0/1 choice variables.
    pub choice_variables: usize,
    /// Edge variables (pairs of choices of two free values).
    pub edge_variables: usize,
    /// Values (classes) eliminated exactly before the ILP.
    pub eliminated: usize,
    /// Entries of the largest table the elimination solver made (0: the ILP solved it).
    pub largest_table: usize,
    /// Trivial ops merged into their operands before solving (Alpa's merging, only where exact
    /// elimination's tables would be too large): when above 0, the pick is optimal among the
    /// picks where each merged op takes its best response to its operand, not among all.
    pub merged: usize,
    /// TRW-S sweeps where bucket elimination's tables would be too large (0: none ran).
    pub dual_sweeps: usize,
}

/// The objective and memory of one complete pick.
pub(crate) fn evaluate(m: &Model, pick: &[usize]) -> (f64, f64) {
    let mut t = 0.0;
    let mut mem = 0.0;
    for (v, &i) in pick.iter().enumerate() {
        t += m.choices[v][i].cost;
        mem += m.choices[v][i].memory;
    }
    for e in &m.edges {
        t += e.cost[pick[e.from]][pick[e.to]];
    }
    (t, mem)
}

/// Removes choices that some table allows with no choice of the other side, to a fixpoint.
/// Returns, per value, the indices of its choices still alive.
pub(crate) fn prune(p: &Problem) -> Result<Vec<Vec<usize>>> {
    let mut alive: Vec<Vec<bool>> = p
        .cost
        .iter()
        .map(|cs| cs.iter().map(|c| c.is_finite()).collect())
        .collect();
    loop {
        let mut changed = false;
        for f in &p.factors {
            let (nl, nh) = (alive[f.lo].len(), alive[f.hi].len());
            for a in 0..nl {
                if alive[f.lo][a]
                    && !(0..nh).any(|b| alive[f.hi][b] && f.cost[a * f.nb + b].is_finite())
                {
                    alive[f.lo][a] = false;
                    changed = true;
                }
            }
            for b in 0..nh {
                if alive[f.hi][b]
                    && !(0..nl).any(|a| alive[f.lo][a] && f.cost[a * f.nb + b].is_finite())
                {
                    alive[f.hi][b] = false;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let out: Vec<Vec<usize>> = alive
        .iter()
        .map(|a| (0..a.len()).filter(|&i| a[i]).collect())
        .collect();
    if let Some(v) = out.iter().position(Vec::is_empty) {
        return Err(contradiction(format!("value #{v}")));
    }
    Ok(out)
}

fn contradiction(value: String) -> ShardingError {
    ShardingError::Invalid {
        value,
        message: "no sharding choice is compatible with its neighbours' (fixed annotations \
                  that contradict each other?)"
            .into(),
    }
}

/// The objective's largest coefficient once scaled: the solver's tolerances are absolute, so
/// the objective is scaled to a fixed range, whatever the graph's size (a 96-layer model's
/// costs, summed over its tied layers, put microsecond-scaled coefficients near 1e8, where
/// microlp's basis went singular).
const LARGEST: f64 = 1e4;

/// The factor that scales `p`'s largest finite cost to `largest`.
fn scale_of(p: &Problem, largest: f64) -> f64 {
    let most = p
        .cost
        .iter()
        .map(|cs| most_finite(cs))
        .chain(p.factors.iter().map(|f| most_finite(&f.cost)))
        .fold(0.0f64, f64::max);
    if most > 0.0 {
        largest / most
    } else {
        1.0
    }
}

/// The model as the solvers see it: its tables, with the choices no neighbour allows and the
/// dominated ones made dead (infinite cost), so that eliminations see only what can be picked.
pub(crate) fn prepared(m: &Model) -> Result<Problem> {
    pruned(Problem::of(m))
}

/// `problem` with the choices no neighbour allows and the dominated ones made dead.
pub(crate) fn pruned(mut problem: Problem) -> Result<Problem> {
    loop {
        let alive = prune(&problem)?;
        for (v, a) in alive.iter().enumerate() {
            let keep: std::collections::BTreeSet<usize> = a.iter().copied().collect();
            for (i, c) in problem.cost[v].iter_mut().enumerate() {
                if !keep.contains(&i) {
                    *c = f64::INFINITY;
                }
            }
        }
        // Dropping dominated choices (exact: `dominance`) can leave a neighbour's choice with
        // no partner, and pruning that can make more choices dominated.
        if prune_dominated(&mut problem) == 0 {
            return Ok(problem);
        }
    }
}

/// Solves the model exactly: the exact eliminations of `reduce`, then the ILP on what is left.
/// `Ok(None)`: no pick fits the memory limit.
pub(crate) fn solve(m: &Model) -> Result<(Option<Picked>, IlpSize)> {
    solve_prepared(m, &prepared(m)?)
}

/// [`solve`] of a [`prepared`] problem.
pub(crate) fn solve_prepared(m: &Model, problem: &Problem) -> Result<(Option<Picked>, IlpSize)> {
    solve_expanded(m, problem, &|p| p)
}

/// [`solve_prepared`] of a problem whose picks `expand` turns into picks of `m`.
pub(crate) fn solve_expanded(
    m: &Model,
    problem: &Problem,
    expand: &dyn Fn(Vec<usize>) -> Vec<usize>,
) -> Result<(Option<Picked>, IlpSize)> {
    if over_any_limit(problem) {
        return Ok((None, IlpSize::default()));
    }
    let reduced = eliminate(problem);
    let (rest_pick, mut size) = if reduced.rest.cost.is_empty() {
        (Some(Vec::new()), IlpSize::default())
    } else {
        solve_problem(&reduced.rest).map_err(|e| match e {
            ShardingError::Invalid { value, message } if value.starts_with("value #") => {
                let k: usize = value[7..].parse().unwrap_or(0);
                ShardingError::Invalid {
                    value: format!("value #{}", reduced.kept.get(k).copied().unwrap_or(k)),
                    message,
                }
            }
            e => e,
        })?
    };
    size.eliminated = problem.cost.len() - reduced.kept.len();
    let Some(rest_pick) = rest_pick else {
        return Ok((None, size));
    };
    let pick = expand(reduced.pick(&rest_pick, problem.cost.len()));
    let (seconds, memory) = evaluate(m, &pick);
    if !seconds.is_finite() || m.memory_limit.is_some_and(|l| memory > l * (1.0 + 1e-9)) {
        // The eliminations are exact, so this is a solver tolerance at the limit.
        return Ok((None, size));
    }
    Ok((
        Some(Picked {
            pick,
            seconds,
            memory,
        }),
        size,
    ))
}

/// Whether even the least memory of every value's live choices, each taken alone, sums above
/// the limit: then no pick fits, which the ILP would otherwise prove by branching.
pub(crate) fn over_any_limit(p: &Problem) -> bool {
    let Some(limit) = p.memory_limit else {
        return false;
    };
    let least: f64 = p
        .cost
        .iter()
        .zip(&p.memory)
        .map(|(cs, ms)| {
            cs.iter()
                .zip(ms)
                .filter(|(c, _)| c.is_finite())
                .map(|(_, m)| *m)
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    least > limit * (1.0 + 1e-9)
}

/// Whether `e` is microlp failing (not a problem without a pick).
pub(crate) fn solver_failed(e: &ShardingError) -> bool {
    matches!(e, ShardingError::Invalid { value, .. } if value == "planner ILP")
}

/// The ILP of one (reduced) problem: the pick of every value, `None` when nothing fits. Where
/// microlp fails numerically (a singular basis), it is tried again with the objective scaled
/// to other ranges.
fn solve_problem(p: &Problem) -> Result<(Option<Vec<usize>>, IlpSize)> {
    let mut failed = None;
    for largest in [LARGEST, LARGEST * 1e-2, LARGEST * 1e2] {
        match solve_scaled(p, largest) {
            Err(e) if solver_failed(&e) => failed = Some(e),
            r => return r,
        }
    }
    Err(failed.expect("invariant: the loop tries at least one scale"))
}

/// [`solve_problem`] with the largest objective coefficient scaled to `largest`.
fn solve_scaled(p: &Problem, largest: f64) -> Result<(Option<Vec<usize>>, IlpSize)> {
    let alive = prune(p)?;
    let scale = scale_of(p, largest);
    // The memory row in units of the limit, for the same reason.
    let per_byte = p.memory_limit.filter(|&l| l > 0.0).map_or(1.0, |l| 1.0 / l);
    let mut vars = ProblemVariables::new();
    let mut size = IlpSize::default();
    // x[v][k]: the k-th alive choice of v (None where only one is alive: a constant).
    let mut x: Vec<Option<Vec<Variable>>> = Vec::with_capacity(alive.len());
    for a in &alive {
        if a.len() == 1 {
            x.push(None);
            continue;
        }
        size.free_values += 1;
        size.choice_variables += a.len();
        x.push(Some(
            (0..a.len())
                .map(|_| vars.add(variable().binary()))
                .collect(),
        ));
    }
    let mut objective = Expression::from(0.0);
    let mut memory = Expression::from(0.0);
    let mut constraints = Vec::new();
    for (v, a) in alive.iter().enumerate() {
        match &x[v] {
            None => {
                objective += p.cost[v][a[0]] * scale;
                memory += p.memory[v][a[0]] * per_byte;
            }
            Some(xs) => {
                let mut one = Expression::from(0.0);
                for (k, &i) in a.iter().enumerate() {
                    objective += p.cost[v][i] * scale * xs[k];
                    memory += p.memory[v][i] * per_byte * xs[k];
                    one += xs[k];
                }
                constraints.push(constraint!(one == 1.0));
            }
        }
    }
    for f in &p.factors {
        let (au, av) = (&alive[f.lo], &alive[f.hi]);
        let c = |a: usize, b: usize| f.cost[a * f.nb + b];
        match (&x[f.lo], &x[f.hi]) {
            (None, None) => objective += c(au[0], av[0]) * scale,
            (None, Some(xv)) => {
                for (k, &b) in av.iter().enumerate() {
                    // Pruning left only finite entries against a constant side.
                    objective += c(au[0], b) * scale * xv[k];
                }
            }
            (Some(xu), None) => {
                for (k, &a) in au.iter().enumerate() {
                    objective += c(a, av[0]) * scale * xu[k];
                }
            }
            (Some(xu), Some(xv)) => {
                let mut rows: Vec<Expression> = vec![Expression::from(0.0); au.len()];
                let mut cols: Vec<Expression> = vec![Expression::from(0.0); av.len()];
                for (ka, &a) in au.iter().enumerate() {
                    for (kb, &b) in av.iter().enumerate() {
                        let cost = c(a, b);
                        if !cost.is_finite() {
                            continue;
                        }
                        let ev = vars.add(variable().min(0.0).max(1.0));
                        size.edge_variables += 1;
                        objective += cost * scale * ev;
                        rows[ka] += ev;
                        cols[kb] += ev;
                    }
                }
                for (ka, r) in rows.into_iter().enumerate() {
                    constraints.push(constraint!(r == xu[ka]));
                }
                for (kb, c) in cols.into_iter().enumerate() {
                    constraints.push(constraint!(c == xv[kb]));
                }
            }
        }
    }
    if let Some(limit) = p.memory_limit {
        constraints.push(constraint!(memory <= limit * per_byte));
    }
    let solution = match run_solver(vars, objective, constraints) {
        Ok(s) => s,
        Err(ResolutionError::Infeasible) => return Ok((None, size)),
        Err(e) => {
            return Err(ShardingError::Invalid {
                value: "planner ILP".into(),
                message: format!("the solver failed: {e}"),
            })
        }
    };
    let pick: Vec<usize> = alive
        .iter()
        .zip(&x)
        .map(|(a, xs)| match xs {
            None => a[0],
            Some(xs) => {
                // The largest variable: binaries come back as 1 up to the solver's tolerance.
                let k = (0..xs.len())
                    .max_by(|&i, &j| solution.value(xs[i]).total_cmp(&solution.value(xs[j])))
                    .unwrap_or(0);
                a[k]
            }
        })
        .collect();
    Ok((Some(pick), size))
}

/// The model solved by microlp.
fn run_solver(
    vars: ProblemVariables,
    objective: Expression,
    constraints: Vec<good_lp::Constraint>,
) -> std::result::Result<impl Solution, ResolutionError> {
    let mut problem = vars.minimise(objective).using(good_lp::microlp);
    for c in constraints {
        problem.add_constraint(c);
    }
    problem.solve()
}
