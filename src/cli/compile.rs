//! `shardc compile FILE --mesh ... [--shard NAME=SPEC ...] -o DIR`: propagate the shardings,
//! partition, simplify the collectives and write the per-stage programs, as JSON and as a
//! readable text dump with the collectives marked.

use std::path::{Path, PathBuf};

use clap::Args;
use shardc::codegen::{partition, simplify, SpmdProgram, DEFAULT_BUCKET_BYTES};
use shardc::ir::{Annotation, Graph, Mesh, Sharding};

use super::{read_graph, CliError};

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
}

/// A graph file read either way, with the mesh and annotations it declares.
pub(crate) fn read_any(path: &Path) -> Result<Graph, CliError> {
    if path.extension().and_then(|e| e.to_str()) == Some("onnx") {
        return Ok(super::import::read_onnx(path, &[])?.graph);
    }
    let is_hlo = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("hlo") | Some("txt")
    );
    if !is_hlo {
        return read_graph(path);
    }
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let imp = shardc::ir::hlo::import(&text)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    Ok(imp.graph)
}

/// `NAME=SPEC` (JAX or DTensor notation) as an annotation on `mesh`.
pub(crate) fn parse_shard(arg: &str, g: &Graph, mesh: &Mesh) -> Result<Annotation, CliError> {
    let (name, spec) = arg.split_once('=').ok_or_else(|| {
        CliError::Input(format!(
            "--shard `{arg}`: expected NAME=SPEC, e.g. x=P('dp', None)"
        ))
    })?;
    let name = name.trim();
    let v = g.find(name).ok_or_else(|| {
        CliError::Input(format!(
            "--shard `{arg}`: graph `{}` has no value `{name}`",
            g.name
        ))
    })?;
    let rank = g.ty(v).rank();
    let spec = spec.trim();
    let sharding = if spec.starts_with('[') {
        Sharding::parse_dtensor(spec, mesh, rank)
    } else {
        Sharding::parse_jax(spec, rank)
    }
    .map_err(|e| CliError::Input(format!("--shard `{arg}`: {e}")))?;
    sharding
        .validate(mesh, rank)
        .map_err(|e| CliError::Input(format!("--shard `{arg}`: {e}")))?;
    Ok(Annotation {
        value: name.to_string(),
        sharding,
        priority: 0,
    })
}

/// The mesh (`--mesh`, else the graph's) and the annotations (the graph's, then `--shard`).
pub(crate) fn mesh_and_annotations(
    g: &Graph,
    file: &Path,
    mesh: Option<&str>,
    shard: &[String],
) -> Result<(Mesh, Vec<Annotation>), CliError> {
    let mesh: Mesh = match (mesh, &g.mesh) {
        (Some(m), _) => m.parse()?,
        (None, Some(m)) => m.clone(),
        (None, None) => {
            return Err(CliError::Input(format!(
                "{}: the graph names no mesh; give one with --mesh, e.g. dp=2,tp=4",
                file.display()
            )))
        }
    };
    let mut annotations = Vec::new();
    for ann in &g.annotations {
        let rank = g.find(&ann.value).map(|v| g.ty(v).rank());
        match rank.map(|r| ann.sharding.validate(&mesh, r)) {
            Some(Ok(())) => annotations.push(ann.clone()),
            _ => eprintln!(
                "warning: annotation on `{}` does not fit mesh `{mesh}`; ignored",
                ann.value
            ),
        }
    }
    for s in shard {
        annotations.push(parse_shard(s, g, &mesh)?);
    }
    Ok((mesh, annotations))
}

/// Propagates, partitions and (unless asked not to) simplifies: the programs of every stage.
pub(crate) fn compile(
    g: &Graph,
    mesh: &Mesh,
    annotations: &[Annotation],
    simplify_collectives: bool,
) -> Result<Vec<SpmdProgram>, CliError> {
    let sharded = shardc::sharding::propagate(g, mesh, annotations).map_err(CliError::input)?;
    for w in &sharded.warnings {
        eprintln!("warning: {w}");
    }
    let p = partition(g, &sharded.assignment).map_err(CliError::input)?;
    let p = if simplify_collectives {
        simplify(&p, DEFAULT_BUCKET_BYTES).map_err(CliError::input)?
    } else {
        p
    };
    Ok(vec![p])
}

pub fn run(a: CompileArgs) -> Result<(), CliError> {
    let g = read_any(&a.file)?;
    let (mesh, annotations) = mesh_and_annotations(&g, &a.file, a.mesh.as_deref(), &a.shard)?;
    let programs = compile(&g, &mesh, &annotations, !a.no_simplify)?;
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
