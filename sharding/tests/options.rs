//! Propagation options: interface values propagation may shard (XLA's
//! `allow_spmd_sharding_propagation_to_{parameters,output}`) and shard-as groups.

use shardc_ir::{Annotation, BinaryFn, DType, Graph, Mesh, Op, Sharding, TensorType, UnaryFn};
use shardc_sharding::{propagate_with, PropagateOptions, Reason, ShardedGraph, ShardingError};

fn input(g: &mut Graph, name: &str, dims: &[u64]) {
    let ty = TensorType::new(DType::F32, dims.to_vec());
    g.push(name, Op::Input { init: None }, vec![], Some(ty))
        .unwrap();
}

fn ann(value: &str, dims: &[&[&str]]) -> Annotation {
    Annotation {
        value: value.into(),
        sharding: Sharding::from_dims(dims),
        priority: 0,
    }
}

fn of<'a>(sg: &'a ShardedGraph, g: &Graph, name: &str) -> &'a Sharding {
    sg.sharding(g.name_index()[name])
}

/// `a + b` on four devices, then its first three elements (which four shards split unevenly).
fn add_then_slice() -> Graph {
    let mut g = Graph::new("interface");
    input(&mut g, "a", &[8]);
    input(&mut g, "b", &[8]);
    let (a, b) = (g.name_index()["a"], g.name_index()["b"]);
    let sum = g
        .push(
            "sum",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![a, b],
            None,
        )
        .unwrap();
    let slice = Op::Slice {
        start: vec![0],
        limit: vec![3],
        stride: vec![1],
    };
    let s = g.push("head", slice, vec![sum], None).unwrap();
    g.outputs = vec![sum, s];
    g
}

#[test]
fn an_annotated_parameter_stays_as_given_unless_propagation_is_free_to_shard_it() {
    let g = add_then_slice();
    let mesh: Mesh = "x=4".parse().unwrap();
    let anns = [ann("a", &[&[]]), ann("sum", &[&["x"]])];
    let fixed = propagate_with(&g, &mesh, &anns, &PropagateOptions::default()).unwrap();
    assert_eq!(of(&fixed, &g, "a"), &Sharding::from_dims(&[&[]]));
    let free = PropagateOptions {
        free: vec!["a".into()],
        ..Default::default()
    };
    let sg = propagate_with(&g, &mesh, &anns, &free).unwrap();
    assert_eq!(of(&sg, &g, "a"), &Sharding::from_dims(&[&["x"]]));
}

#[test]
fn a_fixed_unannotated_parameter_stays_replicated() {
    let g = add_then_slice();
    let mesh: Mesh = "x=4".parse().unwrap();
    let anns = [ann("sum", &[&["x"]])];
    let open = propagate_with(&g, &mesh, &anns, &PropagateOptions::default()).unwrap();
    assert_eq!(of(&open, &g, "a"), &Sharding::from_dims(&[&["x"]]));
    let fixed = PropagateOptions {
        fixed: vec!["a".into()],
        ..Default::default()
    };
    let sg = propagate_with(&g, &mesh, &anns, &fixed).unwrap();
    assert_eq!(of(&sg, &g, "a"), &Sharding::from_dims(&[&[]]));
    assert_eq!(of(&sg, &g, "b"), &Sharding::from_dims(&[&["x"]]));
    let both = PropagateOptions {
        fixed: vec!["a".into()],
        free: vec!["a".into()],
        ..Default::default()
    };
    assert!(propagate_with(&g, &mesh, &anns, &both).is_err());
}

#[test]
fn a_free_output_split_unevenly_is_replicated_instead() {
    let g = add_then_slice();
    let mesh: Mesh = "x=4".parse().unwrap();
    let anns = [ann("sum", &[&["x"]])];
    // Inside the program an uneven split is fine (shards are padded).
    let inner = propagate_with(&g, &mesh, &anns, &PropagateOptions::default()).unwrap();
    assert_eq!(of(&inner, &g, "head"), &Sharding::from_dims(&[&["x"]]));
    let free = PropagateOptions {
        free: vec!["head".into(), "sum".into()],
        ..Default::default()
    };
    let sg = propagate_with(&g, &mesh, &anns, &free).unwrap();
    let head = g.name_index()["head"];
    assert_eq!(sg.sharding(head), &Sharding::from_dims(&[&[]]));
    assert_eq!(sg.reason(head), &Reason::Uneven);
    // 8 splits evenly over 4: the free `sum` keeps its sharding.
    assert_eq!(of(&sg, &g, "sum"), &Sharding::from_dims(&[&["x"]]));
}

#[test]
fn members_of_a_shard_as_group_take_one_sharding() {
    let mut g = Graph::new("groups");
    input(&mut g, "p", &[8, 6]);
    input(&mut g, "q", &[8, 6]);
    let q = g.name_index()["q"];
    let n = g
        .push("n", Op::Unary { func: UnaryFn::Neg }, vec![q], None)
        .unwrap();
    g.outputs = vec![n];
    let mesh: Mesh = "x=2,y=2".parse().unwrap();
    let options = PropagateOptions {
        groups: vec![vec!["p".into(), "n".into()]],
        ..Default::default()
    };
    let anns = [ann("p", &[&["x"], &["y"]])];
    let sg = propagate_with(&g, &mesh, &anns, &options).unwrap();
    let want = Sharding::from_dims(&[&["x"], &["y"]]);
    assert_eq!(of(&sg, &g, "n"), &want);
    // ...and the group's sharding flows on through `n`'s op to `q`.
    assert_eq!(of(&sg, &g, "q"), &want);
    assert!(matches!(sg.reason(n), Reason::ShardAs { from } if from == &[g.name_index()["p"]]));
    let explained = sg.explain(n).unwrap().chain.join("\n");
    assert!(explained.contains("shard-as group with `p`"), "{explained}");
}

#[test]
fn a_shard_group_of_mixed_ranks_is_an_error_naming_the_value() {
    let mut g = Graph::new("groups");
    input(&mut g, "p", &[8, 6]);
    input(&mut g, "v", &[8]);
    let options = PropagateOptions {
        groups: vec![vec!["p".into(), "v".into()]],
        ..Default::default()
    };
    let mesh: Mesh = "x=2".parse().unwrap();
    match propagate_with(&g, &mesh, &[], &options) {
        Err(ShardingError::Invalid { value, message }) => {
            assert_eq!(value, "v");
            assert!(message.contains("mixes ranks"), "{message}");
        }
        other => panic!("expected an error, got {:?}", other.map(|_| ())),
    }
    let unknown = PropagateOptions {
        free: vec!["nope".into()],
        ..Default::default()
    };
    assert!(matches!(
        propagate_with(&g, &mesh, &[], &unknown),
        Err(ShardingError::UnknownValue(v)) if v == "nope"
    ));
}

#[test]
fn a_scatter_keeps_its_operands_sharding_on_an_indexed_dim() {
    use shardc_ir::{BinaryFn, ScatterDims};
    let mut g = Graph::new("scatter");
    input(&mut g, "x", &[8, 4]);
    let idx_ty = TensorType::new(DType::I32, vec![3, 1]);
    g.push("idx", Op::Input { init: None }, vec![], Some(idx_ty))
        .unwrap();
    input(&mut g, "upd", &[3, 4]);
    let ids = g.name_index();
    let (x, idx, upd) = (ids["x"], ids["idx"], ids["upd"]);
    let op = Op::GeneralScatter {
        dims: ScatterDims {
            update_window_dims: vec![1],
            inserted_window_dims: vec![0],
            scatter_dims_to_operand_dims: vec![0],
            index_vector_dim: 1,
            input_batching_dims: vec![],
            scatter_indices_batching_dims: vec![],
        },
        combine: Some(BinaryFn::Add),
    };
    let s = g.push("s", op, vec![x, idx, upd], None).unwrap();
    g.outputs = vec![s];
    let mesh: Mesh = "x=2".parse().unwrap();
    let sg = propagate_with(
        &g,
        &mesh,
        &[ann("x", &[&["x"], &[]])],
        &PropagateOptions::default(),
    )
    .unwrap();
    // GSPMD's reading: each device applies the updates that land in its rows.
    assert_eq!(sg.sharding(s), &Sharding::from_dims(&[&["x"], &[]]));
    // The partitioner's (the op's own factors): the operand is gathered first.
    let comms = shardc_sharding::required_collectives(&g, &sg.assignment).unwrap();
    assert!(
        comms.iter().any(|c| c.op.name() == "all_gather"),
        "{:?}",
        comms.iter().map(|c| c.op.name()).collect::<Vec<_>>()
    );
}
