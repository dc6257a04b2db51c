//! Small random problems and their brute-force optimum, for the solvers' unit tests.

use super::reduce::{Factor, Problem};

/// A deterministic stream of numbers in [0, 1).
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as f64 / (1u64 << 31) as f64
    }
}

/// The cost of one complete pick.
pub(crate) fn cost_of(p: &Problem, pick: &[usize]) -> f64 {
    let mut c: f64 = (0..p.cost.len()).map(|v| p.cost[v][pick[v]]).sum();
    for f in &p.factors {
        c += f.cost[pick[f.lo] * f.nb + pick[f.hi]];
    }
    c
}

/// Every pick of a small problem: the cheapest cost and a pick of that cost.
pub(crate) fn brute(p: &Problem) -> (f64, Vec<usize>) {
    let n = p.cost.len();
    let mut pick = vec![0usize; n];
    let mut best = (f64::INFINITY, pick.clone());
    loop {
        let c = cost_of(p, &pick);
        if c < best.0 {
            best = (c, pick.clone());
        }
        let mut k = 0;
        loop {
            if k == n {
                return best;
            }
            pick[k] += 1;
            if pick[k] < p.cost[k].len() {
                break;
            }
            pick[k] = 0;
            k += 1;
        }
    }
}

/// A problem over values of domains `doms`, a table on each pair of `edges`, costs from `rng`
/// and about one table entry in `dead` infinite (none if 0).
pub(crate) fn random(
    rng: &mut Rng,
    doms: &[usize],
    edges: &[(usize, usize)],
    dead: usize,
) -> Problem {
    let cost: Vec<Vec<f64>> = doms
        .iter()
        .map(|&d| (0..d).map(|_| rng.next()).collect())
        .collect();
    let factors = edges
        .iter()
        .map(|&(lo, hi)| Factor {
            lo,
            hi,
            nb: doms[hi],
            cost: (0..doms[lo] * doms[hi])
                .map(|k| {
                    if dead > 0 && k % dead == dead / 2 {
                        f64::INFINITY
                    } else {
                        rng.next()
                    }
                })
                .collect(),
        })
        .collect();
    Problem {
        memory: cost.iter().map(|c| vec![0.0; c.len()]).collect(),
        cost,
        factors,
        memory_limit: None,
    }
}
