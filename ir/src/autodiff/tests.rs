//! Structural tests of autodiff (numeric gradient checks live in `runtime/tests/gradcheck.rs`).

use crate::{
    grad, BinaryFn, DType, Graph, GraphStats, Init, Op, Phase, ReduceFn, Role, TensorType, UnaryFn,
    ValueId,
};

fn f32t(dims: &[u64]) -> TensorType {
    TensorType::new(DType::F32, dims.to_vec())
}

fn param(g: &mut Graph, name: &str, dims: &[u64]) -> ValueId {
    let v = g
        .push(
            name,
            Op::Input {
                init: Some(Init::Normal { std: 0.1 }),
            },
            vec![],
            Some(f32t(dims)),
        )
        .unwrap();
    g.nodes[v.index()].role = Role::Parameter;
    v
}

fn input(g: &mut Graph, name: &str, ty: TensorType) -> ValueId {
    let v = g
        .push(name, Op::Input { init: None }, vec![], Some(ty))
        .unwrap();
    g.nodes[v.index()].role = Role::Input;
    v
}

fn matmul(g: &mut Graph, name: &str, a: ValueId, b: ValueId) -> ValueId {
    let la = g.ty(a).rank() - 1;
    let op = Op::DotGeneral {
        lhs_batch: vec![],
        rhs_batch: vec![],
        lhs_contract: vec![la],
        rhs_contract: vec![0],
    };
    g.push(name, op, vec![a, b], None).unwrap()
}

fn sum_all(g: &mut Graph, name: &str, x: ValueId) -> ValueId {
    let dims = (0..g.ty(x).rank()).collect();
    g.push(
        name,
        Op::Reduce {
            func: ReduceFn::Sum,
            dims,
        },
        vec![x],
        None,
    )
    .unwrap()
}

/// `layers.{0,1}.fc` (relu MLP layers) on an input `[4, 8]`, loss = sum of squares.
fn mlp() -> (Graph, ValueId) {
    let mut g = Graph::new("mlp");
    let x = input(&mut g, "x", f32t(&[4, 8]));
    let mut h = x;
    for l in 0..2 {
        let w = param(&mut g, &format!("layers.{l}.fc.w"), &[8, 8]);
        let y = matmul(&mut g, &format!("layers.{l}.fc"), h, w);
        h = g
            .push(
                format!("layers.{l}.act"),
                Op::Unary {
                    func: UnaryFn::Relu,
                },
                vec![y],
                None,
            )
            .unwrap();
    }
    let sq = g
        .push(
            "sq",
            Op::Binary {
                func: BinaryFn::Mul,
            },
            vec![h, h],
            None,
        )
        .unwrap();
    let loss = sum_all(&mut g, "loss", sq);
    g.outputs.push(loss);
    (g, loss)
}

#[test]
fn every_parameter_gets_a_gradient_of_its_shape_recorded_and_output() {
    let (g, loss) = mlp();
    let t = grad(&g, loss).unwrap();
    crate::verify(&t).unwrap();
    assert_eq!(t.training.loss, Some(loss));
    let params: Vec<ValueId> = g
        .ids()
        .filter(|&v| g.node(v).role == Role::Parameter)
        .collect();
    assert_eq!(t.training.gradients.len(), params.len());
    for &(p, gv) in &t.training.gradients {
        assert_eq!(t.ty(p), t.ty(gv));
        assert_eq!(t.node(gv).role, Role::Gradient);
        assert_eq!(t.node(gv).name, format!("{}.grad", t.node(p).name));
        assert!(t.outputs.contains(&gv));
    }
    // The forward part is unchanged.
    assert_eq!(&t.nodes[..g.len()], &g.nodes[..]);
}

#[test]
fn weight_gradient_dots_are_phase_w_and_input_gradient_dots_phase_b() {
    let (g, loss) = mlp();
    let t = grad(&g, loss).unwrap();
    let by_name = |n: &str| t.node(t.find(n).unwrap_or_else(|| panic!("no node {n}")));
    // The dot that forms dW of layer 1 only feeds the parameter gradient: W.
    assert_eq!(by_name("layers.1.fc.w.grad").phase, Phase::BackwardWeight);
    assert_eq!(by_name("layers.0.fc.w.grad").phase, Phase::BackwardWeight);
    // The input gradient of layer 1 feeds layer 0's backward: B.
    assert_eq!(by_name("layers.1.fc.grad_lhs").phase, Phase::BackwardInput);
    // Layer 0's input is data with no parameter behind it: no gradient is formed for it.
    assert!(t.find("layers.0.fc.grad_lhs").is_none());
    // Backward nodes carry their forward node's layer.
    assert_eq!(by_name("layers.1.fc.grad_lhs").layer(), Some("layers.1"));
    let stats = GraphStats::of(&t);
    assert!(stats.phases[1] > 0 && stats.phases[2] > 0);
}

#[test]
fn training_matmul_flops_are_three_times_the_forward_when_every_operand_needs_a_gradient() {
    // x is a parameter here, so every dot needs both operand gradients.
    let mut g = Graph::new("chain");
    let x = param(&mut g, "x", &[4, 8]);
    let w = param(&mut g, "layers.0.w", &[8, 16]);
    let y = matmul(&mut g, "layers.0.mm", x, w);
    let loss = sum_all(&mut g, "loss", y);
    let fwd = GraphStats::of(&g).matmul_flops;
    let t = grad(&g, loss).unwrap();
    assert_eq!(GraphStats::of(&t).matmul_flops, 3 * fwd);
}

#[test]
fn fan_out_is_accumulated_with_add() {
    let mut g = Graph::new("shared");
    let w = param(&mut g, "w", &[3]);
    let a = g
        .push("a", Op::Unary { func: UnaryFn::Exp }, vec![w], None)
        .unwrap();
    let b = g
        .push("b", Op::Unary { func: UnaryFn::Sin }, vec![w], None)
        .unwrap();
    let s = g
        .push(
            "s",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![a, b],
            None,
        )
        .unwrap();
    let loss = sum_all(&mut g, "loss", s);
    let t = grad(&g, loss).unwrap();
    let gw = t.training.gradients[0].1;
    assert_eq!(t.node(gw).name, "w.grad");
    assert_eq!(
        t.node(gw).op,
        Op::Binary {
            func: BinaryFn::Add
        }
    );
}

#[test]
fn an_identity_adjoint_shared_with_another_value_is_copied_for_the_parameter() {
    // loss = sum(w + x): the adjoint of the add goes to both w and x unchanged.
    let mut g = Graph::new("bias");
    let x = param(&mut g, "x", &[3]);
    let w = param(&mut g, "w", &[3]);
    let s = g
        .push(
            "s",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![x, w],
            None,
        )
        .unwrap();
    let loss = sum_all(&mut g, "loss", s);
    let t = grad(&g, loss).unwrap();
    let (gx, gw) = (t.training.gradients[0].1, t.training.gradients[1].1);
    assert_ne!(gx, gw);
    assert_eq!(t.node(gw).op, Op::Copy);
    assert_eq!(t.node(gx).op, Op::Copy);
}

#[test]
fn an_unused_parameter_gets_a_zero_gradient() {
    let (mut g, loss) = mlp();
    param(&mut g, "unused", &[2]);
    let t = grad(&g, loss).unwrap();
    let (_, gu) = *t.training.gradients.last().unwrap();
    assert_eq!(t.node(gu).name, "unused.grad");
    assert!(matches!(t.node(gu).op, Op::Constant { .. }));
}

#[test]
fn integer_indices_carry_no_gradient_and_the_table_gets_a_scatter_add() {
    let mut g = Graph::new("embed");
    let table = param(&mut g, "wte", &[10, 4]);
    let ids = input(&mut g, "ids", TensorType::new(DType::I32, vec![6]));
    let e = g
        .push("embed", Op::Gather { axis: 0 }, vec![table, ids], None)
        .unwrap();
    let loss = sum_all(&mut g, "loss", e);
    let t = grad(&g, loss).unwrap();
    let gv = t.training.gradients[0].1;
    assert!(matches!(t.node(gv).op, Op::ScatterAdd { axis: 0 }));
    assert_eq!(t.node(gv).phase, Phase::BackwardWeight);
}

#[test]
fn a_loss_that_is_not_a_scalar_is_rejected_naming_it() {
    let mut g = Graph::new("bad");
    let w = param(&mut g, "w", &[3]);
    let e = grad(&g, w).unwrap_err().to_string();
    assert!(e.contains("`w`") && e.contains("scalar"), "{e}");
}

#[test]
fn a_loss_without_parameters_is_rejected_naming_it() {
    let mut g = Graph::new("bad");
    let x = input(&mut g, "x", f32t(&[3]));
    let loss = sum_all(&mut g, "total", x);
    let e = grad(&g, loss).unwrap_err().to_string();
    assert!(
        e.contains("`total`") && e.contains("does not depend on any parameter"),
        "{e}"
    );
}

#[test]
fn a_loss_reached_only_through_integers_has_no_parameter_dependence() {
    let mut g = Graph::new("bad");
    let w = param(&mut g, "w", &[3]);
    let i = g
        .push(
            "i",
            Op::Convert,
            vec![w],
            Some(TensorType::new(DType::I32, vec![3])),
        )
        .unwrap();
    let f = g.push("f", Op::Convert, vec![i], Some(f32t(&[3]))).unwrap();
    let loss = sum_all(&mut g, "loss", f);
    assert!(grad(&g, loss).is_err());
}

#[test]
fn differentiating_a_training_graph_again_is_rejected() {
    let (g, loss) = mlp();
    let t = grad(&g, loss).unwrap();
    let e = grad(&t, loss).unwrap_err().to_string();
    assert!(e.contains("already has"), "{e}");
}
