//! Small graphs and hand-written shardings shared by the partitioner's tests.
#![allow(dead_code)]

pub mod run;

use shardc_ir::{
    BinaryFn, Conv, DType, Graph, Init, Mesh, Op, ReduceFn, Role, Sharding, ShardingAssignment,
    TensorType, UnaryFn, ValueId,
};

pub fn f32t(dims: &[u64]) -> TensorType {
    TensorType::new(DType::F32, dims.to_vec())
}

pub fn input(g: &mut Graph, name: &str, dims: &[u64], role: Role) -> ValueId {
    let v = g
        .push(
            name,
            Op::Input {
                init: Some(Init::Normal { std: 1.0 }),
            },
            vec![],
            Some(f32t(dims)),
        )
        .unwrap();
    g.nodes[v.index()].role = role;
    v
}

/// `a[.., k] · b[k, ..]` contracting the last dim of `a` with the first of `b`.
pub fn matmul(g: &mut Graph, name: &str, a: ValueId, b: ValueId) -> ValueId {
    let ra = g.ty(a).rank();
    g.push(
        name,
        Op::DotGeneral {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![ra - 1],
            rhs_contract: vec![0],
        },
        vec![a, b],
        None,
    )
    .unwrap()
}

pub fn unary(g: &mut Graph, name: &str, func: UnaryFn, x: ValueId) -> ValueId {
    g.push(name, Op::Unary { func }, vec![x], None).unwrap()
}

pub fn binary(g: &mut Graph, name: &str, func: BinaryFn, x: ValueId, y: ValueId) -> ValueId {
    g.push(name, Op::Binary { func }, vec![x, y], None).unwrap()
}

pub fn reduce(g: &mut Graph, name: &str, func: ReduceFn, x: ValueId, dims: &[usize]) -> ValueId {
    g.push(
        name,
        Op::Reduce {
            func,
            dims: dims.to_vec(),
        },
        vec![x],
        None,
    )
    .unwrap()
}

/// A two-layer MLP `gelu(x·w1)·w2` on `x: [batch, hidden]`, `w1: [hidden, ffn]`.
pub fn mlp(batch: u64, hidden: u64, ffn: u64) -> Graph {
    let mut g = Graph::new("mlp");
    let x = input(&mut g, "x", &[batch, hidden], Role::Input);
    let w1 = input(&mut g, "w1", &[hidden, ffn], Role::Parameter);
    let w2 = input(&mut g, "w2", &[ffn, hidden], Role::Parameter);
    let h = matmul(&mut g, "fc1", x, w1);
    let a = unary(&mut g, "act", UnaryFn::Gelu, h);
    let y = matmul(&mut g, "fc2", a, w2);
    g.outputs.push(y);
    g
}

/// A 2-D NCHW convolution `x: [n, c, h, w]` with a `[o, c, k, k]` kernel, stride and padding.
pub fn conv_net(n: u64, c: u64, hw: (u64, u64), o: u64, k: u64, stride: u64, pad: i64) -> Graph {
    let mut g = Graph::new("conv");
    let x = input(&mut g, "x", &[n, c, hw.0, hw.1], Role::Input);
    let w = input(&mut g, "w", &[o, c, k, k], Role::Parameter);
    let y = g
        .push(
            "conv",
            Op::Convolution(Conv::simple(2, stride, pad)),
            vec![x, w],
            None,
        )
        .unwrap();
    let r = unary(&mut g, "relu", UnaryFn::Relu, y);
    g.outputs.push(r);
    g
}

/// Shardings by value name: every value not named is replicated. Specs are one entry per dim,
/// `""` replicated, `"dp"` or `"dp,tp"` split (major first).
pub fn assign(g: &Graph, mesh: &Mesh, specs: &[(&str, &[&str])]) -> ShardingAssignment {
    let mut shardings: Vec<Sharding> = g
        .nodes
        .iter()
        .map(|n| Sharding::replicated(n.ty.rank()))
        .collect();
    for (name, dims) in specs {
        let v = g.find(name).unwrap_or_else(|| panic!("no value `{name}`"));
        let mut s = Sharding::replicated(dims.len());
        for (d, spec) in dims.iter().enumerate() {
            s.dims[d].axes = spec
                .split(',')
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect();
        }
        shardings[v.index()] = s;
    }
    ShardingAssignment {
        mesh: mesh.clone(),
        shardings,
    }
}

/// Marks a value's sharding as a pending sum over `axes`.
pub fn set_partial(a: &mut ShardingAssignment, g: &Graph, name: &str, axes: &[&str]) {
    let v = g.find(name).unwrap();
    a.shardings[v.index()].partial = axes.iter().map(|s| s.to_string()).collect();
}

pub fn mesh(spec: &str) -> Mesh {
    spec.parse().unwrap()
}

/// `(op name, count)` of the collectives in a program.
pub fn collectives(p: &shardc_codegen::SpmdProgram) -> Vec<(&'static str, usize)> {
    p.collective_counts()
}
