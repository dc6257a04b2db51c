//! Solving the model: pruning of choices no neighbour allows, then Alpa's ILP (REFERENCES.md:
//! one-hot `s_v` per value, edge variables `e_uv` linearising the resharding term with
//! `Σ_j e_uv[i,j] = s_u[i]` and `Σ_i e_uv[i,j] = s_v[j]`, memory `Σ s_vᵀ m_v ≤ M`), through
//! good_lp with the pure-Rust microlp solver.

use good_lp::{
    constraint, microlp, variable, Expression, ProblemVariables, ResolutionError, Solution,
    SolverModel, Variable,
};

use super::model::Model;
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

/// Removes choices that some edge allows with no choice of the other side, to a fixpoint.
/// Returns, per value, the indices (into the model's choices) still alive.
pub(crate) fn prune(m: &Model) -> Result<Vec<Vec<usize>>> {
    let mut alive: Vec<Vec<bool>> = m
        .choices
        .iter()
        .map(|cs| cs.iter().map(|c| c.cost.is_finite()).collect())
        .collect();
    loop {
        let mut changed = false;
        for e in &m.edges {
            for a in 0..alive[e.from].len() {
                if alive[e.from][a]
                    && !(0..alive[e.to].len()).any(|b| alive[e.to][b] && e.cost[a][b].is_finite())
                {
                    alive[e.from][a] = false;
                    changed = true;
                }
            }
            for b in 0..alive[e.to].len() {
                if alive[e.to][b]
                    && !(0..alive[e.from].len())
                        .any(|a| alive[e.from][a] && e.cost[a][b].is_finite())
                {
                    alive[e.to][b] = false;
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
        return Err(ShardingError::Invalid {
            value: format!("value #{v}"),
            message: "no sharding choice is compatible with its neighbours' (fixed annotations \
                      that contradict each other?)"
                .into(),
        });
    }
    Ok(out)
}

/// Scale of the objective: microseconds, so that the solver's tolerances sit far below a
/// difference that matters.
const SCALE: f64 = 1e6;

/// Solves the model exactly with the ILP. `Ok(None)`: no pick fits the memory limit.
pub(crate) fn solve(m: &Model) -> Result<(Option<Picked>, IlpSize)> {
    let alive = prune(m)?;
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
                objective += m.choices[v][a[0]].cost * SCALE;
                memory += m.choices[v][a[0]].memory;
            }
            Some(xs) => {
                let mut one = Expression::from(0.0);
                for (k, &i) in a.iter().enumerate() {
                    objective += m.choices[v][i].cost * SCALE * xs[k];
                    memory += m.choices[v][i].memory * xs[k];
                    one += xs[k];
                }
                constraints.push(constraint!(one == 1.0));
            }
        }
    }
    for e in &m.edges {
        let (au, av) = (&alive[e.from], &alive[e.to]);
        match (&x[e.from], &x[e.to]) {
            (None, None) => objective += e.cost[au[0]][av[0]] * SCALE,
            (None, Some(xv)) => {
                for (k, &b) in av.iter().enumerate() {
                    // Pruning left only finite entries against a constant side.
                    objective += e.cost[au[0]][b] * SCALE * xv[k];
                }
            }
            (Some(xu), None) => {
                for (k, &a) in au.iter().enumerate() {
                    objective += e.cost[a][av[0]] * SCALE * xu[k];
                }
            }
            (Some(xu), Some(xv)) if e.from == e.to => {
                // A value read by itself cannot happen in a DAG; keep the diagonal if it did.
                for (k, &a) in au.iter().enumerate() {
                    objective += e.cost[a][a] * SCALE * xu[k];
                }
                let _ = xv;
            }
            (Some(xu), Some(xv)) => {
                let mut rows: Vec<Expression> = vec![Expression::from(0.0); au.len()];
                let mut cols: Vec<Expression> = vec![Expression::from(0.0); av.len()];
                for (ka, &a) in au.iter().enumerate() {
                    for (kb, &b) in av.iter().enumerate() {
                        let c = e.cost[a][b];
                        if !c.is_finite() {
                            continue;
                        }
                        let ev = vars.add(variable().min(0.0).max(1.0));
                        size.edge_variables += 1;
                        objective += c * SCALE * ev;
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
    if let Some(limit) = m.memory_limit {
        constraints.push(constraint!(memory <= limit));
    }
    let mut problem = vars.minimise(objective).using(microlp);
    for c in constraints {
        problem.add_constraint(c);
    }
    let solution = match problem.solve() {
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
    let (seconds, memory) = evaluate(m, &pick);
    Ok((
        Some(Picked {
            pick,
            seconds,
            memory,
        }),
        size,
    ))
}
