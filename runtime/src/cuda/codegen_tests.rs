//! The CUDA C generator without a GPU: every op kind generates or says why not, fusion picks
//! the right nodes, and the generated sources are well-formed C++ (checked with the host C++
//! compiler's syntax check against a shim of the few CUDA built-ins they use, where one is
//! installed).

use super::*;
use shardc_ir::{Graph, Node, Op, Role, TensorType};

fn input(g: &mut Graph, name: &str, ty: TensorType) -> ValueId {
    let v = g
        .push(name, Op::Input { init: None }, vec![], Some(ty))
        .unwrap();
    g.nodes[v.index()].role = Role::Input;
    v
}

fn all_needed(g: &Graph) -> (Vec<bool>, Vec<bool>) {
    let n = g.nodes.len();
    let mut wanted = vec![false; n];
    for o in &g.outputs {
        wanted[o.index()] = true;
    }
    (vec![true; n], wanted)
}

/// The shim that lets `c++ -fsyntax-only` parse generated CUDA C: CUDA's qualifiers and the
/// built-ins the prelude uses, declared for the host.
const SHIM: &str = r#"#include <cmath>
#define __device__
#define __forceinline__ inline
#define __global__
#define __shared__ static
#define asm(...) (void)0
struct shim_dim3 { unsigned int x, y, z; };
static shim_dim3 blockIdx, blockDim, threadIdx, gridDim;
inline void __syncthreads() {}
inline float __uint_as_float(unsigned int u) { return (float)u; }
inline unsigned int __float_as_uint(float f) { return (unsigned int)f; }
using std::exp; using std::log; using std::tanh; using std::sqrt; using std::sin; using std::cos;
using std::pow; using std::fabs; using std::fmax; using std::fmin;
"#;

/// Runs the host C++ compiler's syntax check over `sources`; `None` when there is no compiler.
fn syntax_check(sources: &[String]) -> Option<Result<(), String>> {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let probe = std::process::Command::new(&cxx).arg("--version").output();
    if probe.map_or(true, |o| !o.status.success()) {
        eprintln!("skipped the C++ syntax check: no `{cxx}` compiler (set CXX)");
        return None;
    }
    // One translation unit for all (a compiler start per source is slow): each source in its
    // own namespace, without `extern "C"` (which would make their entry points one function).
    let mut unit = SHIM.to_string();
    for (k, s) in sources.iter().enumerate() {
        unit.push_str(&format!(
            "namespace k{k} {{\n{}}}\n",
            s.replace("extern \"C\" ", "")
        ));
    }
    let path = std::env::temp_dir().join(format!(
        "shardc-cuda-codegen-{}-{}.cpp",
        std::process::id(),
        sources.len()
    ));
    std::fs::write(&path, &unit).ok()?;
    let out = std::process::Command::new(&cxx)
        .args(["-fsyntax-only", "-std=c++17", "-x", "c++"])
        .arg(&path)
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&path);
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}\n--- sources ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            sources.join("\n")
        ))
    })
}

#[test]
fn the_syntax_check_rejects_malformed_sources() {
    let broken = format!("__global__ void {ENTRY}(u64 n) {{ n = ; }}");
    if let Some(r) = syntax_check(&[broken]) {
        assert!(r.is_err());
    }
}

/// One node of `op` over inputs of `types` (result type inferred), alone in a graph.
fn single(op: Op, types: &[TensorType]) -> Option<(Graph, ValueId)> {
    let mut g = Graph::new("one");
    let ins: Vec<ValueId> = types
        .iter()
        .enumerate()
        .map(|(i, t)| input(&mut g, &format!("in{i}"), t.clone()))
        .collect();
    let r = g.push("r", op, ins, None).ok()?;
    g.outputs.push(r);
    Some((g, r))
}

fn elementwise_ops() -> Vec<(Op, usize)> {
    let mut ops: Vec<(Op, usize)> = UnaryFn::ALL
        .iter()
        .map(|&func| (Op::Unary { func }, 1))
        .collect();
    ops.extend(BinaryFn::ALL.iter().map(|&func| (Op::Binary { func }, 2)));
    for dir in [
        CompareDir::Eq,
        CompareDir::Ne,
        CompareDir::Lt,
        CompareDir::Le,
        CompareDir::Gt,
        CompareDir::Ge,
    ] {
        ops.push((Op::Compare { dir }, 2));
    }
    ops
}

#[test]
fn every_elementwise_op_and_dtype_the_ir_accepts_generates_a_kernel() {
    let mut sources = Vec::new();
    let mut accepted = 0;
    for (op, arity) in elementwise_ops() {
        for d in DType::ALL {
            let ty = TensorType::new(d, vec![5]);
            // Only what the IR's type rules accept reaches the executor.
            let Some((g, r)) = single(op.clone(), &vec![ty; arity]) else {
                continue;
            };
            accepted += 1;
            let f = fused_at(&g, r, &vec![None; g.nodes.len()]);
            match elementwise_source(&g, &f) {
                Ok(s) => {
                    assert!(s.contains(&format!("__global__ void {ENTRY}(")), "{s}");
                    assert_eq!(
                        s.matches("in0[i]").count() + s.matches("in1[i]").count(),
                        arity,
                        "{s}"
                    );
                    sources.push(s);
                }
                // The IR accepts it but there is no kernel: the reason names the op.
                Err(Unsupported(why)) => assert!(
                    why.contains(op.name()) || why.contains("no kernel"),
                    "{why}"
                ),
            }
        }
    }
    assert!(accepted > 40, "only {accepted} op/dtype pairs type-checked");
    // Convert between every pair of dtypes, and select.
    for from in DType::ALL {
        for to in DType::ALL {
            let mut g = Graph::new("convert");
            let x = input(&mut g, "x", TensorType::new(from, vec![3]));
            let Ok(c) = g.push(
                "c",
                Op::Convert,
                vec![x],
                Some(TensorType::new(to, vec![3])),
            ) else {
                continue;
            };
            g.outputs.push(c);
            let f = fused_at(&g, c, &vec![None; g.nodes.len()]);
            sources.push(elementwise_source(&g, &f).unwrap());
        }
    }
    if let Some(r) = syntax_check(&sources) {
        r.unwrap();
    }
}

#[test]
fn bf16_values_are_rounded_after_every_fused_node() {
    let ty = TensorType::new(DType::BF16, vec![4]);
    let mut g = Graph::new("chain");
    let x = input(&mut g, "x", ty.clone());
    let e = g
        .push("e", Op::Unary { func: UnaryFn::Exp }, vec![x], None)
        .unwrap();
    let n = g
        .push("n", Op::Unary { func: UnaryFn::Neg }, vec![e], None)
        .unwrap();
    g.outputs.push(n);
    let (needed, wanted) = all_needed(&g);
    let t = fusion_targets(&g, &needed, &wanted);
    let f = fused_at(&g, n, &t);
    let s = elementwise_source(&g, &f).unwrap();
    // Both nodes round to bf16, as the CPU kernels do when they store each value.
    assert_eq!(s.matches("bf16_load(bf16_store(").count(), 2, "{s}");
    assert!(s.contains("out[i] = bf16_store("), "{s}");
}

#[test]
fn single_use_elementwise_chains_fuse_and_shared_or_wanted_values_do_not() {
    let ty = TensorType::new(DType::F32, vec![8]);
    let mut g = Graph::new("chain");
    let x = input(&mut g, "x", ty.clone());
    let y = input(&mut g, "y", ty.clone());
    let e = g
        .push("e", Op::Unary { func: UnaryFn::Exp }, vec![x], None)
        .unwrap();
    let n = g
        .push("n", Op::Unary { func: UnaryFn::Neg }, vec![e], None)
        .unwrap();
    let a = g
        .push(
            "a",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![n, y],
            None,
        )
        .unwrap();
    // `a` is used twice: it is its own kernel's result, read by both users.
    let m = g
        .push(
            "m",
            Op::Binary {
                func: BinaryFn::Mul,
            },
            vec![a, a],
            None,
        )
        .unwrap();
    let s = g
        .push(
            "s",
            Op::Unary {
                func: UnaryFn::Sqrt,
            },
            vec![a],
            None,
        )
        .unwrap();
    let r = g
        .push(
            "r",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![m, s],
            None,
        )
        .unwrap();
    g.outputs.extend([r, s]);
    let (needed, wanted) = all_needed(&g);
    let t = fusion_targets(&g, &needed, &wanted);
    assert_eq!(t[e.index()], Some(n.index()));
    assert_eq!(t[n.index()], Some(a.index()));
    assert_eq!(t[a.index()], None, "used twice");
    assert_eq!(t[m.index()], Some(r.index()));
    assert_eq!(t[s.index()], None, "an output");
    assert_eq!(t[x.index()], None, "inputs are read, not fused");
    let fa = fused_at(&g, a, &t);
    assert_eq!(fa.inputs, vec![x, y]);
    assert_eq!(
        fa.nodes.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        vec![e, n, a]
    );
    let fr = fused_at(&g, r, &t);
    // `m` reads `a` twice through one parameter.
    assert_eq!(fr.inputs, vec![a, s]);
    assert_eq!(fr.nodes[0].1, vec![Arg::Input(0), Arg::Input(0)]);
    let sources = vec![
        elementwise_source(&g, &fa).unwrap(),
        elementwise_source(&g, &fr).unwrap(),
    ];
    if let Some(r) = syntax_check(&sources) {
        r.unwrap();
    }
}

#[test]
fn reductions_strided_copies_fills_gathers_and_scatters_are_well_formed() {
    let mut sources = Vec::new();
    for d in [
        DType::F32,
        DType::BF16,
        DType::F16,
        DType::F64,
        DType::I32,
        DType::I64,
    ] {
        for func in [ReduceFn::Sum, ReduceFn::Max, ReduceFn::Min] {
            let s = reduce_source(func, d, &[2, 3, 4], &[0, 2]).unwrap();
            // Kept dim 1 (stride 4); reduced dims 0 (stride 12) and 2 (stride 1): 8 elements.
            assert!(s.contains("j < 8ULL"), "{s}");
            assert!(s.contains("* 12LL"), "{s}");
            sources.push(s);
        }
        sources.push(fill_source(d, -2.5));
        sources.push(scatter_add_source(d, DType::I32, 5, 3, 2).unwrap());
    }
    let e = reduce_source(ReduceFn::Sum, DType::Bool, &[4], &[0]).unwrap_err();
    assert!(e.0.contains("bool"), "{}", e.0);
    assert!(reduce_source(ReduceFn::Sum, DType::F32, &[4], &[1])
        .unwrap_err()
        .0
        .contains("out of range"));
    assert!(scatter_add_source(DType::Bool, DType::I32, 2, 2, 1).is_err());
    sources.push(fill_source(DType::F32, f64::NEG_INFINITY));
    sources.push(fill_source(DType::F32, f64::NAN));
    sources.push(fill_source(DType::Bool, 1.0));
    for bytes in [1, 2, 4, 8] {
        let c = StridedCopy {
            dims: vec![2, 3],
            src_base: 5,
            src_strides: vec![-1, 2],
            dst_base: 0,
            dst_strides: strides(&[2, 3]),
            elem_bytes: bytes,
        };
        let s = strided_copy_source(&c);
        assert!(s.contains("i64 s = 5LL;") && s.contains("* -1LL"), "{s}");
        sources.push(s);
        sources.push(gather_source(bytes, DType::I64, 7, 4, 3));
    }
    // A scalar index space (rank 0) still has one element.
    sources.push(strided_copy_source(&StridedCopy {
        dims: vec![],
        src_base: 0,
        src_strides: vec![],
        dst_base: 0,
        dst_strides: vec![],
        elem_bytes: 4,
    }));
    if let Some(r) = syntax_check(&sources) {
        r.unwrap();
    }
}

#[test]
fn row_major_strides_are_products_of_the_later_dims() {
    assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
    assert_eq!(strides(&[]), Vec::<i64>::new());
}

#[test]
fn non_elementwise_nodes_are_never_fused() {
    let ty = TensorType::new(DType::F32, vec![2, 2]);
    let mut g = Graph::new("mixed");
    let x = input(&mut g, "x", ty.clone());
    let e = g
        .push("e", Op::Unary { func: UnaryFn::Exp }, vec![x], None)
        .unwrap();
    let t = g
        .push("t", Op::Transpose { perm: vec![1, 0] }, vec![e], None)
        .unwrap();
    let n = g
        .push("n", Op::Unary { func: UnaryFn::Neg }, vec![t], None)
        .unwrap();
    g.outputs.push(n);
    let (needed, wanted) = all_needed(&g);
    let targets = fusion_targets(&g, &needed, &wanted);
    assert!(targets.iter().all(Option::is_none), "{targets:?}");
    let _: &Node = g.node(t);
}
