//! Specifications of the IR core: the JSON format round-trips, the verifier rejects what it must,
//! and op factors give the FLOPs the textbook formulas give.

use shardc_ir::*;

fn f32t(dims: &[u64]) -> Option<TensorType> {
    Some(TensorType::new(DType::F32, dims.to_vec()))
}

fn input(g: &mut Graph, name: &str, dims: &[u64], role: Role) -> ValueId {
    let v = g
        .push(name, Op::Input { init: None }, vec![], f32t(dims))
        .unwrap();
    g.nodes[v.index()].role = role;
    v
}

fn matmul(g: &mut Graph, name: &str, a: ValueId, b: ValueId) -> ValueId {
    let op = Op::DotGeneral {
        lhs_batch: vec![],
        rhs_batch: vec![],
        lhs_contract: vec![1],
        rhs_contract: vec![0],
    };
    g.push(name, op, vec![a, b], None).unwrap()
}

fn small_mlp() -> Graph {
    let mut g = Graph::new("mlp");
    let x = input(&mut g, "x", &[8, 16], Role::Input);
    let w1 = input(&mut g, "fc1.w", &[16, 32], Role::Parameter);
    let w2 = input(&mut g, "fc2.w", &[32, 4], Role::Parameter);
    let h = matmul(&mut g, "fc1.out", x, w1);
    let a = g
        .push(
            "fc1.relu",
            Op::Unary {
                func: UnaryFn::Relu,
            },
            vec![h],
            None,
        )
        .unwrap();
    let y = matmul(&mut g, "fc2.out", a, w2);
    let s = g
        .push(
            "loss",
            Op::Reduce {
                func: ReduceFn::Sum,
                dims: vec![0, 1],
            },
            vec![y],
            None,
        )
        .unwrap();
    g.outputs = vec![y, s];
    g.training.loss = Some(s);
    g.mesh = Some("dp=2,tp=2".parse().unwrap());
    g.annotations.push(Annotation {
        value: "fc1.w".into(),
        sharding: Sharding::from_dims(&[&[], &["tp"]]),
        priority: 0,
    });
    g
}

#[test]
fn json_round_trips_a_graph() {
    let g = small_mlp();
    verify(&g).unwrap();
    let text = to_json(&g);
    let back = from_json(&text).unwrap();
    assert_eq!(back, g);
    assert_eq!(to_json(&back), text, "writing is deterministic");
}

#[test]
fn json_reorders_nodes_given_out_of_topological_order() {
    let text = r#"{"format":"shardc-graph","version":1,"nodes":[
        {"id":7,"name":"y","op":"neg","operands":[3],"type":"f32[2]"},
        {"id":3,"name":"x","op":"input","type":"f32[2]","role":"input"}],"outputs":[7]}"#;
    let err = from_json(text).unwrap_err().to_string();
    // `neg` is spelled as a unary op with func; the bare name is not an op.
    assert!(err.contains("unknown variant `neg`"), "{err}");
    let text = text.replace(r#""op":"neg""#, r#""op":"unary","func":"neg""#);
    let g = from_json(&text).unwrap();
    assert_eq!(g.node(ValueId(0)).name, "x");
    assert_eq!(g.outputs, vec![ValueId(1)]);
}

#[test]
fn verifier_names_the_node_and_the_mismatch() {
    let mut g = small_mlp();
    g.nodes[3].ty = TensorType::new(DType::F32, vec![8, 33]);
    let err = verify(&g).unwrap_err().to_string();
    assert!(
        err.contains("fc1.out") && err.contains("f32[8,32]") && err.contains("f32[8,33]"),
        "{err}"
    );
}

#[test]
fn cycles_and_duplicate_ids_are_errors() {
    let cyc = r#"{"format":"shardc-graph","version":1,"nodes":[
        {"id":0,"name":"a","op":"unary","func":"neg","operands":[1],"type":"f32[2]"},
        {"id":1,"name":"b","op":"unary","func":"neg","operands":[0],"type":"f32[2]"}]}"#;
    assert!(from_json(cyc).unwrap_err().to_string().contains("cycle"));
    let dup = r#"{"format":"shardc-graph","version":1,"nodes":[
        {"id":0,"name":"a","op":"input","type":"f32[2]"},
        {"id":0,"name":"b","op":"input","type":"f32[2]"}]}"#;
    assert!(from_json(dup)
        .unwrap_err()
        .to_string()
        .contains("id 0 is used by"));
}

#[test]
fn dot_flops_are_two_m_n_k() {
    let g = small_mlp();
    let fc1 = g.find("fc1.out").unwrap();
    assert_eq!(g.factors(fc1).flops(), 2 * 8 * 16 * 32);
    let s = GraphStats::of(&g);
    assert_eq!(s.matmul_flops, 2 * 8 * 16 * 32 + 2 * 8 * 32 * 4);
    assert_eq!(s.parameters, 16 * 32 + 32 * 4);
    // relu (8*32) and the loss reduction (8*4) are one flop per point each.
    assert_eq!(s.flops, s.matmul_flops + 8 * 32 + 8 * 4);
}

#[test]
fn grouped_conv_flops_and_factors() {
    let mut g = Graph::new("conv");
    let x = input(&mut g, "x", &[2, 8, 10, 10], Role::Input);
    let k = input(&mut g, "k", &[16, 4, 3, 3], Role::Parameter);
    let mut c = Conv::simple(2, 1, 1);
    c.feature_group_count = 2;
    let y = g.push("y", Op::Convolution(c), vec![x, k], None).unwrap();
    assert_eq!(g.ty(y).dims(), &[2, 16, 10, 10]);
    let f = g.factors(y);
    // 2 * N * Cout * H * W * (Cin / groups) * kh * kw
    assert_eq!(f.flops(), 2 * 2 * 16 * 10 * 10 * 4 * 3 * 3);
    // The input feature dim is [groups, Cin/groups]: the group factor is shared with the output.
    assert_eq!(f.operands[0][1].len(), 2);
    assert_eq!(f.operands[0][1][0], f.result[1][0]);
    assert_eq!(f.factors[f.operands[0][2][0]].kind, FactorKind::Window);
}

#[test]
fn strided_conv_output_extent_follows_xla() {
    let mut g = Graph::new("conv");
    let x = input(&mut g, "x", &[1, 1, 7], Role::Input);
    let k = input(&mut g, "k", &[1, 1, 3], Role::Parameter);
    let mut c = Conv::simple(1, 2, 0);
    c.rhs_dilation = vec![2];
    c.padding = vec![(1, -1)];
    let y = g.push("y", Op::Convolution(c), vec![x, k], None).unwrap();
    // padded 7+1-1=7, dilated kernel 5: (7-5)/2+1 = 2
    assert_eq!(g.ty(y).dims(), &[1, 1, 2]);
}

#[test]
fn reduction_factor_of_a_contracting_dim() {
    let g = small_mlp();
    let f = g.factors(g.find("fc2.out").unwrap());
    let k = f.operands[0][1][0];
    assert_eq!(f.factors[k].kind, FactorKind::Reduction);
    assert_eq!(f.operands[1][0], vec![k]);
    assert!(f.result.iter().all(|d| !d.contains(&k)));
}

#[test]
fn annotations_must_name_values_and_mesh_axes() {
    let mut g = small_mlp();
    g.annotations[0].sharding = Sharding::from_dims(&[&[], &["zz"]]);
    let err = verify(&g).unwrap_err().to_string();
    assert!(
        err.contains("fc1.w") && err.contains("no axis `zz`"),
        "{err}"
    );
}

#[test]
fn scatter_add_indices_are_a_reduction_factor() {
    let mut g = Graph::new("emb");
    let table = input(&mut g, "table", &[10, 4], Role::Parameter);
    let idx = g
        .push(
            "idx",
            Op::Input {
                init: Some(Init::Index { high: 10 }),
            },
            vec![],
            Some(TensorType::new(DType::I32, vec![3, 5])),
        )
        .unwrap();
    let e = g
        .push("emb", Op::Gather { axis: 0 }, vec![table, idx], None)
        .unwrap();
    assert_eq!(g.ty(e).dims(), &[3, 5, 4]);
    let s = g
        .push(
            "grad",
            Op::ScatterAdd { axis: 0 },
            vec![table, idx, e],
            None,
        )
        .unwrap();
    let f = g.factors(s);
    let i0 = f.operands[1][0][0];
    assert_eq!(f.factors[i0].kind, FactorKind::Reduction);
    assert_eq!(f.factors[f.result[0][0]].kind, FactorKind::NeedReplication);
}
