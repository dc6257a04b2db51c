//! The MPI backend end to end (feature `mpi`): `mpirun -n N shardc run FILE --backend mpi
//! --check`, one process per device, against the reference executor, over the partitioner's
//! matrix of strategies with 4 and 8 ranks; failures (an error on one rank, one rank killed)
//! end the whole job; the Reduction Server with extra reducer processes.
//!
//! Ranks are oversubscribed (CI has 2 cores), so every graph is small.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use shardc::runtime::Tensor;

use crate::common::{scratch, shardc_ok, zoo};

/// Runs `mpirun -n n shardc ARGS`, with `mca` (`--mca KEY VALUE` pairs) and `env` extra.
fn mpirun(n: usize, mca: &[(&str, &str)], env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-n", &n.to_string()]);
    for (k, v) in mca {
        c.args(["--mca", k, v]);
    }
    c.arg(env!("CARGO_BIN_EXE_shardc")).args(args);
    // Tests run as root in CI; containers often forbid the cross-process copy of shared memory.
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        // Ranks already outnumber the cores: one GEMM thread each.
        .env("MATMUL_NUM_THREADS", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("mpirun runs (Open MPI installed)")
}

/// Runs `shardc run FILE --backend mpi --check ARGS` on `n` ranks and checks it passed.
fn check_mpi(n: usize, file: &str, args: &[&str]) -> String {
    let mut all = vec!["run", file, "--backend", "mpi", "--check"];
    all.extend_from_slice(args);
    let out = mpirun(n, &[], &[], &all);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "mpirun -n {n} shardc {all:?} failed ({:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("mpi backend"), "{stdout}");
    assert!(stdout.contains("check passed"), "{stdout}");
    // Only rank 0 reports.
    assert_eq!(stdout.matches("check passed").count(), 1, "{stdout}");
    stdout
}

/// The zoo MLP's training step (gradients as outputs) with `batch` rows.
fn mlp_step(batch: u64) -> String {
    let fwd = zoo(
        &format!("mpi_mlp_{batch}.json"),
        &["mlp", "--batch", &batch.to_string()],
    );
    let step = scratch(&format!("mpi_mlp_{batch}_step.json"));
    let step = step.to_str().expect("UTF-8 scratch path").to_string();
    shardc_ok(&["grad", &fwd, "-o", &step]);
    step
}

fn gpt_step(name: &str, heads: u64, mesh: &str) -> String {
    zoo(
        name,
        &[
            "gpt",
            "--layers",
            "1",
            "--hidden",
            "32",
            "--heads",
            &heads.to_string(),
            "--seq",
            "8",
            "--vocab",
            "64",
            "--batch",
            "4",
            "--shardings",
            "megatron",
            "--mesh",
            mesh,
            "--train",
            "--optimizer",
            "sgd",
        ],
    )
}

fn data_parallel(n: usize) {
    let g = mlp_step(8);
    let mesh = format!("dp={n}");
    check_mpi(
        n,
        &g,
        &[
            "--mesh",
            &mesh,
            "--shard",
            "x=P('dp', None)",
            "--shard",
            "target=P('dp', None)",
        ],
    );
}

#[test]
fn data_parallel_mlp_step_on_4_and_8_ranks() {
    data_parallel(4);
    data_parallel(8);
}

#[test]
fn repeated_large_all_reduces_receive_into_earlier_buffers_and_pass_the_check() {
    // Two 256x1024 f32 weight gradients of 1 MiB each (not bucketed): the second all-reduce
    // receives into the first one's input buffer.
    let fwd = zoo(
        "mpi_mlp_1mib.json",
        &["mlp", "--batch", "8", "--sizes", "256,1024,256"],
    );
    let step = scratch("mpi_mlp_1mib_step.json");
    let step = step.to_str().expect("UTF-8 scratch path").to_string();
    shardc_ok(&["grad", &fwd, "-o", &step, "--optimizer", "sgd"]);
    check_mpi(4, &step, DP4);
}

#[test]
fn megatron_tensor_parallel_gpt_step_on_4_and_8_ranks() {
    check_mpi(4, &gpt_step("mpi_gpt_tp4.json", 4, "tp=4"), &[]);
    check_mpi(8, &gpt_step("mpi_gpt_tp8.json", 8, "tp=8"), &[]);
}

#[test]
fn data_times_tensor_gpt_step_on_4_and_8_ranks() {
    check_mpi(4, &gpt_step("mpi_gpt_dp2tp2.json", 4, "dp=2,tp=2"), &[]);
    check_mpi(8, &gpt_step("mpi_gpt_dp2tp4.json", 4, "dp=2,tp=4"), &[]);
}

fn zero3(n: usize) {
    // ZeRO-3: the batch and every weight split over `dp`; weights gathered before use and
    // gradients reduce-scattered.
    let g = mlp_step(64);
    let mesh = format!("dp={n}");
    let mut args = vec!["--mesh".to_string(), mesh];
    let mut shard = |s: String| args.extend(["--shard".to_string(), s]);
    shard("x=P('dp', None)".into());
    shard("target=P('dp', None)".into());
    for i in 0..2 {
        for v in ["weight", "matmul", "fc", "weight.grad"] {
            shard(format!("layers.{i}.{v}=P('dp', None)"));
        }
        for v in ["bias", "bias.grad"] {
            shard(format!("layers.{i}.{v}=P('dp')"));
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check_mpi(n, &g, &args);
}

#[test]
fn zero3_mlp_step_on_4_and_8_ranks() {
    zero3(4);
    zero3(8);
}

#[test]
fn sequence_parallel_gpt_step_on_4_and_8_ranks() {
    // Tokens and labels split along the sequence: attention gathers keys and values.
    let g = zoo(
        "mpi_gpt_sp.json",
        &[
            "gpt",
            "--layers",
            "1",
            "--hidden",
            "16",
            "--heads",
            "2",
            "--seq",
            "8",
            "--vocab",
            "32",
            "--batch",
            "2",
            "--train",
            "--optimizer",
            "sgd",
        ],
    );
    for n in [4, 8] {
        let mesh = format!("sp={n}");
        check_mpi(
            n,
            &g,
            &[
                "--mesh",
                &mesh,
                "--shard",
                "tokens=P(None, 'sp')",
                "--shard",
                "labels=P(None, 'sp')",
            ],
        );
    }
}

#[test]
fn spatial_conv_net_step_with_halos_on_4_and_8_ranks() {
    let fwd = zoo("mpi_resnet.json", &["resnet", "--image", "16"]);
    let step = scratch("mpi_resnet_step.json");
    let step = step.to_str().expect("UTF-8 scratch path").to_string();
    shardc_ok(&["grad", &fwd, "-o", &step]);
    let out = check_mpi(
        4,
        &step,
        &[
            "--mesh",
            "sp=4",
            "--shard",
            "images=P(None, None, 'sp', None)",
        ],
    );
    assert!(out.contains("4 devices"), "{out}");
    check_mpi(
        8,
        &step,
        &[
            "--mesh",
            "sp=8",
            "--shard",
            "images=P(None, None, 'sp', None)",
        ],
    );
}

fn expert_parallel(n: usize) {
    let fwd = zoo(
        &format!("mpi_moe_{n}.json"),
        &["moe", "--experts", &n.to_string(), "--tokens", "16"],
    );
    let step = scratch(&format!("mpi_moe_{n}_step.json"));
    let step = step.to_str().expect("UTF-8 scratch path").to_string();
    shardc_ok(&["grad", &fwd, "-o", &step]);
    let mesh = format!("ep={n}");
    check_mpi(
        n,
        &step,
        &[
            "--mesh",
            &mesh,
            "--shard",
            "x=P('ep', None)",
            "--shard",
            "target=P('ep', None)",
            "--shard",
            "experts.w1=P('ep', None, None)",
            "--shard",
            "experts.w2=P('ep', None, None)",
        ],
    );
}

#[test]
fn expert_parallel_moe_step_on_4_and_8_ranks() {
    expert_parallel(4);
    expert_parallel(8);
}

const DP4: &[&str] = &[
    "--mesh",
    "dp=4",
    "--shard",
    "x=P('dp', None)",
    "--shard",
    "target=P('dp', None)",
];

#[test]
fn the_tcp_transport_runs_the_same_check_on_loopback() {
    // The network path multi-host runs take (README), exercised between local processes.
    let g = mlp_step(8);
    let mut args = vec!["run", &g, "--backend", "mpi", "--check"];
    args.extend_from_slice(DP4);
    let out = mpirun(4, &[("btl", "tcp,self")], &[], &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("check passed"), "{stdout}");
}

/// Runs `mpirun -n n shardc run STEP --backend mpi --check` data-parallel over 4 devices with
/// `--allreduce allreduce`, writing the outputs to a scratch `.npz`; returns the per-output
/// lines and the outputs.
fn dp4_outputs(
    n: usize,
    step: &str,
    allreduce: &str,
    name: &str,
) -> (Vec<String>, Vec<(String, Tensor)>) {
    let npz = scratch(name);
    let npz = npz.to_str().expect("UTF-8 scratch path").to_string();
    let mut args = vec![
        "run",
        step,
        "--backend",
        "mpi",
        "--check",
        "--allreduce",
        allreduce,
        "--outputs",
        &npz,
    ];
    args.extend_from_slice(DP4);
    let out = mpirun(n, &[], &[], &args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("check passed"), "{stdout}");
    let server = stdout.contains("reduction server with 2 reducers");
    assert_eq!(server, allreduce != "ring", "{stdout}");
    let lines = stdout.lines().skip(1).map(str::to_string).collect();
    let outputs = shardc::runtime::read_npz(std::path::Path::new(&npz)).expect("the outputs");
    (lines, outputs)
}

/// A `--check` line without its error figures (the part the summation order moves).
fn without_error(line: &str) -> String {
    if line.starts_with("check passed") {
        return "check passed".into();
    }
    match (line.find(": max relative error"), line.rfind(") ")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &line[..a], &line[b..]),
        _ => line.to_string(),
    }
}

/// The largest |a − b| over `a`'s largest |value|, and whether every value is bit-identical.
fn difference(a: &Tensor, b: &Tensor) -> (f64, bool) {
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = a
        .iter()
        .zip(&b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
    (if scale > 0.0 { diff / scale } else { diff }, same)
}

#[test]
fn reduction_server_with_2_reducer_processes_equals_the_ring_output_for_output() {
    // The same SGD step on 4 devices: the ring (MPI_Allreduce among 4 processes) and the
    // Reduction Server (4 devices and 2 reducers: 6 processes).
    let g = mlp_step(8);
    let (ring_lines, ring) = dp4_outputs(4, &g, "ring", "mpi_rs_cmp_ring.npz");
    let (rs_lines, rs) = dp4_outputs(6, &g, "reduction-server:2", "mpi_rs_cmp_rs.npz");
    // Every output's line but its error against the f64 oracle: the same value, verdict and
    // summary (7 digits of min, max, mean and L2 norm).
    assert_eq!(ring_lines.len(), rs_lines.len());
    for (r, s) in ring_lines.iter().zip(&rs_lines) {
        assert_eq!(without_error(r), without_error(s), "\n{r}\n{s}");
    }
    assert_eq!(ring.len(), rs.len());
    // The reducers sum each element over the members in rank order, as the threads backend
    // does, so the server equals the threads ring bit for bit. Open MPI's MPI_Allreduce picks
    // its own order per message size (recursive doubling, ring, Rabenseifner), so the MPI
    // ring may differ from both in the last bits of a 4-term f32 sum: each order is within
    // 3 roundings of the exact sum, so within 8 ulp (2^-20) of the output's largest value.
    let threads = scratch("mpi_rs_cmp_threads.npz");
    let threads_path = threads.to_str().expect("UTF-8 scratch path");
    let mut args = vec!["run", &g, "--allreduce", "ring", "--outputs", threads_path];
    args.extend_from_slice(DP4);
    shardc_ok(&args);
    let threads = shardc::runtime::read_npz(&threads).expect("the outputs");
    for (((name, r), (name_rs, s)), (_, t)) in ring.iter().zip(&rs).zip(&threads) {
        assert_eq!(name, name_rs);
        let (to_ring, _) = difference(r, s);
        let (_, to_threads) = difference(t, s);
        println!("{name}: reduction server vs MPI ring {to_ring:.2e} relative; bit-identical to the threads ring: {to_threads}");
        assert!(to_ring <= f64::powi(2.0, -20), "{name}: {to_ring:e}");
        assert!(
            to_threads,
            "{name}: the server differs from the threads ring"
        );
    }
}

#[test]
fn a_rank_count_that_does_not_fit_the_mesh_is_reported() {
    let g = mlp_step(8);
    let mut args = vec!["run", &g, "--backend", "mpi"];
    args.extend_from_slice(DP4);
    let out = mpirun(2, &[], &[], &args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mpirun started 2 processes (use -n 4)"),
        "{err}"
    );
}

/// Runs the data-parallel step with `SHARDC_MPI_INJECT=inject` and returns the job's exit
/// status, its output and how long it took.
fn faulty(inject: &str) -> (Option<i32>, String, Duration) {
    let g = mlp_step(8);
    let mut args = vec!["run", &g, "--backend", "mpi", "--check"];
    args.extend_from_slice(DP4);
    let start = Instant::now();
    let out = mpirun(4, &[], &[("SHARDC_MPI_INJECT", inject)], &args);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text, start.elapsed())
}

#[test]
fn a_rank_that_fails_prints_its_rank_and_op_and_ends_the_job() {
    // Rank 2 fails before the backward's first matmul; the others would wait for it in the
    // gradient all-reduce.
    let (code, text, took) = faulty("error:2:layers.1.matmul.grad_lhs");
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("MPI rank 2"), "{text}");
    assert!(text.contains("layers.1.matmul.grad_lhs"), "{text}");
    assert!(took < Duration::from_secs(10), "took {took:?}:\n{text}");
}

#[test]
fn killing_one_rank_mid_run_ends_the_job_within_10_seconds() {
    let (code, text, took) = faulty("kill:1:layers.1.matmul.grad_lhs");
    assert_ne!(code, Some(0), "{text}");
    // Open MPI names the rank it lost ("process rank 1 with PID ...").
    assert!(text.contains("rank 1"), "{text}");
    assert!(took < Duration::from_secs(10), "took {took:?}:\n{text}");
}

/// A pipelined plan of a 4-layer GPT step (`shardc plan --mesh ..,pp=P --schedule S`), run
/// with one MPI process per device of every stage's submesh: activations and gradients go
/// point-to-point between the pipeline ranks' processes.
fn pipelined(schedule: &str, mesh: &str, m: &str, ranks: usize) {
    let step = zoo(
        "mpi_pipe_gpt4.json",
        &[
            "gpt", "--layers", "4", "--hidden", "16", "--heads", "2", "--seq", "8", "--vocab",
            "32", "--batch", "8", "--train",
        ],
    );
    let plan = scratch(&format!("mpi_pipe_{schedule}_{ranks}.plan.json"));
    let plan = plan.to_str().expect("UTF-8 scratch path").to_string();
    let cluster = format!("a100-80gb:1x{ranks}");
    shardc_ok(&[
        "plan",
        &step,
        "--cluster",
        &cluster,
        "--mesh",
        mesh,
        "--schedule",
        schedule,
        "--micro-batches",
        m,
        "-o",
        &plan,
    ]);
    let out = check_mpi(ranks, &step, &["--plan", &plan]);
    assert!(out.contains(&format!("pipelined, {schedule}")), "{out}");
}

#[test]
fn gpipe_and_1f1b_pipelined_plans_on_4_and_8_ranks() {
    pipelined("GPipe", "dp=1,tp=1,pp=4", "4", 4);
    pipelined("GPipe", "dp=1,tp=2,pp=4", "4", 8);
    pipelined("1F1B", "dp=2,tp=1,pp=2", "2", 4);
    pipelined("1F1B", "dp=2,tp=2,pp=2", "4", 8);
}

#[test]
fn a_plan_that_picks_the_reduction_server_runs_it_with_reducer_processes() {
    let (step, plan, _) = crate::common::plan_with_reducers("mpi_rs_plan_mlp");
    // 4 devices and the plan's 2 reducers: 6 processes.
    let out = mpirun(
        6,
        &[],
        &[],
        &["run", &step, "--plan", &plan, "--backend", "mpi", "--check"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("reduction server with 2 reducers"),
        "{stdout}"
    );
    assert!(stdout.contains("check passed"), "{stdout}");
}
