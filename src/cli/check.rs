//! `shardc check FILE`: verify a graph and summarise it (from `shardc_ir::GraphStats`).

use std::fmt::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;
use shardc::cost_model::{graph_memory, GraphOptions};
use shardc::ir::{Graph, GraphStats, Mesh, Sharding, ShardingAssignment};

use super::{read_graph, CliError};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The graph file (shardc JSON).
    pub file: PathBuf,
    /// How to print the summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Output formats of `check`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable lines.
    Text,
    /// One JSON object (keys `name`, `nodes`, `parameters`, `flops`, ...).
    Json,
}

/// What `check --format json` prints: the graph's figures plus what it declares.
#[derive(Serialize)]
struct Report<'a> {
    name: &'a str,
    #[serde(flatten)]
    stats: &'a GraphStats,
    outputs: usize,
    loss: Option<&'a str>,
    mesh: Option<String>,
    annotations: usize,
    /// The peak of live activations on one device, unsharded, one micro-batch: what the forward
    /// pass keeps for the backward plus the largest set of short-lived values live at once
    /// (the cost model's liveness, with its fusion rules).
    activation_peak_bytes: u64,
}

/// Activation memory of the unsharded graph from the cost model's liveness: `(kept, transient)`.
fn activation_peak(g: &Graph) -> Result<(f64, f64), CliError> {
    let mesh = Mesh::new(&[("device", 1)])?;
    let assignment = ShardingAssignment {
        mesh,
        shardings: g
            .nodes
            .iter()
            .map(|n| Sharding::replicated(n.ty.rank()))
            .collect(),
    };
    let m = graph_memory(g, &assignment, &GraphOptions::default()).map_err(CliError::input)?;
    Ok((m.activations, m.transient))
}

pub fn run(a: CheckArgs) -> Result<(), CliError> {
    let g = read_graph(&a.file)?;
    let stats = GraphStats::of(&g);
    let peak = activation_peak(&g)?;
    let text = match a.format {
        Format::Text => text_summary(&g, &stats, peak),
        Format::Json => {
            let report = Report {
                name: &g.name,
                stats: &stats,
                outputs: g.outputs.len(),
                loss: g.training.loss.map(|l| g.node(l).name.as_str()),
                mesh: g.mesh.as_ref().map(|m| m.to_string()),
                annotations: g.annotations.len(),
                activation_peak_bytes: (peak.0 + peak.1).round() as u64,
            };
            let mut s =
                serde_json::to_string_pretty(&report).expect("invariant: the report serializes");
            s.push('\n');
            s
        }
    };
    print!("{text}");
    Ok(())
}

fn text_summary(g: &Graph, s: &GraphStats, (kept, transient): (f64, f64)) -> String {
    let mut out = String::new();
    let name = if g.name.is_empty() {
        "<unnamed>"
    } else {
        &g.name
    };
    let phases: Vec<String> = ["forward", "backward_input", "backward_weight", "update"]
        .iter()
        .zip(s.phases)
        .filter(|&(_, n)| n > 0)
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    let w = |out: &mut String, k: &str, v: String| {
        writeln!(out, "{k:<18}{v}").ok();
    };
    writeln!(out, "graph {name}: ok").ok();
    w(
        &mut out,
        "nodes",
        format!("{} ({})", s.nodes, phases.join(", ")),
    );
    w(
        &mut out,
        "parameters",
        format!(
            "{}, {}",
            count(s.parameters as u128, ""),
            bytes(s.parameter_bytes)
        ),
    );
    w(&mut out, "FLOPs per step", count(s.flops, "FLOP"));
    w(&mut out, "  in matmuls", count(s.matmul_flops, "FLOP"));
    if s.recompute_flops > 0 {
        w(&mut out, "  recomputed", si(s.recompute_flops, "FLOP"));
    }
    let peak = (kept + transient).round() as u64;
    let split = if kept > 0.0 {
        format!(
            " ({} kept for the backward, {} short-lived)",
            bytes(kept.round() as u64),
            bytes(transient.round() as u64)
        )
    } else {
        String::new()
    };
    w(
        &mut out,
        "activation bytes",
        format!("{} peak live{split}", bytes(peak)),
    );
    w(&mut out, "input bytes", bytes(s.input_bytes));
    if s.optimizer_state_bytes > 0 {
        w(&mut out, "optimizer state", bytes(s.optimizer_state_bytes));
    }
    if s.collectives > 0 {
        w(&mut out, "collectives", s.collectives.to_string());
    }
    let loss = g
        .training
        .loss
        .map_or(String::new(), |l| format!(", loss `{}`", g.node(l).name));
    w(&mut out, "outputs", format!("{}{loss}", g.outputs.len()));
    if let Some(m) = &g.mesh {
        w(
            &mut out,
            "mesh",
            format!("{m} ({} annotations)", g.annotations.len()),
        );
    }
    out
}

/// `1234567` → `1,234,567 (1.23 M)`; small numbers as they are.
fn count(n: u128, unit: &str) -> String {
    if n < 1000 {
        si(n, unit)
    } else {
        format!("{} ({})", group(n), si(n, unit))
    }
}

/// `1234567` → `1,234,567`.
fn group(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Decimal SI prefixes: `1.23 GFLOP`.
fn si(n: u128, unit: &str) -> String {
    const PREFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut x = n as f64;
    let mut i = 0;
    while x >= 1000.0 && i + 1 < PREFIXES.len() {
        x /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} {unit}").trim_end().to_string()
    } else {
        format!("{x:.2} {}{unit}", PREFIXES[i])
    }
}

/// Binary prefixes: `1.50 GiB`.
fn bytes(n: u64) -> String {
    const PREFIXES: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = n as f64;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < PREFIXES.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{x:.2} {}", PREFIXES[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_scaled() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(si(999, "FLOP"), "999 FLOP");
        assert_eq!(si(1_500_000_000, "FLOP"), "1.50 GFLOP");
        assert_eq!(si(42, ""), "42");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(count(12, "FLOP"), "12 FLOP");
        assert_eq!(count(123_456, ""), "123,456 (123.46 k)");
        assert_eq!(bytes(3 << 29), "1.50 GiB");
    }
}
