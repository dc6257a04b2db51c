//! The reference the ILP is tested against: every pick of the model, enumerated depth first in
//! node order with a bound that only skips picks that cannot be cheaper (costs are
//! non-negative), so the optimum it returns is the true one.

use super::ilp::{evaluate, prune, Picked};
use super::model::Model;
use super::reduce::Problem;
use crate::error::{Result, ShardingError};

/// Most picks the enumeration visits before it gives up (the model is too big to enumerate).
const MAX_VISITS: u64 = 200_000_000;

struct Search<'a> {
    m: &'a Model,
    alive: Vec<Vec<usize>>,
    /// Edges into each value, from values before it.
    into: Vec<Vec<usize>>,
    /// Least cost and memory of the values from `v` on, each alone.
    rest_cost: Vec<f64>,
    rest_memory: Vec<f64>,
    pick: Vec<usize>,
    best: Option<(f64, Vec<usize>)>,
    visits: u64,
}

/// The cheapest pick that fits the memory limit, by enumeration. `Ok(None)`: none fits.
pub(crate) fn solve(m: &Model) -> Result<Option<Picked>> {
    let alive = prune(&Problem::of(m))?;
    let n = m.choices.len();
    let mut into = vec![Vec::new(); n];
    for (k, e) in m.edges.iter().enumerate() {
        into[e.from.max(e.to)].push(k);
    }
    let mut rest_cost = vec![0.0; n + 1];
    let mut rest_memory = vec![0.0; n + 1];
    for v in (0..n).rev() {
        let min =
            |f: &dyn Fn(usize) -> f64| alive[v].iter().map(|&i| f(i)).fold(f64::INFINITY, f64::min);
        rest_cost[v] = rest_cost[v + 1] + min(&|i| m.choices[v][i].cost);
        rest_memory[v] = rest_memory[v + 1] + min(&|i| m.choices[v][i].memory);
    }
    let mut s = Search {
        m,
        alive,
        into,
        rest_cost,
        rest_memory,
        pick: vec![0; n],
        best: None,
        visits: 0,
    };
    s.go(0, 0.0, 0.0)?;
    Ok(s.best.map(|(_, pick)| {
        let (seconds, memory) = evaluate(m, &pick);
        Picked {
            pick,
            seconds,
            memory,
        }
    }))
}

impl Search<'_> {
    fn go(&mut self, v: usize, cost: f64, memory: f64) -> Result<()> {
        if v == self.pick.len() {
            if self.best.as_ref().map_or(true, |(b, _)| cost < *b) {
                self.best = Some((cost, self.pick.clone()));
            }
            return Ok(());
        }
        self.visits += 1;
        if self.visits > MAX_VISITS {
            return Err(ShardingError::Invalid {
                value: "exhaustive planner".into(),
                message: format!("more than {MAX_VISITS} partial picks: too big to enumerate"),
            });
        }
        for k in 0..self.alive[v].len() {
            let i = self.alive[v][k];
            let c = &self.m.choices[v][i];
            let mut t = cost + c.cost;
            for &e in &self.into[v] {
                let e = &self.m.edges[e];
                let (a, b) = if e.to == v {
                    (self.pick[e.from], i)
                } else {
                    (i, self.pick[e.to])
                };
                t += e.cost[a][b];
            }
            let mem = memory + c.memory;
            if !t.is_finite() {
                continue;
            }
            let bound = t + self.rest_cost[v + 1];
            if self.best.as_ref().is_some_and(|(b, _)| bound >= *b) {
                continue;
            }
            if self
                .m
                .memory_limit
                .is_some_and(|l| mem + self.rest_memory[v + 1] > l)
            {
                continue;
            }
            self.pick[v] = i;
            self.go(v + 1, t, mem)?;
        }
        Ok(())
    }
}
