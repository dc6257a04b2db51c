//! The HLO that JAX emitted for sharded models (`tools/gen_jax_hlo.py`, committed under
//! `tests/data/jax`) imports, before and after XLA's sharding propagation.

use std::path::PathBuf;

use shardc_ir::hlo::{import, print_with_shardings, HloImport};
use shardc_ir::sharding::{HloSharding, Sharding};
use shardc_ir::{verify, Op};

const MODELS: [&str; 4] = ["megatron_mlp", "transformer_block", "mlp_grad_dp", "mlp_dp"];

fn read(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/jax")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn load(name: &str) -> HloImport {
    let imp = import(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    verify(&imp.graph).unwrap();
    imp
}

fn annotation<'a>(imp: &'a HloImport, value: &str) -> &'a Sharding {
    &imp.graph
        .annotations
        .iter()
        .find(|a| a.value == value)
        .unwrap_or_else(|| panic!("no annotation on {value}"))
        .sharding
}

#[test]
fn every_jax_module_imports_before_and_after_propagation() {
    for m in MODELS {
        let before = load(&format!("{m}.hlo"));
        let after = load(&format!("{m}.after_propagation.hlo"));
        // After propagation XLA has sharded every ENTRY instruction but a few scalar constants
        // (reduce inits); each sharding became an annotation on one 2x4 mesh.
        let entry = after.module.entry().unwrap();
        for inst in &entry.instructions {
            if inst.attr("sharding").is_none() {
                assert_eq!(
                    inst.opcode, "constant",
                    "{m}: {} lacks a sharding",
                    inst.name
                );
            }
        }
        let nodes_with = after.shardings.iter().filter(|s| s.is_some()).count();
        assert_eq!(
            after.graph.mesh.as_ref().unwrap().to_string(),
            "x0=2,x1=4",
            "{m}"
        );
        assert!(after.notes.is_empty(), "{m}: {:?}", after.notes);
        assert_eq!(after.graph.annotations.len(), nodes_with, "{m}");
        // The same computation: same outputs' types, and the before graph's user shardings.
        let outs = |i: &HloImport| -> Vec<String> {
            i.graph
                .outputs
                .iter()
                .map(|&v| i.graph.ty(v).to_string())
                .collect()
        };
        assert_eq!(outs(&before), outs(&after), "{m}");
        assert!(before.shardings.iter().flatten().count() >= 2, "{m}");
        println!(
            "{m}: {} nodes before propagation ({} annotated), {} annotated after",
            before.graph.len(),
            before.graph.annotations.len(),
            nodes_with
        );
    }
}

#[test]
fn megatron_mlp_shardings_read_as_the_user_wrote_them() {
    let imp = load("megatron_mlp.hlo");
    // x: P('dp', None); w1 column-split P(None, 'tp'); w2 row-split P('tp', None) on the 2x4
    // mesh that the importer names x0 (dp), x1 (tp).
    assert_eq!(annotation(&imp, "x.1").to_jax().unwrap(), "P('x0', None)");
    assert_eq!(annotation(&imp, "w1.1").to_jax().unwrap(), "P(None, 'x1')");
    assert_eq!(annotation(&imp, "w2.1").to_jax().unwrap(), "P('x1', None)");
    // with_sharding_constraint's custom-call is a copy carrying P('dp', 'tp').
    let v = imp.value("sharding_constraint.1").unwrap();
    assert_eq!(imp.graph.node(v).op, Op::Copy);
    assert_eq!(
        annotation(&imp, "sharding_constraint.1").to_jax().unwrap(),
        "P('x0', 'x1')"
    );
    // The ROOT get-tuple-element's out_sharding lands on the value it returns.
    assert_eq!(
        annotation(&imp, "dot_general.3").to_jax().unwrap(),
        "P('x0', None)"
    );
    // XLA's answer: the hidden activation is split (dp, tp); the output (dp, replicated).
    let after = load("megatron_mlp.after_propagation.hlo");
    assert_eq!(
        annotation(&after, "tanh.1").to_jax().unwrap(),
        "P('x0', 'x1')"
    );
    assert_eq!(
        annotation(&after, "dot_general.3").to_jax().unwrap(),
        "P('x0', None)"
    );
}

#[test]
fn transformer_calls_are_inlined() {
    let imp = load("transformer_block.hlo");
    let v = imp
        .value("jit_tril_.1")
        .expect("the call is the callee's root value");
    assert_eq!(imp.graph.node(v).name, "jit_tril_.1/select_n.1");
    assert!(imp.graph.find("jit__where_.1/select_n.3").is_some());
}

#[test]
fn after_propagation_dump_prints_back_line_for_line() {
    for m in MODELS {
        let text = read(&format!("{m}.after_propagation.hlo"));
        let imp = import(&text).unwrap();
        let s = imp.shardings.clone();
        let printed = print_with_shardings(&imp, &s).unwrap();
        let entry_lines = |t: &str| -> Vec<String> {
            let e = &t[t.find("ENTRY").unwrap()..];
            e.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        };
        let (a, b) = (entry_lines(&printed), entry_lines(&text));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{m}");
        }
        assert_eq!(a.len(), b.len(), "{m}");
    }
}

#[test]
fn pre_propagation_module_prints_with_xla_shardings() {
    let before = import(&read("megatron_mlp.hlo")).unwrap();
    let after = import(&read("megatron_mlp.after_propagation.hlo")).unwrap();
    // Give each node of the pre-propagation module XLA's sharding of the same name.
    let s: Vec<Option<HloSharding>> = before
        .graph
        .nodes
        .iter()
        .map(|n| {
            let name = if n.name == "sharding_constraint.1" {
                "copy"
            } else {
                &n.name
            };
            after.shardings[after.value(name).unwrap().index()].clone()
        })
        .collect();
    let printed = print_with_shardings(&before, &s).unwrap();
    insta::assert_snapshot!(printed);
}

#[test]
fn truncated_or_mangled_text_gives_errors_not_panics() {
    let text = read("megatron_mlp.hlo");
    let mut errors = 0;
    for (i, _) in text.char_indices() {
        errors += usize::from(import(&text[..i]).is_err());
        // A non-ASCII space and a stray byte at every position.
        let mangled = format!("{}\u{a0}é{}", &text[..i], &text[i..]);
        let _ = import(&mangled);
    }
    assert!(
        errors > text.len() / 2,
        "most prefixes are incomplete modules"
    );
    for s in [
        "{devices=[2,1,4]<=[8] last_tile_dim_replicate}",
        "{{replicated}, {devices=[1,4] 0,1,2,3 metadata={op_name=\"a\\\"é\"}}}",
    ] {
        for (i, _) in s.char_indices() {
            assert!(HloSharding::parse(&s[..i]).is_err(), "{}", &s[..i]);
            let _ = HloSharding::parse(&format!("{}\u{a0}é{}", &s[..i], &s[i..]));
        }
    }
    for (i, _) in "P(('dp', 'tp'), unreduced={'x'})".char_indices() {
        let s = "P(('dp', 'tp'), unreduced={'x'})";
        assert!(Sharding::parse_jax(&s[..i], 2).is_err());
        let _ = Sharding::parse_jax(&format!("{}\u{a0}é{}", &s[..i], &s[i..]), 2);
    }
}

/// `shard_map`: the region's boundary becomes `full_to_shard`/`shard_to_full` on the mesh
/// axes the boundary shardings name, the body (a called computation) is inlined on local
/// shapes, and the `psum`'s replica groups `{0,1,2,3},{4,5,6,7}` become the `tp` axis (x1).
#[test]
fn shard_map_becomes_a_manual_region() {
    use shardc_ir::manual::manual_values;
    for file in [
        "shard_map_matmul.hlo",
        "shard_map_matmul.after_propagation.hlo",
    ] {
        let imp = load(file);
        let g = &imp.graph;
        assert_eq!(g.mesh.as_ref().unwrap().to_string(), "x0=2,x1=4", "{file}");
        let x = imp.value("shard_map.8").unwrap();
        assert_eq!(
            g.node(x).op,
            Op::FullToShard {
                dims: vec![vec!["x0".into()], vec!["x1".into()]]
            },
            "{file}"
        );
        assert_eq!(g.ty(x).to_string(), "f32[4,4]");
        let w = imp.value("shard_map.10").unwrap();
        assert_eq!(
            g.node(w).op,
            Op::FullToShard {
                dims: vec![vec!["x1".into()], vec![]]
            }
        );
        let out = imp.value("shard_map.13").unwrap();
        assert_eq!(
            g.node(out).op,
            Op::ShardToFull {
                dims: vec![vec!["x0".into()], vec![]]
            }
        );
        let psum = g
            .ids()
            .find(|&v| matches!(g.node(v).op, Op::AllReduce { .. }))
            .unwrap();
        assert_eq!(
            g.node(psum).op,
            Op::AllReduce {
                axes: vec!["x1".into()],
                func: shardc_ir::ReduceFn::Sum
            }
        );
        let m = manual_values(g);
        assert!(m[x.index()] && m[w.index()] && m[psum.index()] && !m[out.index()]);
    }
}

/// Groups that are not the devices of a set of mesh axes are refused, naming them.
#[test]
fn replica_groups_off_the_mesh_axes_are_refused() {
    let text = read("shard_map_matmul.hlo").replace(
        "replica_groups={{0,1,2,3},{4,5,6,7}}",
        "replica_groups={{0,1,4,5},{2,3,6,7}}",
    );
    let e = import(&text).unwrap_err().to_string();
    assert!(
        e.contains("not the devices of a set of mesh axes") && e.contains("[0, 1, 4, 5]"),
        "{e}"
    );
}
