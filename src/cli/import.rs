//! `shardc import FILE.hlo -o FILE.json`: reads XLA HLO text into a shardc graph.

use std::path::PathBuf;

use clap::Args;

use super::CliError;

/// Import an XLA HLO text module (e.g. from `jax.jit(f).lower(...).as_text(dialect="hlo")`).
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The HLO text file.
    pub file: PathBuf,
    /// Where to write the graph (shardc JSON); standard output when omitted.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(args: ImportArgs) -> Result<(), CliError> {
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
        })
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let _ = std::fs::remove_file(hlo);
    }
}
