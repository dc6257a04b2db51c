//! A minimal JAX-style printer for shardings, used by reports and `explain`
//! (`P('dp', None)`, `P(('dp', 'tp'), None)`, plus `partial(tp)` for pending sums).

use shardc_ir::{ReduceFn, Sharding};

/// `P('dp', None)`; a pending reduction is appended as `partial(tp)` (`partial_max(tp)` for max).
pub(crate) fn jax(s: &Sharding) -> String {
    let q = |a: &String| format!("'{a}'");
    let dims: Vec<String> = s
        .dims
        .iter()
        .map(|d| match d.axes.len() {
            0 => "None".to_string(),
            1 => q(&d.axes[0]),
            _ => format!("({})", d.axes.iter().map(q).collect::<Vec<_>>().join(", ")),
        })
        .collect();
    let mut out = format!("P({})", dims.join(", "));
    if !s.partial.is_empty() {
        let f = match s.partial_fn {
            ReduceFn::Sum => "partial",
            ReduceFn::Max => "partial_max",
            ReduceFn::Min => "partial_min",
        };
        out.push_str(&format!(" {f}({})", s.partial.join(",")));
    }
    out
}
