//! XLA's general gather and scatter in the IR: shape rules and their checks, the graph format and
//! dump, factors, gradients, and what the HLO importer makes of XLA's gathers and scatters.

use shardc_ir::hlo::{import, Lowered};
use shardc_ir::{
    dump, from_json, grad, to_json, BinaryFn, DType, FactorKind, GatherDims, Graph, Op, ReduceFn,
    Role, ScatterDims, TensorType, ValueId,
};

fn input(g: &mut Graph, name: &str, dtype: DType, dims: &[u64]) -> ValueId {
    let v = g
        .push(
            name,
            Op::Input { init: None },
            vec![],
            Some(TensorType::new(dtype, dims.to_vec())),
        )
        .unwrap();
    g.nodes[v.index()].role = Role::Input;
    v
}

/// The corpus's `GatherExplicitBatchDimsFromOperandToResult` gather.
fn batched_gather() -> GatherDims {
    GatherDims {
        offset_dims: vec![3],
        collapsed_slice_dims: vec![1],
        start_index_map: vec![1, 3],
        index_vector_dim: 3,
        slice_sizes: vec![1, 1, 1, 4],
        operand_batching_dims: vec![0, 2],
        start_indices_batching_dims: vec![1, 0],
    }
}

/// The corpus's `ScatterExplicitBatchDimsFromUpdatesToResult` scatter.
fn batched_scatter() -> ScatterDims {
    ScatterDims {
        update_window_dims: vec![3],
        inserted_window_dims: vec![1],
        scatter_dims_to_operand_dims: vec![1, 3],
        index_vector_dim: 3,
        input_batching_dims: vec![0, 2],
        scatter_indices_batching_dims: vec![1, 0],
    }
}

fn kinds(f: &shardc_ir::OpFactors, dims: &[Vec<usize>]) -> Vec<FactorKind> {
    dims.iter().map(|d| f.factors[d[0]].kind).collect()
}

#[test]
fn gather_and_scatter_shapes_follow_xla_with_batching_dims() {
    let mut g = Graph::new("g");
    let x = input(&mut g, "x", DType::F32, &[10, 3, 14, 4]);
    let i = input(&mut g, "i", DType::I32, &[14, 10, 6, 2]);
    let y = g
        .push("y", Op::GeneralGather(batched_gather()), vec![x, i], None)
        .unwrap();
    assert_eq!(g.ty(y).to_string(), "f32[14,10,6,4]");
    let x2 = input(&mut g, "x2", DType::F32, &[10, 6, 14, 4]);
    let s = Op::GeneralScatter {
        dims: batched_scatter(),
        combine: Some(BinaryFn::Min),
    };
    let s = g.push("s", s, vec![x2, i, y], None).unwrap();
    assert_eq!(g.ty(s).to_string(), "f32[10,6,14,4]");
}

#[test]
fn invalid_dimension_numbers_say_what_xla_expects() {
    let mut g = Graph::new("g");
    let x = input(&mut g, "x", DType::F32, &[10, 3, 14, 4]);
    let i = input(&mut g, "i", DType::I32, &[14, 10, 6, 2]);
    let cases: Vec<(GatherDims, &str)> = vec![
        (
            GatherDims {
                offset_dims: vec![],
                ..batched_gather()
            },
            "offset_dims [] must have one entry per operand dim",
        ),
        (
            GatherDims {
                start_index_map: vec![1],
                ..batched_gather()
            },
            "start_index_map [1] has 1 entries, the index vector (dim 3 of the indices) has 2",
        ),
        (
            GatherDims {
                start_indices_batching_dims: vec![0, 1],
                ..batched_gather()
            },
            "operand batching dim 0 (size 10) and indices batching dim 0 (size 14) differ",
        ),
        (
            GatherDims {
                slice_sizes: vec![1, 2, 1, 4],
                ..batched_gather()
            },
            "collapsed_slice_dims contains dim 1 whose slice size is 2",
        ),
        (
            GatherDims {
                start_index_map: vec![1, 0],
                ..batched_gather()
            },
            "start_index_map indexes operand batching dim 0",
        ),
        (
            GatherDims {
                index_vector_dim: 5,
                ..batched_gather()
            },
            "index_vector_dim 5 is out of range",
        ),
    ];
    for (d, want) in cases {
        let err = g
            .push("y", Op::GeneralGather(d), vec![x, i], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    }
    let u = input(&mut g, "u", DType::F32, &[14, 10, 5, 4]);
    let s = Op::GeneralScatter {
        dims: batched_scatter(),
        combine: None,
    };
    let x2 = input(&mut g, "x2", DType::F32, &[10, 6, 14, 4]);
    let err = g
        .push("s", s, vec![x2, i, u], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("updates scatter dim 2 (size 5) differs from indices dim 2 (size 6)"),
        "{err}"
    );
}

#[test]
fn general_ops_round_trip_through_json_and_dump_their_dimension_numbers() {
    let mut g = Graph::new("g");
    let x = input(&mut g, "x", DType::F32, &[10, 3, 14, 4]);
    let i = input(&mut g, "i", DType::I32, &[14, 10, 6, 2]);
    let y = g
        .push("y", Op::GeneralGather(batched_gather()), vec![x, i], None)
        .unwrap();
    let x2 = input(&mut g, "x2", DType::F32, &[10, 6, 14, 4]);
    let s = Op::GeneralScatter {
        dims: batched_scatter(),
        combine: None,
    };
    let s = g.push("s", s, vec![x2, i, y], None).unwrap();
    g.outputs = vec![s];
    let back = from_json(&to_json(&g)).unwrap();
    assert_eq!(back.nodes, g.nodes);
    let text = dump(&g);
    assert!(
        text.contains("general_gather(%0, %1) collapsed_slice_dims=[1] index_vector_dim=3"),
        "{text}"
    );
    // A replace scatter has no `combine`.
    assert!(
        text.contains("general_scatter(%3, %1, %2) dims={") && !text.contains("combine"),
        "{text}"
    );
}

#[test]
fn gather_factors_pass_batching_whole_slice_and_index_batch_dims() {
    let mut g = Graph::new("g");
    let x = input(&mut g, "x", DType::F32, &[10, 3, 14, 4]);
    let i = input(&mut g, "i", DType::I32, &[14, 10, 6, 2]);
    let y = g
        .push("y", Op::GeneralGather(batched_gather()), vec![x, i], None)
        .unwrap();
    let f = g.factors(y);
    use FactorKind::{NeedReplication as R, PassThrough as P};
    // Operand: batching 0 and 2 pass, collapsed 1 does not, 3 is indexed but sliced whole.
    assert_eq!(kinds(&f, &f.operands[0]), vec![P, R, P, P]);
    assert_eq!(kinds(&f, &f.operands[1]), vec![P, P, P, R]);
    assert_eq!(kinds(&f, &f.result), vec![P, P, P, P]);
    // Operand batching dim 0 pairs with indices dim 1, which is result dim 1.
    assert_eq!(f.operands[0][0], f.operands[1][1]);
    assert_eq!(f.operands[0][0], f.result[1]);
    assert_eq!(f.operands[0][3], f.result[3]);
    assert_eq!(f.flops(), 0);
}

#[test]
fn scatter_index_batch_dims_are_a_reduction_only_for_add() {
    let mut g = Graph::new("g");
    let x = input(&mut g, "x", DType::F32, &[8, 6]);
    let i = input(&mut g, "i", DType::I32, &[5, 1]);
    let u = input(&mut g, "u", DType::F32, &[5, 6]);
    let dims = ScatterDims {
        update_window_dims: vec![1],
        inserted_window_dims: vec![0],
        scatter_dims_to_operand_dims: vec![0],
        index_vector_dim: 1,
        input_batching_dims: vec![],
        scatter_indices_batching_dims: vec![],
    };
    use FactorKind::{NeedReplication as R, PassThrough as P, Reduction as S};
    for (combine, kind) in [
        (Some(BinaryFn::Add), S),
        (None, R),
        (Some(BinaryFn::Max), R),
    ] {
        let op = Op::GeneralScatter {
            dims: dims.clone(),
            combine,
        };
        let s = g.push("s", op, vec![x, i, u], None).unwrap();
        let f = g.factors(s);
        assert_eq!(kinds(&f, &f.operands[2]), vec![kind, P], "{combine:?}");
        assert_eq!(kinds(&f, &f.result), vec![R, P]);
        assert_eq!(f.operands[2][1], f.result[1]);
    }
}

#[test]
fn scatters_that_combine_with_max_have_no_gradient() {
    let mut g = Graph::new("g");
    let x = g
        .push(
            "x",
            Op::Input { init: None },
            vec![],
            Some(TensorType::new(DType::F32, vec![4])),
        )
        .unwrap();
    g.nodes[x.index()].role = Role::Parameter;
    let i = input(&mut g, "i", DType::I32, &[2]);
    let u = input(&mut g, "u", DType::F32, &[2]);
    let dims = ScatterDims {
        update_window_dims: vec![],
        inserted_window_dims: vec![0],
        scatter_dims_to_operand_dims: vec![0],
        index_vector_dim: 1,
        input_batching_dims: vec![],
        scatter_indices_batching_dims: vec![],
    };
    let op = Op::GeneralScatter {
        dims,
        combine: Some(BinaryFn::Max),
    };
    let s = g.push("s", op, vec![x, i, u], None).unwrap();
    let sum = Op::Reduce {
        func: ReduceFn::Sum,
        dims: vec![0],
    };
    let l = g.push("loss", sum, vec![s], None).unwrap();
    g.outputs = vec![l];
    g.training.loss = Some(l);
    let err = grad(&g, l).unwrap_err().to_string();
    assert!(err.contains("no gradient for scatter with max"), "{err}");
}

const ADD: &str =
    "add {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n";

fn module(body: &str, comps: &str) -> String {
    format!("HloModule m\n\n{comps}\nENTRY e {{\n{body}\n}}\n")
}

#[test]
fn importer_keeps_takes_and_lowers_other_gathers_to_the_general_form() {
    let take = module(
        "  x = f32[5,3] parameter(0)\n  i = s32[4] parameter(1)\n  ROOT g = f32[4,3] gather(x, i), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={0}, index_vector_dim=1, slice_sizes={1,3}",
        "",
    );
    let imp = import(&take).unwrap();
    let g = imp.value("g").unwrap();
    assert_eq!(imp.graph.node(g).op, Op::Gather { axis: 0 });
    // A partial slice is no take.
    let partial = take
        .replace("f32[4,3] gather", "f32[4,2] gather")
        .replace("{1,3}", "{1,2}");
    let imp = import(&partial).unwrap();
    let g = imp.value("g").unwrap();
    assert!(matches!(&imp.graph.node(g).op, Op::GeneralGather(d) if d.slice_sizes == [1, 2]));
}

#[test]
fn importer_reads_scatter_combiners_and_names_what_it_cannot() {
    let body = "  x = f32[5,3] parameter(0)\n  i = s32[4,1] parameter(1)\n  u = f32[4,3] parameter(2)\n  ROOT s = f32[5,3] scatter(x, i, u), to_apply=c, update_window_dims={1}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1";
    let comp = |root: &str| match root {
        // XLA's replace: the ROOT is the second parameter itself.
        "replace" => {
            "c {\n  a = f32[] parameter(0)\n  ROOT b = f32[] parameter(1)\n}\n".to_string()
        }
        _ => format!(
            "c {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT r = {root}\n}}\n"
        ),
    };
    // A take's adjoint too stays general: XLA skips windows that do not fit, scatter_add clamps.
    let imp = import(&module(body, &ADD.replace("add {", "c {"))).unwrap();
    let s = imp.value("s").unwrap();
    assert!(matches!(
        imp.graph.node(s).op,
        Op::GeneralScatter {
            combine: Some(BinaryFn::Add),
            ..
        }
    ));
    for (root, want) in [
        ("replace", None),
        ("f32[] multiply(a, b)", Some(BinaryFn::Mul)),
        ("f32[] maximum(a, b)", Some(BinaryFn::Max)),
    ] {
        let imp = import(&module(body, &comp(root))).unwrap();
        let s = imp.value("s").unwrap();
        assert!(
            matches!(&imp.graph.node(s).op, Op::GeneralScatter { combine, .. } if *combine == want),
            "{root}"
        );
    }
    let err = import(&module(body, &comp("f32[] subtract(a, b)")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`s`") && err.contains("scatter to_apply computation `c`"),
        "{err}"
    );
    let variadic = module(
        "  x = f32[5] parameter(0)\n  y = f32[5] parameter(1)\n  i = s32[2] parameter(2)\n  u = f32[2] parameter(3)\n  v = f32[2] parameter(4)\n  ROOT s = (f32[5], f32[5]) scatter(x, y, i, u, v), to_apply=c, update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1",
        &comp("replace"),
    );
    let err = import(&variadic).unwrap_err().to_string();
    assert!(
        err.contains("`s`") && err.contains("ROOT must be a tuple of 2"),
        "{err}"
    );
    // A variadic scatter whose to_apply combines each operand with its own update is one
    // scatter per operand, sharing the indices.
    let pairwise = "c {\n  a0 = f32[] parameter(0)\n  a1 = f32[] parameter(1)\n  b0 = f32[] parameter(2)\n  b1 = f32[] parameter(3)\n  s0 = f32[] add(a0, b0)\n  ROOT t = (f32[], f32[]) tuple(s0, b1)\n}\n";
    let imp = import(&variadic.replace(&comp("replace"), pairwise)).unwrap();
    let Some(Lowered::Tuple(parts)) = imp.values.get("s") else {
        panic!("`s` is a tuple of scatters")
    };
    let combines: Vec<Option<BinaryFn>> = parts
        .iter()
        .map(|p| match p {
            Lowered::Node(v) => match &imp.graph.node(*v).op {
                Op::GeneralScatter { combine, .. } => *combine,
                op => panic!("{op:?}"),
            },
            Lowered::Tuple(_) => panic!("nested"),
        })
        .collect();
    assert_eq!(combines, [Some(BinaryFn::Add), None]);
}

#[test]
fn importer_turns_iota_index_elements_into_batching_dims() {
    // The corpus's parallel gather: both index elements are iotas along the batch dims.
    let body = "  p = s32[8,4,2,2] parameter(0)\n  a = s32[1,8,4] iota(), iota_dimension=1\n  b = s32[1,8,4] iota(), iota_dimension=2\n  c = s32[2,8,4] concatenate(a, b), dimensions={0}\n  ROOT g = s32[8,4,2,2] gather(p, c), offset_dims={2,3}, collapsed_slice_dims={0,1}, start_index_map={0,1}, index_vector_dim=0, slice_sizes={1,1,2,2}";
    let imp = import(&module(body, "")).unwrap();
    let g = imp.value("g").unwrap();
    let Op::GeneralGather(d) = &imp.graph.node(g).op else {
        panic!("{}", dump(&imp.graph));
    };
    assert_eq!(d.operand_batching_dims, vec![0, 1]);
    assert_eq!(d.start_indices_batching_dims, vec![1, 2]);
    assert!(d.collapsed_slice_dims.is_empty() && d.start_index_map.is_empty());
    let idx = imp.graph.node(g).operands[1];
    assert_eq!(imp.graph.ty(idx).dims(), &[0, 8, 4]);
    // Only the first element is an iota: the second stays an index.
    let mixed = body.replace(
        "  b = s32[1,8,4] iota(), iota_dimension=2\n",
        "  b = s32[1,8,4] parameter(1)\n",
    );
    let imp = import(&module(&mixed, "")).unwrap();
    let g = imp.value("g").unwrap();
    let Op::GeneralGather(d) = &imp.graph.node(g).op else {
        panic!("{}", dump(&imp.graph));
    };
    assert_eq!(
        (d.operand_batching_dims.clone(), d.start_index_map.clone()),
        (vec![0], vec![1])
    );
}
