//! Bucketing small all-reduces: independent all-reduces over the same axes with the same
//! reduction and dtype become one all-reduce over the concatenation of their (flattened)
//! operands, as DDP buckets gradients, paying one latency instead of many.

use shardc_ir::{Graph, Op, ReduceFn, TensorType, ValueId};

use crate::error::Result;
use crate::program::SpmdProgram;

/// All-reduces whose local operand is below this many bytes are bucketed by default (PyTorch
/// DDP's first bucket is 1 MiB, `bucket_cap_mb` is 25 MiB after it).
pub const DEFAULT_BUCKET_BYTES: u64 = 1 << 20;

type Key = (Vec<String>, ReduceFn, shardc_ir::DType);

/// The bucket of all-reduces to merge: the first group of at least two small, mutually
/// independent all-reduces sharing a key, in program order.
fn find_bucket(g: &Graph, limit: u64) -> Option<Vec<ValueId>> {
    let mut keys: Vec<Key> = Vec::new();
    for n in &g.nodes {
        if let Op::AllReduce { axes, func } = &n.op {
            if n.ty.size_bytes() < limit {
                let k = (axes.clone(), *func, n.ty.dtype);
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
    }
    for key in keys {
        // `tainted[v]`: v depends on a member of the bucket.
        let mut tainted = vec![false; g.len()];
        let mut bucket = Vec::new();
        for v in g.ids() {
            let n = g.node(v);
            if n.operands.iter().any(|o| tainted[o.index()]) {
                tainted[v.index()] = true;
                continue;
            }
            let matches = match &n.op {
                Op::AllReduce { axes, func } => {
                    n.ty.size_bytes() < limit && (axes.clone(), *func, n.ty.dtype) == key
                }
                _ => false,
            };
            if matches {
                bucket.push(v);
                tainted[v.index()] = true;
            }
        }
        if bucket.len() >= 2 {
            return Some(bucket);
        }
    }
    None
}

/// Merges buckets of small all-reduces until none is left.
pub(super) fn bucket_all_reduces(p: &mut SpmdProgram, limit: u64) -> Result<()> {
    while let Some(bucket) = find_bucket(&p.graph, limit) {
        merge(p, &bucket)?;
    }
    Ok(())
}

/// The name of the next bucket's nodes: `bucket`, then `bucket.1`, `bucket.2`, ... (names must
/// stay unique when several buckets are merged).
fn bucket_prefix(g: &Graph) -> String {
    let taken: std::collections::HashSet<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    let free = |p: &str| {
        !taken.contains(format!("{p}.concat").as_str())
            && !taken.contains(format!("{p}.all_reduce").as_str())
    };
    if free("bucket") {
        return "bucket".into();
    }
    (1..)
        .map(|i| format!("bucket.{i}"))
        .find(|p| free(p))
        .expect("invariant: finitely many names are taken")
}

/// Rebuilds the program with `bucket` merged. Nodes that do not depend on a member keep their
/// order and come first (every member's operand is among them, since members are independent),
/// then the merged all-reduce and the pieces cut back out of it, then everything else.
fn merge(p: &mut SpmdProgram, bucket: &[ValueId]) -> Result<()> {
    let g = &p.graph;
    let mut tainted = vec![false; g.len()];
    for v in g.ids() {
        tainted[v.index()] =
            bucket.contains(&v) || g.node(v).operands.iter().any(|o| tainted[o.index()]);
    }
    let mut out = Graph::new(&g.name);
    out.mesh = g.mesh.clone();
    let mut map: Vec<Option<ValueId>> = vec![None; g.len()];
    let copy = |out: &mut Graph, map: &mut Vec<Option<ValueId>>, v: ValueId| -> Result<()> {
        let n = g.node(v);
        let ops = n
            .operands
            .iter()
            .map(|o| map[o.index()].expect("invariant: operands precede their users"))
            .collect();
        let x = out.push(n.name.clone(), n.op.clone(), ops, Some(n.ty.clone()))?;
        out.nodes[x.index()].role = n.role;
        out.nodes[x.index()].phase = n.phase;
        map[v.index()] = Some(x);
        Ok(())
    };
    for v in g.ids().filter(|v| !tainted[v.index()]) {
        copy(&mut out, &mut map, v)?;
    }
    let first = g.node(bucket[0]);
    let (axes, func) = match &first.op {
        Op::AllReduce { axes, func } => (axes.clone(), *func),
        _ => unreachable!("invariant: buckets hold all-reduces"),
    };
    let dtype = first.ty.dtype;
    let mut flat = Vec::new();
    let mut total = 0u64;
    for &m in bucket {
        let operand =
            map[g.node(m).operands[0].index()].expect("invariant: members' operands are untainted");
        let elems = g.ty(m).shape.elements();
        flat.push(out.push(
            format!("{}.flat", g.node(m).name),
            Op::Reshape,
            vec![operand],
            Some(TensorType::new(dtype, vec![elems])),
        )?);
        total += elems;
    }
    let prefix = bucket_prefix(g);
    let cat = out.push(
        format!("{prefix}.concat"),
        Op::Concatenate { dim: 0 },
        flat,
        None,
    )?;
    let reduced = out.push(
        format!("{prefix}.all_reduce"),
        Op::AllReduce { axes, func },
        vec![cat],
        Some(TensorType::new(dtype, vec![total])),
    )?;
    let mut offset = 0u64;
    for &m in bucket {
        let elems = g.ty(m).shape.elements();
        let piece = out.push(
            format!("{}.piece", g.node(m).name),
            Op::Slice {
                start: vec![offset],
                limit: vec![offset + elems],
                stride: vec![1],
            },
            vec![reduced],
            None,
        )?;
        offset += elems;
        let x = out.push(
            g.node(m).name.clone(),
            Op::Reshape,
            vec![piece],
            Some(g.ty(m).clone()),
        )?;
        map[m.index()] = Some(x);
    }
    for v in g
        .ids()
        .filter(|v| tainted[v.index()] && !bucket.contains(v))
    {
        copy(&mut out, &mut map, v)?;
    }
    let m = |v: ValueId| map[v.index()].expect("invariant: every node was copied");
    out.outputs = g.outputs.iter().map(|&v| m(v)).collect();
    let t = &g.training;
    out.training.loss = t.loss.map(m);
    out.training.gradients = t.gradients.iter().map(|&(a, b)| (m(a), m(b))).collect();
    out.training.updates = t.updates.iter().map(|&(a, b)| (m(a), m(b))).collect();
    for i in &mut p.inputs {
        i.local = m(i.local);
    }
    for o in &mut p.outputs {
        o.local = m(o.local);
    }
    p.graph = out;
    Ok(())
}
