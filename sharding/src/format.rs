//! Shardings as reports and `explain` print them: JAX's `PartitionSpec` form.

use shardc_ir::{ReduceFn, Sharding};

/// JAX's own form (`P('dp', None, unreduced={'tp'})`); a pending max or min, which JAX cannot
/// write, as `P('dp', None) partial_max(tp)`.
pub(crate) fn jax(s: &Sharding) -> String {
    s.to_jax().unwrap_or_else(|_| fallback(s))
}

fn fallback(s: &Sharding) -> String {
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
