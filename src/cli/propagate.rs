//! `shardc propagate`: derive every value's sharding from a few annotations and print it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use shardc::sharding::{propagate, ShardedGraph};
use shardc_ir::{Annotation, DimSharding, Graph, Mesh, Sharding};

use super::CliError;

/// How shardings are printed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JAX `PartitionSpec`, with each value's type and reason, then the collectives.
    Jax,
    /// XLA HLO sharding text (`{devices=[2,1,4]<=[8] last_tile_dim_replicate}`).
    Hlo,
    /// PyTorch DTensor placements, one per mesh axis (`[Shard(0), Replicate()]`).
    Dtensor,
    /// JSON: the mesh and every value's sharding.
    Json,
}

/// Arguments of `shardc propagate`.
#[derive(Args, Debug)]
pub struct PropagateArgs {
    /// Graph file (shardc JSON).
    pub file: PathBuf,
    /// Device mesh, e.g. `dp=2,tp=4` (default: the graph's own mesh).
    #[arg(long)]
    pub mesh: Option<String>,
    /// Annotate a value: `NAME=SPEC` with SPEC in JAX form, e.g. `w1=P(None,'tp')`.
    #[arg(long = "shard", value_name = "NAME=SPEC")]
    pub shard: Vec<String>,
    /// Output notation.
    #[arg(long, value_enum, default_value = "jax")]
    pub format: Format,
    /// Print why this value has its sharding and the collectives its consumers need.
    #[arg(long, value_name = "NAME")]
    pub explain: Option<String>,
}

/// Runs the subcommand.
pub fn run(args: PropagateArgs) -> Result<(), CliError> {
    let path = args.file.display().to_string();
    if args.file.extension().is_some_and(|e| e == "hlo") {
        return Err(CliError::Input(format!(
            "{path}: reading XLA HLO text needs the HLO importer, which this build does not have yet"
        )));
    }
    let text = std::fs::read_to_string(&args.file).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    let graph = shardc_ir::from_json(&text).map_err(|e| CliError::Input(format!("{path}: {e}")))?;
    let mesh = match (&args.mesh, &graph.mesh) {
        (Some(m), _) => m.parse::<Mesh>()?,
        (None, Some(m)) => m.clone(),
        (None, None) => {
            return Err(CliError::Input(format!(
                "{path}: the graph names no mesh: give one with --mesh, e.g. --mesh dp=2,tp=4"
            )))
        }
    };
    let annotations = annotations(&graph, &args.shard)?;
    let sg = propagate(&graph, &mesh, &annotations).map_err(CliError::input)?;
    for w in &sg.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(name) = &args.explain {
        let v = graph.find(name).ok_or_else(|| {
            CliError::Input(format!(
                "--explain {name}: the graph has no value of that name"
            ))
        })?;
        print!("{}", sg.explain(v).map_err(CliError::input)?);
        return Ok(());
    }
    print!("{}", render(&sg, args.format)?);
    Ok(())
}

/// The graph's own annotations, with `--shard` ones replacing those on the same value.
fn annotations(graph: &Graph, shard: &[String]) -> Result<Vec<Annotation>, CliError> {
    let mut out = graph.annotations.clone();
    for s in shard {
        let (name, spec) = s.split_once('=').ok_or_else(|| {
            CliError::Input(format!(
                "--shard {s}: expected NAME=SPEC, e.g. w1=P(None,'tp')"
            ))
        })?;
        let sharding =
            parse_jax(spec.trim()).map_err(|m| CliError::Input(format!("--shard {s}: {m}")))?;
        out.retain(|a| a.value != name.trim());
        out.push(Annotation {
            value: name.trim().to_string(),
            sharding,
            priority: 0,
        });
    }
    Ok(out)
}

/// Parses a JAX `PartitionSpec`: `P('dp', None)`, `P(('dp','tp'), None)`, `P()`.
fn parse_jax(spec: &str) -> Result<Sharding, String> {
    let inner = spec
        .strip_prefix("PartitionSpec(")
        .or_else(|| spec.strip_prefix("P("))
        .and_then(|s| s.strip_suffix(')'))
        .ok_or("expected P(...), e.g. P('dp', None)")?;
    let mut dims = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (entry, after) = if let Some(r) = rest.strip_prefix('(') {
            let close = r.find(')').ok_or("unclosed `(` in a dim's axis tuple")?;
            (&r[..close], &r[close + 1..])
        } else {
            match rest.find(',') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        let mut axes = Vec::new();
        for a in entry.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            if a == "None" {
                continue;
            }
            let name = a
                .strip_prefix('\'')
                .and_then(|a| a.strip_suffix('\''))
                .or_else(|| a.strip_prefix('"').and_then(|a| a.strip_suffix('"')))
                .ok_or_else(|| format!("axis `{a}` must be quoted, e.g. 'dp', or None"))?;
            axes.push(name.to_string());
        }
        dims.push(DimSharding { axes, open: false });
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(Sharding {
        dims,
        ..Sharding::default()
    })
}

fn render(sg: &ShardedGraph, format: Format) -> Result<String, CliError> {
    let mesh = &sg.assignment.mesh;
    let g = &sg.graph;
    Ok(match format {
        Format::Jax => sg.report().map_err(CliError::input)?,
        Format::Json => {
            let values: Vec<serde_json::Value> = g
                .ids()
                .map(|v| serde_json::json!({"name": g.node(v).name, "sharding": sg.sharding(v)}))
                .collect();
            let doc = serde_json::json!({"mesh": mesh.to_string(), "values": values});
            serde_json::to_string_pretty(&doc).map_err(CliError::input)? + "\n"
        }
        Format::Hlo | Format::Dtensor => {
            let width = g.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
            g.ids()
                .map(|v| {
                    let s = sg.sharding(v);
                    let text = if format == Format::Hlo {
                        hlo(s, mesh)
                    } else {
                        dtensor(s, mesh)
                    };
                    format!("{:width$}  {text}\n", g.node(v).name)
                })
                .collect()
        }
    })
}

/// DTensor placements, one per mesh axis.
fn dtensor(s: &Sharding, mesh: &Mesh) -> String {
    let p: Vec<String> = mesh
        .axes
        .iter()
        .map(|a| {
            if let Some(d) = s.dims.iter().position(|d| d.axes.contains(&a.name)) {
                format!("Shard({d})")
            } else if s.partial.contains(&a.name) {
                "Partial()".to_string()
            } else {
                "Replicate()".to_string()
            }
        })
        .collect();
    format!("[{}]", p.join(", "))
}

/// XLA's sharding text with an iota tile assignment. A pending sum shows as replicated (XLA's
/// shardings have no pending sums; its partitioner reduces them).
fn hlo(s: &Sharding, mesh: &Mesh) -> String {
    if s.dims.iter().all(|d| d.axes.is_empty()) {
        return "{replicated}".to_string();
    }
    let mut order: Vec<usize> = Vec::new();
    let mut tiles: Vec<u64> = Vec::new();
    for d in &s.dims {
        tiles.push(
            d.axes
                .iter()
                .map(|a| mesh.axis_size(a).unwrap_or(1))
                .product(),
        );
        order.extend(d.axes.iter().filter_map(|a| mesh.axis_index(a)));
    }
    let rest: Vec<usize> = (0..mesh.axes.len())
        .filter(|i| !order.contains(i))
        .collect();
    let replicated: u64 = rest.iter().map(|&i| mesh.axes[i].size).product();
    order.extend(&rest);
    if replicated > 1 {
        tiles.push(replicated);
    }
    let join = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let ordered = order.windows(2).all(|w| w[0] < w[1]);
    let devices = if ordered {
        format!("<=[{}]", mesh.num_devices())
    } else {
        let sizes: Vec<u64> = mesh.axes.iter().map(|a| a.size).collect();
        let perm: Vec<u64> = order.iter().map(|&i| i as u64).collect();
        format!("<=[{}]T({})", join(&sizes), join(&perm))
    };
    let suffix = if replicated > 1 {
        " last_tile_dim_replicate"
    } else {
        ""
    };
    format!("{{devices=[{}]{devices}{suffix}}}", join(&tiles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jax_specs_parse_with_tuples_and_none() {
        let s = parse_jax("P(('dp', 'tp'), None, 'x')").unwrap();
        assert_eq!(s, Sharding::from_dims(&[&["dp", "tp"], &[], &["x"]]));
        assert_eq!(parse_jax("P()").unwrap().rank(), 0);
        assert!(parse_jax("P(dp)").unwrap_err().contains("quoted"));
        assert!(parse_jax("dp").is_err());
    }

    #[test]
    fn hlo_and_dtensor_forms_follow_the_mesh() {
        let mesh: Mesh = "dp=2,tp=4".parse().unwrap();
        let s = Sharding::from_dims(&[&["dp"], &[]]);
        assert_eq!(
            hlo(&s, &mesh),
            "{devices=[2,1,4]<=[8] last_tile_dim_replicate}"
        );
        let s = Sharding::from_dims(&[&["tp"], &["dp"]]);
        assert_eq!(hlo(&s, &mesh), "{devices=[4,2]<=[2,4]T(1,0)}");
        assert_eq!(dtensor(&s, &mesh), "[Shard(1), Shard(0)]");
        assert_eq!(hlo(&Sharding::replicated(2), &mesh), "{replicated}");
    }
}
