use super::*;
use crate::{verify, DType, GraphStats, Init, Mesh, Op, Role, Sharding};

/// Narayanan et al. SC21: P = 12·l·h²·(1 + 13/(12h) + (V+s)/(12·l·h)).
fn narayanan_parameters(c: &GptConfig) -> f64 {
    let (l, h, v, s) = (
        c.layers as f64,
        c.hidden as f64,
        c.vocab as f64,
        c.seq as f64,
    );
    12.0 * l * h * h * (1.0 + 13.0 / (12.0 * h) + (v + s) / (12.0 * l * h))
}

/// REFERENCES.md: forward matmul FLOPs 24·B·s·l·h²·(1 + s/(6h) + V/(12·l·h)).
fn forward_matmul_flops(c: &GptConfig) -> f64 {
    let (b, l, h, v, s) = (
        c.batch as f64,
        c.layers as f64,
        c.hidden as f64,
        c.vocab as f64,
        c.seq as f64,
    );
    24.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h))
}

#[test]
fn gpt3_175b_has_between_174_and_176_billion_parameters() {
    let g = gpt(&GptConfig::gpt3_175b(1)).unwrap();
    let p = GraphStats::of(&g).parameters as f64;
    assert!((174e9..=176e9).contains(&p), "{p}");
}

#[test]
fn gpt3_175b_forward_matmul_flops_are_within_one_percent_of_the_formula() {
    let cfg = GptConfig::gpt3_175b(8);
    let g = gpt(&cfg).unwrap();
    let flops = GraphStats::of(&g).matmul_flops as f64;
    let expected = forward_matmul_flops(&cfg);
    assert!(
        (flops / expected - 1.0).abs() < 0.01,
        "{flops} vs {expected}"
    );
}

#[test]
fn gpt_parameters_are_the_formula_plus_the_final_layer_norm() {
    // The formula omits the final layer norm's gain and bias (2h).
    let cfg = GptConfig::tiny();
    let g = gpt(&cfg).unwrap();
    let p = GraphStats::of(&g).parameters as f64;
    assert_eq!(
        p,
        narayanan_parameters(&cfg).round() + 2.0 * cfg.hidden as f64
    );
}

#[test]
fn gpt_matmul_flops_equal_the_formula_exactly_for_a_small_model() {
    let cfg = GptConfig {
        layers: 3,
        hidden: 24,
        heads: 4,
        seq: 12,
        vocab: 50,
        batch: 3,
        dtype: DType::F32,
        shardings: GptShardings::None,
    };
    let g = gpt(&cfg).unwrap();
    assert_eq!(
        GraphStats::of(&g).matmul_flops as f64,
        forward_matmul_flops(&cfg)
    );
}

#[test]
fn gpt_names_layers_and_marks_roles_inits_and_the_loss() {
    let g = gpt(&GptConfig::tiny()).unwrap();
    verify(&g).unwrap();
    for name in [
        "layers.1.ln1.out",
        "layers.1.attn.qkv",
        "layers.1.attn.scores",
        "layers.1.attn.weights",
        "layers.1.attn.context",
        "layers.1.attn.out",
        "layers.1.mlp.fc1",
        "layers.1.mlp.gelu",
        "layers.1.mlp.fc2",
        "final_ln.out",
        "logits",
    ] {
        assert!(g.find(name).is_some(), "missing {name}");
    }
    let node = |n: &str| g.node(g.find(n).unwrap());
    assert_eq!(node("tokens").role, Role::Input);
    assert_eq!(node("tokens").ty.to_string(), "i32[2,8]");
    assert_eq!(
        node("tokens").op,
        Op::Input {
            init: Some(Init::Index { high: 32 })
        }
    );
    assert_eq!(node("labels").role, Role::Input);
    assert_eq!(node("layers.0.attn.qkv.weight").role, Role::Parameter);
    assert_eq!(
        node("layers.0.attn.qkv.weight").op,
        Op::Input {
            init: Some(Init::Normal { std: 0.02 })
        }
    );
    assert_eq!(
        node("layers.0.ln1.gain").op,
        Op::Input {
            init: Some(Init::Fill { value: 1.0 })
        }
    );
    assert_eq!(
        node("layers.0.mlp.fc1.bias").op,
        Op::Input {
            init: Some(Init::Fill { value: 0.0 })
        }
    );
    assert_eq!(node("layers.1.attn.weights").ty.to_string(), "f32[2,2,8,8]");
    assert_eq!(node("logits").ty.to_string(), "f32[2,8,32]");
    let loss = g.training.loss.unwrap();
    assert_eq!(g.ty(loss).rank(), 0);
    assert_eq!(g.outputs, vec![loss]);
}

#[test]
fn gpt_logits_reuse_the_token_embedding() {
    let g = gpt(&GptConfig::tiny()).unwrap();
    let logits = g.node(g.find("logits").unwrap());
    assert_eq!(logits.operands[1], g.find("embed.tokens").unwrap());
}

#[test]
fn megatron_shardings_annotate_batch_on_dp_and_weights_on_tp() {
    let mesh: Mesh = "dp=2,tp=4".parse().unwrap();
    let cfg = GptConfig {
        shardings: GptShardings::Megatron(mesh.clone()),
        ..GptConfig::tiny()
    };
    let g = gpt(&cfg).unwrap();
    verify(&g).unwrap();
    assert_eq!(g.mesh.as_ref(), Some(&mesh));
    let find = |n: &str| {
        g.annotations
            .iter()
            .find(|a| a.value == n)
            .map(|a| a.sharding.clone())
    };
    assert_eq!(find("tokens"), Some(Sharding::from_dims(&[&["dp"], &[]])));
    assert_eq!(find("labels"), Some(Sharding::from_dims(&[&["dp"], &[]])));
    assert_eq!(
        find("layers.1.attn.qkv.weight"),
        Some(Sharding::from_dims(&[&[], &["tp"]]))
    );
    assert_eq!(
        find("layers.1.attn.qkv.bias"),
        Some(Sharding::from_dims(&[&["tp"]]))
    );
    assert_eq!(
        find("layers.1.attn.out.weight"),
        Some(Sharding::from_dims(&[&["tp"], &[]]))
    );
    assert_eq!(
        find("layers.0.mlp.fc1.weight"),
        Some(Sharding::from_dims(&[&[], &["tp"]]))
    );
    assert_eq!(
        find("layers.0.mlp.fc1.bias"),
        Some(Sharding::from_dims(&[&["tp"]]))
    );
    assert_eq!(
        find("layers.0.mlp.fc2.weight"),
        Some(Sharding::from_dims(&[&["tp"], &[]]))
    );
    // Megatron's vocabulary-parallel embedding (and so output layer).
    assert_eq!(
        find("embed.tokens"),
        Some(Sharding::from_dims(&[&["tp"], &[]]))
    );
    // Everything else is left to propagation.
    assert_eq!(find("layers.0.attn.out.bias"), None);
    assert_eq!(find("layers.0.attn_residual"), None);
    assert_eq!(g.annotations.len(), 2 + 1 + 6 * 2);
}

#[test]
fn sequence_parallel_shardings_split_the_residual_stream_on_the_sequence() {
    let mesh: Mesh = "dp=2,tp=4".parse().unwrap();
    let cfg = GptConfig {
        shardings: GptShardings::MegatronSequenceParallel(mesh),
        ..GptConfig::tiny()
    };
    let g = gpt(&cfg).unwrap();
    verify(&g).unwrap();
    let seq = Sharding::from_dims(&[&["dp"], &["tp"], &[]]);
    for v in [
        "embed.out",
        "layers.0.attn_residual",
        "layers.1.mlp_residual",
    ] {
        let a = g.annotations.iter().find(|a| a.value == v);
        assert_eq!(a.map(|a| &a.sharding), Some(&seq), "{v}");
    }
    // Per layer also the layer norms' outputs (sequence-split), the column-parallel results
    // (split on columns, so their inputs are gathered) and the row-parallel results (pending
    // over tp, so they are reduce-scattered); the final layer norm's output and the logits.
    for (v, pending) in [
        ("layers.1.ln2.out", false),
        ("layers.1.attn.qkv.matmul", false),
        ("layers.1.mlp.fc2.matmul", true),
    ] {
        let a = g.annotations.iter().find(|a| a.value == v).expect(v);
        assert_eq!(!a.sharding.partial.is_empty(), pending, "{v}");
    }
    assert_eq!(g.annotations.len(), 2 + 1 + 6 * 2 + 1 + 8 * 2 + 2);
    let no_tp = GptConfig {
        shardings: GptShardings::MegatronSequenceParallel("dp=2".parse().unwrap()),
        ..GptConfig::tiny()
    };
    let e = gpt(&no_tp).unwrap_err().to_string();
    assert!(e.contains("needs an axis `tp`"), "{e}");
}

#[test]
fn dropout_takes_bool_keep_masks_as_inputs_and_rejects_a_rate_outside_0_1() {
    let g = gpt_with_dropout(&GptConfig::tiny(), 0.1, &mut |_, _| {}).unwrap();
    verify(&g).unwrap();
    let keeps: Vec<&str> = g
        .nodes
        .iter()
        .filter(|n| n.name.ends_with(".keep"))
        .map(|n| n.name.as_str())
        .collect();
    // The embedding, then per layer the attention weights and the two block outputs.
    assert_eq!(keeps.len(), 1 + 3 * 2, "{keeps:?}");
    let keep = g.node(g.find("layers.0.attn.weights.dropout.keep").unwrap());
    assert_eq!(keep.ty.to_string(), "bool[2,2,8,8]");
    assert_eq!(keep.role, Role::Input);
    assert_eq!(
        keep.op,
        Op::Input {
            init: Some(Init::Uniform {
                low: 0.9,
                high: 1.9
            })
        }
    );
    // Without dropout the graph is the plain one.
    let plain = gpt_with_dropout(&GptConfig::tiny(), 0.0, &mut |_, _| {}).unwrap();
    assert_eq!(plain.len(), gpt(&GptConfig::tiny()).unwrap().len());
    for bad in [1.0, -0.1, f64::NAN] {
        let e = gpt_with_dropout(&GptConfig::tiny(), bad, &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("`dropout`"), "{e}");
    }
}

#[test]
fn megatron_shardings_without_dp_or_tp_axes_are_rejected() {
    let cfg = GptConfig {
        shardings: GptShardings::Megatron("x=2".parse().unwrap()),
        ..GptConfig::tiny()
    };
    let e = gpt(&cfg).unwrap_err().to_string();
    assert!(e.contains("`mesh`") && e.contains("`dp` or `tp`"), "{e}");
}

#[test]
fn gpt_config_errors_name_the_field() {
    let bad = GptConfig {
        heads: 3,
        ..GptConfig::tiny()
    };
    let e = gpt(&bad).unwrap_err().to_string();
    assert!(
        e.contains("`heads`") && e.contains("must divide hidden (16)"),
        "{e}"
    );
    let zero = GptConfig {
        layers: 0,
        ..GptConfig::tiny()
    };
    assert!(gpt(&zero)
        .unwrap_err()
        .to_string()
        .contains("`layers` must be at least 1"));
    let int = GptConfig {
        dtype: DType::I32,
        ..GptConfig::tiny()
    };
    assert!(gpt(&int).unwrap_err().to_string().contains("`dtype`"));
}

#[test]
fn overflowing_model_sizes_are_errors_not_panics() {
    let huge = GptConfig {
        batch: 1 << 40,
        seq: 1 << 20,
        vocab: 1 << 20,
        ..GptConfig::tiny()
    };
    let e = gpt(&huge).unwrap_err().to_string();
    assert!(e.contains("overflows"), "{e}");
    let wide = ResNetConfig {
        width: u64::MAX / 2,
        stages: vec![1, 1, 1],
        ..ResNetConfig::default()
    };
    assert!(resnet(&wide).unwrap_err().to_string().contains("overflows"));
}

#[test]
fn gpt_build_reports_progress_per_layer() {
    let mut seen = Vec::new();
    gpt_with_progress(&GptConfig::tiny(), &mut |d, n| seen.push((d, n))).unwrap();
    assert_eq!(seen, vec![(1, 2), (2, 2)]);
}

#[test]
fn mlp_has_weights_and_biases_per_layer_and_a_scalar_loss() {
    let cfg = MlpConfig::default();
    let g = mlp(&cfg).unwrap();
    verify(&g).unwrap();
    // 16·32 + 32 + 32·8 + 8
    assert_eq!(GraphStats::of(&g).parameters, 16 * 32 + 32 + 32 * 8 + 8);
    // Two dots: 2·8·16·32 + 2·8·32·8.
    assert_eq!(
        GraphStats::of(&g).matmul_flops,
        2 * 8 * 16 * 32 + 2 * 8 * 32 * 8
    );
    assert!(g.find("layers.0.act").is_some());
    assert!(
        g.find("layers.1.act").is_none(),
        "no activation after the last layer"
    );
    assert_eq!(g.ty(g.training.loss.unwrap()).rank(), 0);
    let no_loss = mlp(&MlpConfig { loss: false, ..cfg }).unwrap();
    assert_eq!(no_loss.training.loss, None);
    assert_eq!(no_loss.ty(no_loss.outputs[0]).to_string(), "f32[8,8]");
    assert!(mlp(&MlpConfig {
        sizes: vec![4],
        ..MlpConfig::default()
    })
    .unwrap_err()
    .to_string()
    .contains("`sizes`"));
}

#[test]
fn resnet_halves_the_image_per_stage_and_pools_to_a_classifier() {
    let cfg = ResNetConfig {
        stages: vec![1, 2, 1],
        ..ResNetConfig::default()
    };
    let g = resnet(&cfg).unwrap();
    verify(&g).unwrap();
    let ty = |n: &str| g.ty(g.find(n).unwrap()).to_string();
    assert_eq!(ty("stem.relu"), "f32[2,8,16,16]");
    assert_eq!(ty("stages.0.blocks.0.relu2"), "f32[2,8,16,16]");
    assert_eq!(ty("stages.1.blocks.0.relu2"), "f32[2,16,8,8]");
    assert_eq!(ty("stages.1.blocks.1.relu2"), "f32[2,16,8,8]");
    assert_eq!(ty("stages.2.blocks.0.relu2"), "f32[2,32,4,4]");
    assert_eq!(ty("stages.1.blocks.0.shortcut.weight"), "f32[16,8,1,1]");
    assert!(g.find("stages.1.blocks.1.shortcut").is_none());
    assert_eq!(ty("head.logits"), "f32[2,10]");
    // Parameters by hand: conv weights O·I·k·k plus O biases.
    let conv = |o: u64, i: u64, k: u64| o * i * k * k + o;
    let expected = conv(8, 3, 3)
        + 2 * conv(8, 8, 3)
        + conv(16, 8, 3)
        + conv(16, 16, 3)
        + conv(16, 8, 1)
        + 2 * conv(16, 16, 3)
        + conv(32, 16, 3)
        + conv(32, 32, 3)
        + conv(32, 16, 1)
        + 32 * 10
        + 10;
    assert_eq!(GraphStats::of(&g).parameters, expected);
}

#[test]
fn moe_routes_tokens_to_expert_major_weights() {
    let cfg = MoeConfig::default();
    let g = moe(&cfg).unwrap();
    verify(&g).unwrap();
    let ty = |n: &str| g.ty(g.find(n).unwrap()).to_string();
    assert_eq!(ty("experts.w1"), "f32[4,8,16]");
    assert_eq!(ty("experts.w2"), "f32[4,16,8]");
    assert_eq!(ty("experts.dispatch"), "f32[4,16,8]");
    assert_eq!(ty("route.mask"), "f32[16,4]");
    assert_eq!(ty("experts.combine"), "f32[16,8]");
    // The expert dim of the expert matmuls is a batch (pass-through) factor: sharding it over
    // devices needs no communication inside the experts.
    let fc1 = g.find("experts.fc1").unwrap();
    let f = g.factors(fc1);
    let e = f.result[0][0];
    assert_eq!(f.factors[e].size, 4);
    assert_eq!(f.factors[e].kind, crate::FactorKind::PassThrough);
    assert_eq!(g.ty(g.training.loss.unwrap()).rank(), 0);
    // Router H·E plus experts 2·E·H·F.
    assert_eq!(GraphStats::of(&g).parameters, 8 * 4 + 2 * 4 * 8 * 16);
}

#[test]
fn zoo_graphs_survive_a_json_round_trip() {
    let mesh: Mesh = "dp=2,tp=2".parse().unwrap();
    for g in [
        gpt(&GptConfig {
            shardings: GptShardings::Megatron(mesh),
            ..GptConfig::tiny()
        })
        .unwrap(),
        mlp(&MlpConfig::default()).unwrap(),
        resnet(&ResNetConfig::default()).unwrap(),
        moe(&MoeConfig::default()).unwrap(),
    ] {
        let back = crate::from_json(&crate::to_json(&g)).unwrap();
        assert_eq!(back, g, "{}", g.name);
    }
}
