//! The readable text dump: one node per line, types (and shardings, when given) shown.
//!
//! ```text
//! graph mlp
//!   %0 x : f32[8,16] = input() {role=input}
//!   %2 fc1 : f32[8,32] = dot_general(%0, %1) lhs_contract=[1] rhs_contract=[0]
//! outputs: %5
//! ```

use std::fmt::Write;

use serde_json::Value;

use crate::graph::{Graph, Phase, Role, ValueId};

/// Dumps a graph without shardings.
pub fn dump(g: &Graph) -> String {
    dump_with(g, |_| None)
}

/// Dumps a graph; `annotate(v)` may return text (a sharding) shown in braces after the type.
pub fn dump_with(g: &Graph, annotate: impl Fn(ValueId) -> Option<String>) -> String {
    let mut out = String::new();
    write!(
        out,
        "graph {}",
        if g.name.is_empty() {
            "<unnamed>"
        } else {
            &g.name
        }
    )
    .ok();
    if let Some(m) = &g.mesh {
        write!(out, " mesh({m})").ok();
    }
    out.push('\n');
    for v in g.ids() {
        let n = g.node(v);
        write!(out, "  {v} {} : {}", n.name, n.ty).ok();
        if let Some(s) = annotate(v) {
            write!(out, " {{{s}}}").ok();
        }
        write!(out, " = {}(", n.op.name()).ok();
        for (i, o) in n.operands.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write!(out, "{o}").ok();
        }
        out.push(')');
        write_attrs(&mut out, &n.op);
        let mut tags = Vec::new();
        if n.role != Role::Activation {
            tags.push(format!("role={}", n.role.name()));
        }
        if n.phase != Phase::Forward {
            tags.push(format!("phase={}", n.phase.name()));
        }
        if n.recompute {
            tags.push("recompute".to_string());
        }
        if !tags.is_empty() {
            write!(out, " [{}]", tags.join(" ")).ok();
        }
        out.push('\n');
    }
    let list = |vs: &[ValueId]| {
        vs.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(out, "outputs: {}", list(&g.outputs)).ok();
    if let Some(l) = g.training.loss {
        writeln!(out, "loss: {l}").ok();
    }
    if !g.training.gradients.is_empty() {
        let pairs: Vec<String> = g
            .training
            .gradients
            .iter()
            .map(|(p, d)| format!("{p}->{d}"))
            .collect();
        writeln!(out, "gradients: {}", pairs.join(", ")).ok();
    }
    if !g.training.updates.is_empty() {
        let pairs: Vec<String> = g
            .training
            .updates
            .iter()
            .map(|(p, d)| format!("{p}->{d}"))
            .collect();
        writeln!(out, "updates: {}", pairs.join(", ")).ok();
    }
    out
}

/// Attributes as `key=value`, read off the op's serialized form so no op needs printing code.
fn write_attrs(out: &mut String, op: &crate::op::Op) {
    let Ok(Value::Object(m)) = serde_json::to_value(op) else {
        return;
    };
    for (k, v) in m {
        // Unary and binary ops print their function as the op name; a reduce's or all-reduce's
        // function is an attribute like any other.
        let named_by_func = matches!(
            op,
            crate::op::Op::Unary { .. } | crate::op::Op::Binary { .. }
        );
        if k == "op" || (k == "func" && named_by_func) {
            continue;
        }
        let text = match &v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        write!(out, " {k}={text}").ok();
    }
}
