//! `shardc compile FILE --mesh ... [--shard NAME=SPEC ...] -o DIR`: propagate the shardings,
//! partition, simplify the collectives and write the per-stage programs, as JSON and as a
//! readable text dump with the collectives marked.

use std::path::{Path, PathBuf};

use clap::Args;
use shardc::codegen::{partition, SpmdProgram};
use shardc::ir::{Annotation, Graph, Mesh};
use shardc::Imported;

use super::input::{mesh_and_annotations, read_input, read_plan};
use super::CliError;

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// The graph file: shardc JSON, or XLA HLO text (`.hlo`, `.txt`) with its shardings.
    pub file: PathBuf,
    /// The device mesh, e.g. `dp=2,tp=4` (default: the graph's own mesh).
    #[arg(long)]
    pub mesh: Option<String>,
    /// A sharding for a value: `NAME=P('dp', None)` (JAX) or `NAME=[Shard(0), Replicate()]`
    /// (DTensor, one placement per mesh axis). Repeatable; adds to the graph's annotations.
    #[arg(long = "shard", value_name = "NAME=SPEC")]
    pub shard: Vec<String>,
    /// The directory the programs are written to (created if missing).
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Keep the collectives as the partitioner inserted them (no egg simplification).
    #[arg(long)]
    pub no_simplify: bool,
    /// Compile under a plan (`shardc plan -o plan.json`): its mesh and every value's sharding.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
}

/// `NAME=SPEC` on `mesh`, checked (what `cost` reads its `--shard` with).
pub(crate) fn parse_shard(arg: &str, g: &Graph, mesh: &Mesh) -> Result<Annotation, CliError> {
    super::input::parse_shard(arg, g, mesh, true)
}

/// The program of the graph: under `--plan`'s shardings, or propagated from the annotations
/// (the file's, then `--shard`) on the mesh.
pub(crate) fn program(
    imp: &Imported,
    file: &Path,
    plan: Option<&Path>,
    mesh: Option<&str>,
    shard: &[String],
    simplify_collectives: bool,
) -> Result<SpmdProgram, CliError> {
    let g = &imp.graph;
    match plan {
        Some(p) => {
            if mesh.is_some() || !shard.is_empty() {
                return Err(CliError::Input(format!(
                    "--plan {}: the plan fixes the mesh and every sharding; drop --mesh and \
                     --shard (or re-plan with them)",
                    p.display()
                )));
            }
            let plan = read_plan(p, g)?;
            if simplify_collectives {
                return Ok(shardc::compile(g, &plan)?);
            }
            let assignment = plan.assignment(g).map_err(CliError::input)?;
            partition(g, &assignment).map_err(CliError::input)
        }
        None => {
            let (mesh, annotations) = mesh_and_annotations(g, file, mesh, shard)?;
            Ok(shardc::compile_annotated(
                imp,
                &mesh,
                &annotations,
                simplify_collectives,
            )?)
        }
    }
}

pub fn run(a: CompileArgs) -> Result<(), CliError> {
    let imp = read_input(&a.file)?;
    let p = program(
        &imp,
        &a.file,
        a.plan.as_deref(),
        a.mesh.as_deref(),
        &a.shard,
        !a.no_simplify,
    )?;
    let mesh = p
        .graph
        .mesh
        .clone()
        .ok_or_else(|| CliError::Input("the partitioned program names no mesh".into()))?;
    let programs = vec![p];
    std::fs::create_dir_all(&a.out).map_err(|source| CliError::Io {
        path: a.out.display().to_string(),
        source,
    })?;
    for p in &programs {
        let write = |ext: &str, text: String| {
            let path = a.out.join(format!("stage{}.{ext}", p.stage));
            std::fs::write(&path, text).map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        write("json", shardc::ir::to_json(&p.graph))?;
        write("txt", p.dump())?;
        let counts: Vec<String> = p
            .collective_counts()
            .iter()
            .map(|(op, n)| format!("{n} {op}"))
            .collect();
        println!(
            "stage {}: {} ops on mesh {mesh}, collectives: {} -> {}",
            p.stage,
            p.graph.len(),
            if counts.is_empty() {
                "none".to_string()
            } else {
                counts.join(", ")
            },
            a.out
                .join(format!("stage{}.{{json,txt}}", p.stage))
                .display()
        );
    }
    Ok(())
}
