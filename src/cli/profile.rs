//! `shardc profile`: measures this machine's CPU kernels (the reference executor) and the threads
//! backend's all-reduce, and writes a profile that `shardc cost --calibration` fits the model to.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use shardc::cost_model::{
    CollectiveKind, MeasuredCollective, MeasuredOp, OpClass, Precision, Profile,
};
use shardc::ir::{BinaryFn, DType, Graph, Mesh, Op, ReduceFn, TensorType};
use shardc::runtime::{execute, random_inputs, run_spmd};

use super::{write_output, CliError};

#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// The catalog device this machine is (its peaks are what the fractions are fitted against).
    #[arg(long, default_value = "cpu-xeon-8380")]
    pub device: String,
    /// Repetitions per measurement; the fastest is kept.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Write the profile here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

fn input(g: &mut Graph, name: &str, dims: Vec<u64>) -> Result<shardc::ir::ValueId, CliError> {
    Ok(g.push(
        name,
        Op::Input { init: None },
        vec![],
        Some(TensorType::new(DType::F32, dims)),
    )?)
}

/// The fastest of `repeat` runs of `f`, in seconds.
fn fastest(repeat: u32, mut f: impl FnMut() -> Result<(), CliError>) -> Result<f64, CliError> {
    let mut best = f64::INFINITY;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best.max(1e-9))
}

fn time_graph(g: &Graph, repeat: u32) -> Result<f64, CliError> {
    let inputs = random_inputs(g, 1);
    fastest(repeat, || {
        execute(g, &inputs).map(|_| ()).map_err(CliError::input)
    })
}

fn ops(repeat: u32) -> Result<Vec<MeasuredOp>, CliError> {
    let mut out = Vec::new();
    let f32op = |name: String, class, flops: f64, bytes: f64, seconds| MeasuredOp {
        name,
        class,
        precision: Precision::Fp32,
        flops,
        bytes,
        seconds,
    };
    for n in [64u64, 128, 256] {
        let mut g = Graph::new("matmul");
        let x = input(&mut g, "x", vec![n, n])?;
        let w = input(&mut g, "w", vec![n, n])?;
        let dot = Op::DotGeneral {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![1],
            rhs_contract: vec![0],
        };
        let y = g.push("y", dot, vec![x, w], None)?;
        g.outputs.push(y);
        let nf = n as f64;
        let t = time_graph(&g, repeat)?;
        out.push(f32op(
            format!("dot_general f32[{n},{n}]x[{n},{n}]"),
            OpClass::Matmul,
            2.0 * nf * nf * nf,
            12.0 * nf * nf,
            t,
        ));
    }
    for n in [1u64 << 16, 1 << 18, 1 << 20] {
        let mut g = Graph::new("add");
        let x = input(&mut g, "x", vec![n])?;
        let y = input(&mut g, "y", vec![n])?;
        let z = g.push(
            "z",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![x, y],
            None,
        )?;
        g.outputs.push(z);
        let t = time_graph(&g, repeat)?;
        out.push(f32op(
            format!("add f32[{n}]"),
            OpClass::Elementwise,
            n as f64,
            12.0 * n as f64,
            t,
        ));
        let mut g = Graph::new("reduce");
        let x = input(&mut g, "x", vec![n])?;
        let r = g.push(
            "r",
            Op::Reduce {
                func: ReduceFn::Sum,
                dims: vec![0],
            },
            vec![x],
            None,
        )?;
        g.outputs.push(r);
        let t = time_graph(&g, repeat)?;
        out.push(f32op(
            format!("reduce sum f32[{n}]"),
            OpClass::Reduction,
            n as f64,
            4.0 * n as f64 + 4.0,
            t,
        ));
    }
    Ok(out)
}

fn collectives(repeat: u32) -> Result<Vec<MeasuredCollective>, CliError> {
    let mut out = Vec::new();
    for ranks in [2u64, 4] {
        for n in [1u64 << 10, 1 << 16, 1 << 20] {
            let mesh = Mesh::new(&[("x", ranks)])?;
            let mut g = Graph::new("all_reduce");
            g.mesh = Some(mesh.clone());
            let x = input(&mut g, "x", vec![n])?;
            let y = g.push(
                "y",
                Op::AllReduce {
                    axes: vec!["x".into()],
                    func: ReduceFn::Sum,
                },
                vec![x],
                None,
            )?;
            g.outputs.push(y);
            let per_device: Vec<_> = (0..ranks).map(|r| random_inputs(&g, r)).collect();
            let seconds = fastest(repeat, || {
                run_spmd(&g, &mesh, per_device.clone())
                    .map(|_| ())
                    .map_err(CliError::input)
            })?;
            out.push(MeasuredCollective {
                kind: CollectiveKind::AllReduce,
                ranks,
                nodes: 1,
                bytes: 4.0 * n as f64,
                seconds,
            });
        }
    }
    Ok(out)
}

pub fn run(a: ProfileArgs) -> Result<(), CliError> {
    // The device must exist so that the profile can be fitted later.
    shardc::cost_model::Catalog::builtin()
        .device(&a.device)
        .map_err(CliError::input)?;
    let profile = Profile {
        device: a.device.to_ascii_lowercase(),
        ops: ops(a.repeat)?,
        collectives: collectives(a.repeat)?,
    };
    let mut s = serde_json::to_string_pretty(&profile).expect("invariant: the profile serializes");
    s.push('\n');
    write_output(a.output.as_deref(), &s)
}
