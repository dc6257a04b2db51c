//! The sample graphs of the gradient check: one or more per op, exhaustive over `Op`.

use shardc_ir::{
    BinaryFn, CompareDir, Conv, ConvDims, DType, GatherDims, Graph, Init, Literal, Mesh, Op,
    ReduceFn, Role, ScatterDims, TensorType, UnaryFn, ValueId, Window,
};

#[path = "collective_samples.rs"]
mod collective_samples;
#[path = "sort_samples.rs"]
mod sort_samples;
#[path = "window_samples.rs"]
mod window_samples;
#[path = "xla_gather_samples.rs"]
mod xla_gather_samples;

/// Where a sample runs. On a mesh the loss is the sum of every device's loss (the convention
/// of the collectives' adjoints); across pipeline stages each stage's gradient is checked
/// against its own loss.
#[derive(Clone)]
pub(crate) enum Place {
    Single,
    Mesh(Mesh),
    /// Two single-device stages: `programs[0]` sends to `programs[1]`.
    Pipeline,
}

pub(crate) struct Sample {
    pub(crate) what: String,
    pub(crate) programs: Vec<Graph>,
    pub(crate) place: Place,
}

/// Builds one sample program (f64 throughout) that ends in `sum(y * c)` for a fixed random `c`.
struct B {
    g: Graph,
    n: usize,
}

impl B {
    fn new() -> Self {
        B {
            g: Graph::new("sample"),
            n: 0,
        }
    }

    fn name(&mut self, p: &str) -> String {
        self.n += 1;
        format!("{p}{}", self.n)
    }

    fn param_init(&mut self, dims: &[u64], init: Init) -> ValueId {
        let name = self.name("p");
        let v = self
            .g
            .push(
                name,
                Op::Input { init: Some(init) },
                vec![],
                Some(TensorType::new(DType::F64, dims.to_vec())),
            )
            .unwrap();
        self.g.nodes[v.index()].role = Role::Parameter;
        v
    }

    fn p(&mut self, dims: &[u64]) -> ValueId {
        self.param_init(dims, Init::Normal { std: 1.0 })
    }

    /// A parameter in [0.5, 2): for log, sqrt, rsqrt and pow's base.
    fn pos(&mut self, dims: &[u64]) -> ValueId {
        self.param_init(
            dims,
            Init::Uniform {
                low: 0.5,
                high: 2.0,
            },
        )
    }

    fn idx(&mut self, dims: &[u64], high: u64) -> ValueId {
        let name = self.name("i");
        let v = self
            .g
            .push(
                name,
                Op::Input {
                    init: Some(Init::Index { high }),
                },
                vec![],
                Some(TensorType::new(DType::I32, dims.to_vec())),
            )
            .unwrap();
        self.g.nodes[v.index()].role = Role::Input;
        v
    }

    fn op(&mut self, op: Op, operands: Vec<ValueId>, ty: Option<TensorType>) -> ValueId {
        let name = self.name(op.name());
        self.g.push(name, op, operands, ty).unwrap()
    }

    fn f64t(dims: &[u64]) -> TensorType {
        TensorType::new(DType::F64, dims.to_vec())
    }

    /// Finishes with `loss = sum(y * c)`.
    fn finish(mut self, y: ValueId) -> Graph {
        let ty = self.g.ty(y).clone();
        let n = ty.shape.elements() as usize;
        // A fixed pseudo-random weighting, so that every output element matters differently.
        let c: Vec<f64> = (0..n)
            .map(|i| ((i * 7 + 3) % 11) as f64 / 5.0 - 1.0)
            .collect();
        let c = self.op(
            Op::Constant {
                value: Literal::Dense(c),
            },
            vec![],
            Some(ty.clone()),
        );
        let yc = self.op(
            Op::Binary {
                func: BinaryFn::Mul,
            },
            vec![y, c],
            None,
        );
        let dims = (0..ty.rank()).collect();
        let loss = self.op(
            Op::Reduce {
                func: ReduceFn::Sum,
                dims,
            },
            vec![yc],
            None,
        );
        self.g.outputs = vec![loss];
        self.g.training.loss = Some(loss);
        self.g
    }
}

fn single(what: impl Into<String>, g: Graph) -> Sample {
    Sample {
        what: what.into(),
        programs: vec![g],
        place: Place::Single,
    }
}

fn conv_sample(what: &str, x: &[u64], k: &[u64], c: Conv) -> Sample {
    let mut b = B::new();
    let (x, k) = (b.p(x), b.p(k));
    let y = b.op(Op::Convolution(c), vec![x, k], None);
    single(format!("convolution {what}"), b.finish(y))
}

/// Sample graphs exercising `op`'s gradient rule. Exhaustive over `Op`: no wildcard arm.
pub(crate) fn samples(op: &Op) -> Vec<Sample> {
    let name = op.name().to_string();
    match op {
        Op::Input { .. } => {
            let mut b = B::new();
            let p = b.p(&[2, 3]);
            vec![single(name, b.finish(p))]
        }
        Op::Constant { .. } => {
            let mut b = B::new();
            let p = b.p(&[2, 3]);
            let c = b.op(
                Op::Constant {
                    value: Literal::Dense(vec![0.5, -1.0, 2.0, 3.0, -0.25, 1.5]),
                },
                vec![],
                Some(B::f64t(&[2, 3])),
            );
            let y = b.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![p, c],
                None,
            );
            vec![single(name, b.finish(y))]
        }
        Op::Iota { .. } => {
            let mut b = B::new();
            let p = b.p(&[2, 3]);
            let i = b.op(
                Op::Iota { dim: 1 },
                vec![],
                Some(TensorType::new(DType::I32, vec![2, 3])),
            );
            let f = b.op(Op::Convert, vec![i], Some(B::f64t(&[2, 3])));
            let y = b.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![p, f],
                None,
            );
            vec![single(name, b.finish(y))]
        }
        Op::Unary { func } => {
            let mut b = B::new();
            let y = match func {
                UnaryFn::Popcnt => window_samples::int_unary(&mut b, op),
                // Piecewise constant: `x * f(x)`, so the gradient `f(x)` is not all zeros.
                UnaryFn::Floor
                | UnaryFn::Ceil
                | UnaryFn::Round
                | UnaryFn::RoundEven
                | UnaryFn::Sign => window_samples::times_self(&mut b, op),
                UnaryFn::Log | UnaryFn::Sqrt | UnaryFn::Rsqrt | UnaryFn::Log1p => {
                    let x = b.pos(&[2, 3]);
                    b.op(op.clone(), vec![x], None)
                }
                UnaryFn::Not => {
                    let (x, z) = (b.p(&[2, 3]), b.p(&[2, 3]));
                    let lt = b.op(
                        Op::Compare {
                            dir: CompareDir::Lt,
                        },
                        vec![x, z],
                        None,
                    );
                    let not = b.op(op.clone(), vec![lt], None);
                    b.op(Op::Select, vec![not, x, z], None)
                }
                _ => {
                    let x = b.p(&[2, 3]);
                    b.op(op.clone(), vec![x], None)
                }
            };
            vec![single(name, b.finish(y))]
        }
        Op::Binary { func } => {
            let mut b = B::new();
            let y = match func {
                BinaryFn::Pow => {
                    let (x, e) = (b.pos(&[2, 3]), b.p(&[2, 3]));
                    b.op(op.clone(), vec![x, e], None)
                }
                BinaryFn::ShiftLeft
                | BinaryFn::ShiftRightLogical
                | BinaryFn::ShiftRightArithmetic => window_samples::int_binary(&mut b, op),
                BinaryFn::Div | BinaryFn::Rem => {
                    let (x, d) = (b.p(&[2, 3]), b.pos(&[2, 3]));
                    b.op(op.clone(), vec![x, d], None)
                }
                BinaryFn::And | BinaryFn::Or | BinaryFn::Xor => {
                    let (x, z) = (b.p(&[2, 3]), b.p(&[2, 3]));
                    let zero = b.op(
                        Op::Constant {
                            value: Literal::Splat(0.0),
                        },
                        vec![],
                        Some(B::f64t(&[2, 3])),
                    );
                    let c1 = b.op(
                        Op::Compare {
                            dir: CompareDir::Lt,
                        },
                        vec![x, z],
                        None,
                    );
                    let c2 = b.op(
                        Op::Compare {
                            dir: CompareDir::Gt,
                        },
                        vec![x, zero],
                        None,
                    );
                    let both = b.op(op.clone(), vec![c1, c2], None);
                    b.op(Op::Select, vec![both, x, z], None)
                }
                _ => {
                    let (x, z) = (b.p(&[2, 3]), b.p(&[2, 3]));
                    b.op(op.clone(), vec![x, z], None)
                }
            };
            vec![single(format!("binary {name}"), b.finish(y))]
        }
        Op::Compare { .. } | Op::Select => {
            let mut b = B::new();
            let (x, z) = (b.p(&[2, 3]), b.p(&[2, 3]));
            let gt = b.op(
                Op::Compare {
                    dir: CompareDir::Gt,
                },
                vec![x, z],
                None,
            );
            let s = b.op(Op::Select, vec![gt, z, x], None);
            let y = b.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![s, x],
                None,
            );
            vec![single(name, b.finish(y))]
        }
        Op::Convert => {
            // f64 to f64: a narrower dtype would round below the finite-difference step.
            let mut b = B::new();
            let x = b.p(&[2, 3]);
            let y = b.op(Op::Convert, vec![x], Some(B::f64t(&[2, 3])));
            let y = b.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![y, x],
                None,
            );
            vec![single(name, b.finish(y))]
        }
        Op::Copy => {
            let mut b = B::new();
            let x = b.p(&[2, 3]);
            let y = b.op(Op::Copy, vec![x], None);
            let y = b.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![y, x],
                None,
            );
            vec![single(name, b.finish(y))]
        }
        Op::DotGeneral { .. } => {
            let mut b = B::new();
            let (l, r) = (b.p(&[3, 4]), b.p(&[4, 2]));
            let mm = Op::DotGeneral {
                lhs_batch: vec![],
                rhs_batch: vec![],
                lhs_contract: vec![1],
                rhs_contract: vec![0],
            };
            let y = b.op(mm, vec![l, r], None);
            let plain = single("dot_general matmul", b.finish(y));
            // Batch dims in different places, two contracting dims paired out of order.
            let mut b = B::new();
            let (l, r) = (b.p(&[3, 2, 4, 2]), b.p(&[2, 4, 5, 2]));
            let dot = Op::DotGeneral {
                lhs_batch: vec![1],
                rhs_batch: vec![3],
                lhs_contract: vec![3, 2],
                rhs_contract: vec![0, 1],
            };
            let y = b.op(dot, vec![l, r], None);
            vec![plain, single("dot_general batched", b.finish(y))]
        }
        Op::Reduce { .. } => [ReduceFn::Sum, ReduceFn::Max, ReduceFn::Min]
            .into_iter()
            .map(|func| {
                let mut b = B::new();
                let x = b.p(&[3, 4, 2]);
                let y = b.op(
                    Op::Reduce {
                        func,
                        dims: vec![0, 2],
                    },
                    vec![x],
                    None,
                );
                single(format!("reduce {}", func.name()), b.finish(y))
            })
            .collect(),
        Op::Broadcast { .. } => {
            let mut b = B::new();
            let x = b.p(&[3, 1]);
            let y = b.op(
                Op::Broadcast { dims: vec![1, 2] },
                vec![x],
                Some(B::f64t(&[2, 3, 4])),
            );
            let expand = single("broadcast with size-1 expansion", b.finish(y));
            let mut b = B::new();
            let x = b.p(&[4, 3]);
            let y = b.op(
                Op::Broadcast { dims: vec![2, 0] },
                vec![x],
                Some(B::f64t(&[3, 2, 4])),
            );
            vec![
                expand,
                single("broadcast with transposed dims", b.finish(y)),
            ]
        }
        Op::Reshape => {
            let mut b = B::new();
            let x = b.p(&[2, 6]);
            let y = b.op(Op::Reshape, vec![x], Some(B::f64t(&[3, 4])));
            vec![single(name, b.finish(y))]
        }
        Op::Reverse { .. } => {
            let mut b = B::new();
            let x = b.p(&[2, 3, 4]);
            let y = b.op(Op::Reverse { dims: vec![0, 2] }, vec![x], None);
            vec![single(name, b.finish(y))]
        }
        Op::Transpose { .. } => {
            let mut b = B::new();
            let x = b.p(&[2, 3, 4]);
            let y = b.op(
                Op::Transpose {
                    perm: vec![2, 0, 1],
                },
                vec![x],
                None,
            );
            vec![single(name, b.finish(y))]
        }
        Op::Slice { .. } => {
            let mut b = B::new();
            let x = b.p(&[7, 6]);
            let s = Op::Slice {
                start: vec![1, 0],
                limit: vec![7, 5],
                stride: vec![2, 3],
            };
            let y = b.op(s, vec![x], None);
            vec![single(name, b.finish(y))]
        }
        Op::Concatenate { .. } => {
            let mut b = B::new();
            let (x, z, w) = (b.p(&[2, 1]), b.p(&[2, 3]), b.p(&[2, 2]));
            let y = b.op(Op::Concatenate { dim: 1 }, vec![x, z, w], None);
            vec![single(name, b.finish(y))]
        }
        Op::Pad { .. } => {
            let mut b = B::new();
            let x = b.p(&[3, 4]);
            let pad = Op::Pad {
                low: vec![1, -1],
                high: vec![-1, 2],
                interior: vec![1, 0],
                value: 0.5,
            };
            let y = b.op(pad, vec![x], None);
            vec![single(name, b.finish(y))]
        }
        Op::Convolution(_) => {
            let mut strided = Conv::simple(2, 2, 1);
            strided.padding = vec![(1, 0), (2, 1)];
            strided.rhs_dilation = vec![2, 1];
            let mut grouped = Conv::simple(1, 1, 0);
            grouped.lhs_dilation = vec![2];
            grouped.padding = vec![(1, -1)];
            grouped.feature_group_count = 2;
            let mut batch_grouped = Conv::simple(1, 2, 1);
            batch_grouped.batch_group_count = 2;
            let nhwc = Conv {
                dims: ConvDims {
                    input_batch: 0,
                    input_feature: 3,
                    input_spatial: vec![1, 2],
                    kernel_input_feature: 2,
                    kernel_output_feature: 3,
                    kernel_spatial: vec![0, 1],
                    output_batch: 0,
                    output_feature: 3,
                    output_spatial: vec![1, 2],
                },
                window_strides: vec![1, 2],
                padding: vec![(0, 1), (1, 1)],
                lhs_dilation: vec![1, 1],
                rhs_dilation: vec![1, 1],
                feature_group_count: 1,
                batch_group_count: 1,
            };
            vec![
                conv_sample(
                    "strided, padded, rhs-dilated",
                    &[2, 2, 6, 5],
                    &[3, 2, 2, 3],
                    strided,
                ),
                conv_sample(
                    "lhs-dilated, feature groups",
                    &[1, 4, 5],
                    &[6, 2, 3],
                    grouped,
                ),
                conv_sample("batch groups", &[4, 2, 6], &[4, 2, 3], batch_grouped),
                conv_sample("NHWC/HWIO", &[2, 5, 6, 2], &[2, 3, 2, 3], nhwc),
            ]
        }
        Op::Gather { .. } => (0..2)
            .map(|axis| {
                let mut b = B::new();
                let x = b.p(&[5, 4]);
                let i = b.idx(&[2, 3], 4);
                let y = b.op(Op::Gather { axis }, vec![x, i], None);
                single(format!("gather axis {axis}"), b.finish(y))
            })
            .collect(),
        Op::ScatterAdd { .. } => {
            let mut b = B::new();
            let x = b.p(&[5, 3]);
            let i = b.idx(&[6], 5);
            let u = b.p(&[6, 3]);
            let y = b.op(Op::ScatterAdd { axis: 0 }, vec![x, i, u], None);
            let y = b.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![y, y],
                None,
            );
            vec![single(name, b.finish(y))]
        }
        Op::GeneralGather(_) => xla_gather_samples::general_gather(),
        Op::GeneralScatter { .. } => xla_gather_samples::general_scatter(),
        Op::Sort { .. } => sort_samples::sort_samples(),
        Op::BitcastConvert | Op::ReduceWindow { .. } | Op::SelectAndScatter { .. } => {
            window_samples::samples(op)
        }
        Op::DynamicSlice { .. } => {
            let mut b = B::new();
            let x = b.p(&[5, 4]);
            let (s0, s1) = (b.idx(&[], 5), b.idx(&[], 4));
            let y = b.op(
                Op::DynamicSlice { sizes: vec![2, 3] },
                vec![x, s0, s1],
                None,
            );
            vec![single(name, b.finish(y))]
        }
        Op::DynamicUpdateSlice => {
            let mut b = B::new();
            let (x, u) = (b.p(&[5, 4]), b.p(&[2, 3]));
            let (s0, s1) = (b.idx(&[], 5), b.idx(&[], 4));
            let y = b.op(Op::DynamicUpdateSlice, vec![x, u, s0, s1], None);
            let y = b.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![y, y],
                None,
            );
            vec![single(name, b.finish(y))]
        }
        Op::AxisIndex { .. }
        | Op::AllReduce { .. }
        | Op::ReduceScatter { .. }
        | Op::AllGather { .. }
        | Op::AllToAll { .. }
        | Op::CollectivePermute { .. }
        | Op::Send { .. }
        | Op::Recv { .. } => collective_samples::collective_samples(op),
        Op::FullToShard { .. } | Op::ShardToFull { .. } => collective_samples::manual_region(),
    }
}

/// One prototype per op variant (and per unary and binary function).
pub(crate) fn prototypes() -> Vec<Op> {
    let conv = Conv::simple(1, 1, 0);
    let mut ops = vec![
        Op::Input { init: None },
        Op::Constant {
            value: Literal::Splat(0.0),
        },
        Op::Iota { dim: 0 },
        Op::Compare {
            dir: CompareDir::Eq,
        },
        Op::Select,
        Op::Convert,
        Op::Copy,
        Op::DotGeneral {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![],
            rhs_contract: vec![],
        },
        Op::Reduce {
            func: ReduceFn::Sum,
            dims: vec![],
        },
        Op::Broadcast { dims: vec![] },
        Op::Reshape,
        Op::Transpose { perm: vec![] },
        Op::Reverse { dims: vec![] },
        Op::Slice {
            start: vec![],
            limit: vec![],
            stride: vec![],
        },
        Op::Concatenate { dim: 0 },
        Op::Pad {
            low: vec![],
            high: vec![],
            interior: vec![],
            value: 0.0,
        },
        Op::Convolution(conv),
        Op::Gather { axis: 0 },
        Op::ScatterAdd { axis: 0 },
        Op::GeneralGather(GatherDims {
            offset_dims: vec![],
            collapsed_slice_dims: vec![],
            start_index_map: vec![],
            index_vector_dim: 0,
            slice_sizes: vec![],
            operand_batching_dims: vec![],
            start_indices_batching_dims: vec![],
        }),
        Op::GeneralScatter {
            dims: ScatterDims {
                update_window_dims: vec![],
                inserted_window_dims: vec![],
                scatter_dims_to_operand_dims: vec![],
                index_vector_dim: 0,
                input_batching_dims: vec![],
                scatter_indices_batching_dims: vec![],
            },
            combine: None,
        },
        Op::Sort {
            dim: 0,
            descending: false,
            stable: false,
            output: 0,
        },
        Op::DynamicSlice { sizes: vec![] },
        Op::DynamicUpdateSlice,
        Op::BitcastConvert,
        Op::ReduceWindow {
            func: ReduceFn::Max,
            window: Window::simple(vec![], vec![]),
            init: 0.0,
        },
        Op::SelectAndScatter {
            window: Window::simple(vec![], vec![]),
            select: CompareDir::Ge,
            init: 0.0,
        },
        Op::AxisIndex { axes: vec![] },
        Op::AllReduce {
            axes: vec![],
            func: ReduceFn::Sum,
        },
        Op::AllGather {
            dim: 0,
            axes: vec![],
        },
        Op::ReduceScatter {
            dim: 0,
            axes: vec![],
            func: ReduceFn::Sum,
        },
        Op::AllToAll {
            split_dim: 0,
            concat_dim: 0,
            axes: vec![],
        },
        Op::CollectivePermute {
            axes: vec![],
            pairs: vec![],
        },
        Op::Send {
            to_stage: 0,
            tag: String::new(),
        },
        Op::Recv {
            from_stage: 0,
            tag: String::new(),
        },
        Op::FullToShard { dims: vec![] },
        Op::ShardToFull { dims: vec![] },
    ];
    ops.extend(UnaryFn::ALL.map(|func| Op::Unary { func }));
    ops.extend(BinaryFn::ALL.map(|func| Op::Binary { func }));
    ops
}
