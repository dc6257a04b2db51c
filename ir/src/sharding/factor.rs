//! Mesh axes split into prime factors, so that a dim can be split over part of an axis.
//!
//! GSPMD's tile assignments may split a dim over a part of a mesh axis: with 2 kv heads on a
//! 4-way `tp`, XLA splits the heads 2 ways and replicates over the other 2 (Shardy writes it
//! as the sub-axis `"tp":(1)2`). An axis-based sharding names whole axes only, so on
//! `dp=2, tp=4` it cannot say that; on `dp=2, tp_0=2, tp_1=2` it can (`tp` is `(tp_0, tp_1)`).

use std::collections::BTreeMap;

use crate::graph::Graph;
use crate::mesh::Mesh;

/// Re-expresses the graph's mesh on axes of prime size (`tp=4` becomes `tp_0=2, tp_1=2`,
/// major first, the same devices in the same order) and its annotations on them (`tp` becomes
/// `tp_0, tp_1`). Axes of prime size keep their names. Returns whether anything changed.
pub fn factor_mesh_axes(graph: &mut Graph) -> bool {
    let Some(mesh) = graph.mesh.clone() else {
        return false;
    };
    let mut axes: Vec<(String, u64)> = Vec::new();
    let mut parts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in &mesh.axes {
        let primes = prime_factors(a.size);
        let names: Vec<String> = if primes.len() <= 1 {
            vec![a.name.clone()]
        } else {
            (0..primes.len())
                .map(|k| format!("{}_{k}", a.name))
                .collect()
        };
        if primes.is_empty() {
            axes.push((a.name.clone(), a.size));
        } else {
            axes.extend(names.iter().cloned().zip(primes));
        }
        parts.insert(a.name.clone(), names);
    }
    if axes.len() == mesh.axes.len() {
        return false;
    }
    let refs: Vec<(&str, u64)> = axes.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let Ok(mut factored) = Mesh::new(&refs) else {
        return false;
    };
    factored.devices = mesh.devices.clone();
    let split = |xs: &[String]| -> Vec<String> {
        xs.iter()
            .flat_map(|x| parts.get(x).cloned().unwrap_or_else(|| vec![x.clone()]))
            .collect()
    };
    for a in &mut graph.annotations {
        for d in &mut a.sharding.dims {
            d.axes = split(&d.axes);
        }
        a.sharding.partial = split(&a.sharding.partial);
    }
    for n in &mut graph.nodes {
        split_op_axes(&mut n.op, &split);
    }
    graph.mesh = Some(factored);
    true
}

/// The mesh axes an op names (collectives, `axis_index`, a manual region's boundary), each
/// replaced by its prime parts: a linear index over the parts is the one over the axis.
fn split_op_axes(op: &mut crate::op::Op, split: &dyn Fn(&[String]) -> Vec<String>) {
    use crate::op::Op;
    match op {
        Op::AxisIndex { axes }
        | Op::AllReduce { axes, .. }
        | Op::AllGather { axes, .. }
        | Op::ReduceScatter { axes, .. }
        | Op::AllToAll { axes, .. }
        | Op::CollectivePermute { axes, .. } => *axes = split(axes),
        Op::FullToShard { dims } | Op::ShardToFull { dims } => {
            for d in dims.iter_mut() {
                *d = split(d);
            }
        }
        _ => {}
    }
}

/// The prime factors of `n`, smallest first (none for 1).
fn prime_factors(mut n: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut p = 2;
    while p * p <= n {
        while n % p == 0 {
            out.push(p);
            n /= p;
        }
        p += 1;
    }
    if n > 1 {
        out.push(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharding::{Annotation, HloSharding, Sharding};

    #[test]
    fn a_four_way_axis_becomes_two_two_way_axes_with_the_same_tiles() {
        let mut g = Graph::new("g");
        let mesh: Mesh = "dp=2,tp=4".parse().unwrap();
        let s = Sharding::parse_jax("P('dp', 'tp')", 2).unwrap();
        let before = HloSharding::from_sharding(&s, &mesh).unwrap();
        g.mesh = Some(mesh);
        g.annotations.push(Annotation {
            value: "x".into(),
            sharding: s,
            priority: 0,
        });
        assert!(factor_mesh_axes(&mut g));
        let m = g.mesh.clone().unwrap();
        assert_eq!(m.to_string(), "dp=2,tp_0=2,tp_1=2");
        let after = HloSharding::from_sharding(&g.annotations[0].sharding, &m).unwrap();
        assert!(after.equivalent(&before), "{after} vs {before}");
        assert!(!factor_mesh_axes(&mut g));
        assert_eq!(prime_factors(12), vec![2, 2, 3]);
    }
}
