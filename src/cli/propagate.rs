//! `shardc propagate`: derive every value's sharding from a few annotations and print it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use shardc::sharding::{propagate_with, PropagateOptions, ShardedGraph};
use shardc_ir::hlo::{import, print_with_shardings, HloImport};
use shardc_ir::sharding::HloSharding;
use shardc_ir::{Mesh, Sharding, ValueId};

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
    /// Shardy: the `sdy.mesh`, then each value's `#sdy.sharding<@mesh, [{"dp"}, {}]>`.
    Sdy,
}

/// Arguments of `shardc propagate`.
#[derive(Args, Debug)]
pub struct PropagateArgs {
    /// Graph file: shardc JSON, XLA HLO text (`.hlo`, `.txt`, or text starting `HloModule`),
    /// or StableHLO text (`.mlir`, or text starting `module`).
    pub file: PathBuf,
    /// Device mesh, e.g. `dp=2,tp=4` (default: the graph's own mesh; for HLO, the mesh its
    /// shardings imply).
    #[arg(long)]
    pub mesh: Option<String>,
    /// For HLO input whose shardings imply no mesh: the device count (a one-axis mesh `x0=N`).
    #[arg(long, value_name = "N")]
    pub num_devices: Option<u64>,
    /// Annotate a value: `NAME=SPEC` with SPEC in JAX form, e.g. `w1=P(None,'tp')`.
    #[arg(long = "shard", value_name = "NAME=SPEC")]
    pub shard: Vec<String>,
    /// Output notation.
    #[arg(long, value_enum, default_value = "jax")]
    pub format: Format,
    /// Print why this value has its sharding and the collectives its consumers need.
    #[arg(long, value_name = "NAME")]
    pub explain: Option<String>,
    /// Let propagation choose the outputs' shardings (XLA's
    /// `allow_spmd_sharding_propagation_to_output`): an annotation on an output is only where
    /// it starts, and an output split unevenly is replicated.
    #[arg(long)]
    pub propagate_to_output: bool,
    /// Likewise for the inputs (XLA's `allow_spmd_sharding_propagation_to_parameters`).
    #[arg(long)]
    pub propagate_to_parameters: bool,
}

/// Runs the subcommand.
pub fn run(args: PropagateArgs) -> Result<(), CliError> {
    let path = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    let hlo = match shardc::input_format(&args.file, &text) {
        shardc::InputFormat::Hlo => {
            Some(import(&text).map_err(|e| CliError::Input(format!("{path}: {e}")))?)
        }
        shardc::InputFormat::StableHlo => Some(
            shardc_ir::stablehlo::import(&text)
                .map_err(|e| CliError::Input(format!("{path}: {e}")))?,
        ),
        _ => None,
    };
    let graph = match &hlo {
        Some(imp) => imp.graph.clone(),
        None => shardc_ir::from_json(&text).map_err(|e| CliError::Input(format!("{path}: {e}")))?,
    };
    let mesh = match (&args.mesh, &graph.mesh, args.num_devices) {
        (Some(m), _, _) => m.parse::<Mesh>()?,
        (None, Some(m), _) => m.clone(),
        (None, None, Some(n)) => Mesh::new(&[("x0", n)])?,
        (None, None, None) => {
            return Err(CliError::Input(format!(
                "{path}: the graph names no mesh: give one with --mesh, e.g. --mesh dp=2,tp=4 \
                 (or --num-devices N for HLO)"
            )))
        }
    };
    let extra = super::input::parse_shards(&args.shard, &graph, &mesh, true)?;
    let (annotations, warnings) = shardc::merge_annotations(&graph, &mesh, &extra);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let name = |v: ValueId| graph.node(v).name.clone();
    let mut free: Vec<String> = Vec::new();
    if args.propagate_to_output {
        free.extend(graph.outputs.iter().map(|&v| name(v)));
    }
    if args.propagate_to_parameters {
        free.extend(graph.inputs().map(name));
    }
    let options = PropagateOptions {
        free,
        groups: hlo
            .as_ref()
            .map(|i| i.shard_groups.clone())
            .unwrap_or_default(),
        barriers: hlo.as_ref().map(|i| i.barriers.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let sg = propagate_with(&graph, &mesh, &annotations, &options).map_err(CliError::input)?;
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
    let text = match (&hlo, args.format) {
        (Some(imp), Format::Hlo) => hlo_module(imp, &sg)?,
        _ => render(&sg, args.format)?,
    };
    print!("{text}");
    Ok(())
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
        Format::Hlo | Format::Dtensor | Format::Sdy => {
            let width = g.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
            let head = if format == Format::Sdy {
                let axes: Vec<String> = mesh
                    .axes
                    .iter()
                    .map(|a| format!("\"{}\"={}", a.name, a.size))
                    .collect();
                format!("sdy.mesh @mesh = <[{}]>\n", axes.join(", "))
            } else {
                String::new()
            };
            let body = g
                .ids()
                .map(|v| {
                    let s = sg.sharding(v);
                    let text = match format {
                        Format::Hlo => hlo_sharding(s, mesh).map(|h| h.to_string()),
                        Format::Sdy => s.to_shardy("mesh"),
                        _ => s.to_dtensor(mesh),
                    }
                    .map_err(CliError::from)?;
                    Ok(format!("{:width$}  {text}\n", g.node(v).name))
                })
                .collect::<Result<String, CliError>>()?;
            head + &body
        }
    })
}

/// XLA's form of a sharding. XLA's shardings have no pending sums (its partitioner reduces them
/// where they arise), so a pending sum prints as the reduced value's sharding.
fn hlo_sharding(s: &Sharding, mesh: &Mesh) -> Result<HloSharding, shardc_ir::IrError> {
    let reduced = Sharding {
        partial: Vec::new(),
        ..s.clone()
    };
    HloSharding::from_sharding(&reduced, mesh)
}

/// The imported module printed back with a sharding on every instruction.
fn hlo_module(imp: &HloImport, sg: &ShardedGraph) -> Result<String, CliError> {
    let mesh = &sg.assignment.mesh;
    let shardings = sg
        .assignment
        .shardings
        .iter()
        .map(|s| hlo_sharding(s, mesh).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(print_with_shardings(imp, &shardings)?)
}
