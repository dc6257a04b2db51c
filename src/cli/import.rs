//! `shardc import FILE.hlo -o FILE.json`: reads XLA HLO text (or an ONNX model, `FILE.onnx`) into
//! a shardc graph.

use std::path::PathBuf;

use clap::Args;

use super::CliError;

/// Import an XLA HLO text module (e.g. from `jax.jit(f).lower(...).as_text(dialect="hlo")`) or
/// an ONNX model (`torch.onnx.export`).
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The HLO text file, or an ONNX model (`.onnx`).
    pub file: PathBuf,
    /// Where to write the graph (shardc JSON); standard output when omitted.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// ONNX: the size of a dynamic dim, `NAME=SIZE` (e.g. `batch=8`); repeatable.
    #[arg(long = "dim", value_name = "NAME=SIZE")]
    pub dims: Vec<String>,
    /// ONNX: also write the model's initializers (the parameters' values) to this `.npz`, for
    /// `shardc run GRAPH.json --inputs`.
    #[arg(long, value_name = "FILE.npz")]
    pub weights: Option<PathBuf>,
}

/// Imports an ONNX model with `--dim` values; errors name the file.
pub(crate) fn read_onnx(
    path: &std::path::Path,
    dims: &[String],
) -> Result<shardc::ir::onnx::OnnxModel, CliError> {
    let fail = |e: &dyn std::fmt::Display| CliError::Input(format!("{}: {e}", path.display()));
    let opts = shardc::ir::onnx::OnnxOptions::with_dims(dims).map_err(|e| fail(&e))?;
    shardc::ir::onnx::import(path, &opts).map_err(|e| fail(&e))
}

fn run_onnx(args: &ImportArgs) -> Result<(), CliError> {
    let model = read_onnx(&args.file, &args.dims)?;
    super::write_output(args.output.as_deref(), &shardc_ir::to_json(&model.graph))?;
    if let Some(w) = &args.weights {
        let fail = |e: &dyn std::fmt::Display| CliError::Input(format!("{}: {e}", w.display()));
        let arrays = model
            .params
            .iter()
            .map(|p| {
                Ok((
                    p.name.clone(),
                    shardc::runtime::param_tensor(p).map_err(|e| fail(&e))?,
                ))
            })
            .collect::<Result<Vec<_>, CliError>>()?;
        shardc::runtime::write_npz(w, &arrays).map_err(|e| fail(&e))?;
    }
    eprintln!(
        "imported {} nodes, {} parameters (ONNX opset {}, {})",
        model.graph.len(),
        model.params.len(),
        model.opset,
        if model.producer.is_empty() {
            "unknown producer"
        } else {
            &model.producer
        }
    );
    Ok(())
}

pub fn run(args: ImportArgs) -> Result<(), CliError> {
    if args.file.extension().and_then(|e| e.to_str()) == Some("onnx") {
        return run_onnx(&args);
    }
    let path = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    let imp = shardc_ir::hlo::import(&text).map_err(|e| CliError::Input(format!("{path}: {e}")))?;
    for note in &imp.notes {
        eprintln!("warning: {path}: {note}");
    }
    let json = shardc_ir::to_json(&imp.graph);
    super::write_output(args.output.as_deref(), &json)?;
    let mesh = imp
        .graph
        .mesh
        .as_ref()
        .map_or("no mesh".to_string(), |m| format!("mesh {m}"));
    eprintln!(
        "imported {} nodes, {} annotations ({mesh})",
        imp.graph.len(),
        imp.graph.annotations.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("shardc-import-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn import_writes_a_graph_that_reads_back_with_its_annotations() {
        let hlo = temp(
            "ok.hlo",
            "HloModule m\nENTRY e {\n  x = f32[8,4] parameter(0), sharding={devices=[2,1]0,1}\n  ROOT y = f32[8,4] exponential(x)\n}\n",
        );
        let out = hlo.with_extension("json");
        run(ImportArgs {
            file: hlo.clone(),
            output: Some(out.clone()),
            dims: vec![],
            weights: None,
        })
        .unwrap();
        let g = shardc_ir::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(g.nodes.len(), 2);
        assert_eq!(g.nodes[1].name, "y");
        assert_eq!(g.annotations[0].value, "x");
        assert_eq!(g.annotations[0].sharding.to_jax().unwrap(), "P('x0', None)");
        let _ = std::fs::remove_file(hlo);
        let _ = std::fs::remove_file(out);
    }

    #[test]
    fn unsupported_hlo_is_bad_input_naming_the_instruction() {
        let hlo = temp(
            "bad.hlo",
            "HloModule m\nENTRY e {\n  p = f32[4] parameter(0)\n  ROOT s = f32[4] sort(p), dimensions={0}\n}\n",
        );
        let e = run(ImportArgs {
            file: hlo.clone(),
            output: None,
            dims: vec![],
            weights: None,
        })
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("`s` (sort)") && msg.contains("line 4"),
            "{msg}"
        );
        let e = run(ImportArgs {
            file: PathBuf::from("/nonexistent/x.hlo"),
            output: None,
            dims: vec![],
            weights: None,
        })
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let _ = std::fs::remove_file(hlo);
    }
}
