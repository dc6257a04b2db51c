//! `shardc propagate` end to end: a zoo MLP written as JSON, annotated on the command line.

use std::process::Command;

use shardc::ir::zoo::{mlp, MlpConfig};

fn graph_file(dir: &str) -> std::path::PathBuf {
    let g = mlp(&MlpConfig {
        loss: false,
        ..MlpConfig::default()
    })
    .unwrap();
    let dir = std::env::temp_dir().join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mlp.json");
    std::fs::write(&path, shardc::ir::to_json(&g)).unwrap();
    path
}

fn shardc(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shardc"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn propagate_prints_every_value_in_jax_form_with_the_megatron_all_reduce() {
    let f = graph_file("shardc-propagate-jax");
    let (ok, out, err) = shardc(&[
        "propagate",
        f.to_str().unwrap(),
        "--mesh",
        "dp=2,tp=4",
        "--shard",
        "x=P('dp', None)",
        "--shard",
        "layers.0.weight=P(None,'tp')",
        "--shard",
        "layers.1.weight=P('tp',None)",
    ]);
    assert!(ok, "{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn propagate_prints_hlo_and_dtensor_forms_and_explains_a_value() {
    let f = graph_file("shardc-propagate-forms");
    let file = f.to_str().unwrap();
    let base = [
        "propagate",
        file,
        "--mesh",
        "dp=2,tp=4",
        "--shard",
        "x=P('dp',None)",
    ];
    let (ok, hlo, err) = shardc(&[&base[..], &["--format", "hlo"]].concat());
    assert!(ok, "{err}");
    assert!(
        hlo.lines().any(|l| l.starts_with("x ")
            && l.ends_with("  {devices=[2,1,4]<=[8] last_tile_dim_replicate}")),
        "{hlo}"
    );
    let (ok, dt, _) = shardc(&[&base[..], &["--format", "dtensor"]].concat());
    assert!(ok);
    assert!(
        dt.lines()
            .any(|l| l.starts_with("x ") && l.ends_with("  [Shard(0), Replicate()]")),
        "{dt}"
    );
    let (ok, json, _) = shardc(&[&base[..], &["--format", "json"]].concat());
    assert!(ok);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["mesh"], "dp=2,tp=4");
    let (ok, why, _) = shardc(&[&base[..], &["--explain", "layers.0.act"]].concat());
    assert!(ok);
    assert!(
        why.contains("annotated (priority 0)") && why.contains("`x`"),
        "{why}"
    );
}

#[test]
fn propagate_rejects_bad_specs_and_names_clearly() {
    let f = graph_file("shardc-propagate-bad");
    let file = f.to_str().unwrap();
    let (ok, _, err) = shardc(&["propagate", file, "--mesh", "dp=2", "--shard", "x=P(dp)"]);
    assert!(!ok);
    assert!(
        err.contains("--shard `x=P(dp)`") && err.contains("quoted"),
        "{err}"
    );
    let (ok, _, err) = shardc(&[
        "propagate",
        file,
        "--mesh",
        "dp=2",
        "--shard",
        "nope=P('dp')",
    ]);
    assert!(!ok);
    assert!(err.contains("`nope`"), "{err}");
    let (ok, _, err) = shardc(&["propagate", file]);
    assert!(!ok);
    assert!(err.contains("--mesh"), "{err}");
}

#[test]
fn propagate_to_output_lets_propagation_replace_the_roots_annotation_unless_uneven() {
    let dir = std::env::temp_dir().join("shardc-propagate-to-output");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.hlo");
    let hlo =
        "HloModule m\nENTRY e {\n  p = f32[8] parameter(0), sharding={devices=[4]0,1,2,3}\n  \
               n = f32[8] negate(p)\n  s = f32[6] slice(n), slice={[0:6]}\n  \
               ROOT t = (f32[8], f32[6]) tuple(n, s), sharding={{replicated}, {replicated}}\n}\n";
    std::fs::write(&path, hlo).unwrap();
    let file = path.to_str().unwrap();
    // By default the root's sharding is the caller's: `n` and `s` stay replicated.
    let (ok, out, err) = shardc(&["propagate", file, "--format", "hlo"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("n = f32[8] negate(p), sharding={replicated}"),
        "{out}"
    );
    let (ok, out, err) = shardc(&[
        "propagate",
        file,
        "--format",
        "hlo",
        "--propagate-to-output",
    ]);
    assert!(ok, "{err}");
    // `n` (8 over 4 devices) takes `p`'s sharding; `s` (6 over 4) would split unevenly.
    assert!(
        out.contains("n = f32[8] negate(p), sharding={devices=[4]<=[4]}"),
        "{out}"
    );
    assert!(
        out.contains("s = f32[6] slice(n), slice={[0:6]}, sharding={replicated}"),
        "{out}"
    );
}

#[test]
fn propagate_reads_stablehlo_and_prints_shardy_shardings_with_the_users_axis_names() {
    let mlir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/jax/mlp_dropout.mlir"
    );
    let out = crate::common::shardc_ok(&["propagate", mlir, "--format", "sdy"]);
    assert!(
        out.starts_with("sdy.mesh @mesh = <[\"dp\"=2, \"tp\"=4]>\n"),
        "{out}"
    );
    let arg0 = out
        .lines()
        .find(|l| l.starts_with("arg0 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        arg0.ends_with("#sdy.sharding<@mesh, [{\"dp\"}, {}]>"),
        "{arg0}"
    );
    // The hidden activation is split on tp, as the weights' shardings imply.
    let hidden = out
        .lines()
        .find(|l| l.starts_with("v7 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(hidden.ends_with("[{\"dp\"}, {\"tp\"}]>"), "{hidden}");
}
