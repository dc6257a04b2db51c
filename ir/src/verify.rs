//! The verifier: every pass leaves a graph that passes it.

use std::collections::HashSet;

use crate::error::{IrError, Result};
use crate::graph::{Graph, ValueId};

/// Checks the whole graph: names unique and non-empty, operands defined earlier (SSA and
/// topological order), shapes within u64, every type equal to what its op's rule infers, outputs,
/// training links, mesh and annotations well-formed.
pub fn verify(g: &Graph) -> Result<()> {
    if let Some(mesh) = &g.mesh {
        mesh.validate()?;
    }
    let mut names = HashSet::with_capacity(g.nodes.len());
    for (i, n) in g.nodes.iter().enumerate() {
        if n.name.is_empty() {
            return Err(IrError::node(
                format!("%{i}"),
                n.op.name(),
                "node has an empty name",
            ));
        }
        if !names.insert(n.name.as_str()) {
            return Err(IrError::node(
                &n.name,
                n.op.name(),
                "name is used by an earlier node",
            ));
        }
        if n.ty
            .shape
            .checked_elements()
            .and_then(|e| e.checked_mul(n.ty.dtype.size_bytes()))
            .is_none()
        {
            return Err(IrError::node(
                &n.name,
                n.op.name(),
                format!("type {} overflows u64 bytes", n.ty),
            ));
        }
        for &o in &n.operands {
            if o.index() >= i {
                return Err(IrError::node(
                    &n.name,
                    n.op.name(),
                    format!("operand {o} is not defined before this node (graphs are in topological order)"),
                ));
            }
        }
        let inferred = g.infer(&n.name, &n.op, &n.operands, Some(&n.ty))?;
        if inferred != n.ty {
            return Err(IrError::node(
                &n.name,
                n.op.name(),
                format!("declared type {} but the op gives {inferred}", n.ty),
            ));
        }
    }
    let check = |v: ValueId, what: &str| -> Result<()> {
        if v.index() >= g.nodes.len() {
            return Err(IrError::Graph(format!("{what} {v} does not exist")));
        }
        Ok(())
    };
    for &o in &g.outputs {
        check(o, "output")?;
    }
    if let Some(l) = g.training.loss {
        check(l, "loss")?;
        if g.ty(l).rank() != 0 {
            return Err(IrError::Graph(format!(
                "loss `{}` is {}, not a scalar",
                g.node(l).name,
                g.ty(l)
            )));
        }
    }
    for &(p, v) in g.training.gradients.iter().chain(&g.training.updates) {
        check(p, "training link")?;
        check(v, "training link")?;
        if g.ty(p).shape != g.ty(v).shape {
            return Err(IrError::Graph(format!(
                "`{}` ({}) and its gradient or update `{}` ({}) differ in shape",
                g.node(p).name,
                g.ty(p),
                g.node(v).name,
                g.ty(v)
            )));
        }
    }
    for a in &g.annotations {
        let v = g.find(&a.value).ok_or_else(|| {
            IrError::Graph(format!(
                "annotation names value `{}`, which the graph does not have",
                a.value
            ))
        })?;
        let mesh = g.mesh.as_ref().ok_or_else(|| {
            IrError::Graph(format!(
                "annotation on `{}` needs the graph to name a mesh",
                a.value
            ))
        })?;
        a.sharding
            .validate(mesh, g.ty(v).rank())
            .map_err(|m| IrError::Graph(format!("annotation on `{}`: {m}", a.value)))?;
    }
    Ok(())
}

/// Runs the verifier in debug builds only (for passes to call after themselves).
pub fn debug_verify(g: &Graph) {
    if cfg!(debug_assertions) {
        if let Err(e) = verify(g) {
            panic!("pass produced an invalid graph: {e}");
        }
    }
}
