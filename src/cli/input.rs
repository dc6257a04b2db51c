//! What every subcommand reads the same way: graph files (one function decides the format),
//! `--shard` arguments (one function merges them with the file's annotations) and plan files.

use std::path::Path;

use shardc::ir::{Annotation, Graph, Mesh, Sharding};
use shardc::{Imported, Plan};

use super::{spinner, CliError};

/// Reads and verifies a graph file in whatever format it is in (`shardc::input_format`).
pub(crate) fn read_input(path: &Path) -> Result<Imported, CliError> {
    read_input_dims(path, &[])
}

/// [`read_input`] with `--dim NAME=SIZE` values for an ONNX model's dynamic dims.
pub(crate) fn read_input_dims(path: &Path, dims: &[String]) -> Result<Imported, CliError> {
    let onnx = shardc::ir::onnx::OnnxOptions::with_dims(dims)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    let spin = spinner(&format!("reading {}", path.display()));
    let imp = shardc::import_with(path, &onnx);
    spin.finish_and_clear();
    imp.map_err(|e| match e.source.downcast_ref::<std::io::Error>() {
        Some(io) => CliError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(io.kind(), io.to_string()),
        },
        None => CliError::Input(format!("{}: {}", path.display(), e.source)),
    })
}

/// `NAME=SPEC` (JAX or DTensor notation) as an annotation; checked against `mesh` when
/// `validate` (a planner without a fixed mesh checks it on each mesh it tries).
pub(crate) fn parse_shard(
    arg: &str,
    g: &Graph,
    mesh: &Mesh,
    validate: bool,
) -> Result<Annotation, CliError> {
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
    if validate {
        sharding
            .validate(mesh, rank)
            .map_err(|e| CliError::Input(format!("--shard `{arg}`: {e}")))?;
    }
    Ok(Annotation {
        value: name.to_string(),
        sharding,
        priority: 0,
    })
}

/// Every `--shard`; a later one of a value replaces an earlier one.
pub(crate) fn parse_shards(
    args: &[String],
    g: &Graph,
    mesh: &Mesh,
    validate: bool,
) -> Result<Vec<Annotation>, CliError> {
    let mut out: Vec<Annotation> = Vec::new();
    for s in args {
        let a = parse_shard(s, g, mesh, validate)?;
        out.retain(|x| x.value != a.value);
        out.push(a);
    }
    Ok(out)
}

/// The mesh (`--mesh`, else the graph's) and the annotations in effect: the file's that fit the
/// mesh, then `--shard`, which replaces the file's annotation of the same value.
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
    let extra = parse_shards(shard, g, &mesh, true)?;
    let (annotations, warnings) = shardc::merge_annotations(g, &mesh, &extra);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok((mesh, annotations))
}

/// Reads a plan file and checks that it is a plan of `g`.
pub(crate) fn read_plan(path: &Path, g: &Graph) -> Result<Plan, CliError> {
    let what = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: what.clone(),
        source,
    })?;
    let plan = Plan::from_json(&what, &text).map_err(CliError::input)?;
    plan.assignment(g)
        .map_err(|e| CliError::Input(format!("{what}: {e}")))?;
    Ok(plan)
}
