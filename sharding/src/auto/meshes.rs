//! The meshes the planner searches: the shape the user fixed, or the factorizations of the
//! device count whose innermost axes stay inside a node ("scale up before out"), each with
//! every axis the annotations name.

use shardc_cost_model::Cluster;
use shardc_ir::{Annotation, Graph, Mesh};

use super::search::PlanOptions;
use crate::error::{Result, ShardingError};

/// The graph's annotations, then `extra`; a later annotation of a value replaces an earlier one.
pub(crate) fn merged_annotations(graph: &Graph, extra: &[Annotation]) -> Vec<Annotation> {
    let mut out: Vec<Annotation> = Vec::new();
    for a in graph.annotations.iter().chain(extra) {
        out.retain(|x| x.value != a.value);
        out.push(a.clone());
    }
    out
}

fn divisors(n: u64) -> Vec<u64> {
    (1..=n).filter(|d| n % d == 0).collect()
}

/// The meshes to search: the fixed shape, or every factorization of the device count into up
/// to `max_mesh_axes` axes (`dp`, then `sp`, then `tp` innermost) whose `tp` fits inside a
/// node and whose `sp × tp` fills whole nodes or fits inside one; only those with every axis
/// the annotations name.
pub(super) fn candidate_meshes(
    cluster: &Cluster,
    opts: &PlanOptions,
    annotations: &[Annotation],
) -> Result<Vec<Mesh>> {
    let n = cluster.num_devices();
    let per_node = cluster.devices_per_node as u64;
    let err = |message: String| ShardingError::Invalid {
        value: "mesh".into(),
        message,
    };
    let named: Vec<&str> = {
        let mut v: Vec<&str> = annotations
            .iter()
            .flat_map(|a| a.sharding.used_axes())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    if let Some(shape) = &opts.mesh {
        let axes: Vec<(&str, u64)> = shape.iter().map(|(a, s)| (a.as_str(), *s)).collect();
        let mesh = Mesh::new(&axes).map_err(|e| err(e.to_string()))?;
        if mesh.num_devices() != n {
            return Err(err(format!(
                "mesh {mesh} has {} devices, the cluster {n} ({} nodes x {per_node})",
                mesh.num_devices(),
                cluster.nodes
            )));
        }
        if let Some(a) = named.iter().find(|a| mesh.axis_size(a).is_none()) {
            return Err(err(format!(
                "the annotations shard over axis `{a}`, which mesh {mesh} does not have"
            )));
        }
        return Ok(vec![mesh]);
    }
    let inner_ok = |x: u64| per_node % x == 0 || x % per_node == 0;
    // The innermost (tensor) axis stays within a node: its collectives sit on every layer's
    // critical path, and Megatron's published runs keep t within a node (REFERENCES.md).
    // This is what keeps the search to a handful of meshes on a thousand devices.
    let within = |x: u64| per_node % x == 0;
    let mut shapes: Vec<Vec<(&str, u64)>> = vec![vec![("dp", n)]];
    for t in divisors(n) {
        if t > 1 && t < n && within(t) {
            shapes.push(vec![("dp", n / t), ("tp", t)]);
        }
    }
    if opts.max_mesh_axes >= 3 {
        for t in divisors(n) {
            for s in divisors(n / t) {
                let d = n / t / s;
                if t > 1 && s > 1 && d > 1 && within(t) && inner_ok(t * s) {
                    shapes.push(vec![("dp", d), ("sp", s), ("tp", t)]);
                }
            }
        }
    }
    let mut out = Vec::new();
    for shape in shapes {
        let mesh = Mesh::new(&shape).map_err(|e| err(e.to_string()))?;
        if named.iter().all(|a| mesh.axis_size(a).is_some()) {
            out.push(mesh);
        }
    }
    if out.is_empty() {
        return Err(err(format!(
            "the annotations shard over axes {}, and no mesh shape of the cluster's {n} devices \
             has them all (meshes are `dp`, `dp,tp`{}); rename the axes or give --mesh",
            named.join(", "),
            if opts.max_mesh_axes >= 3 {
                ", `dp,sp,tp`"
            } else {
                ""
            }
        )));
    }
    Ok(out)
}
