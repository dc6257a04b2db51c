//! Subcommands, one module each, and the plumbing they share (reading graph files, progress).

use std::io::IsTerminal;
use std::path::Path;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use shardc::ir::Graph;

pub use shardc::CliError;

mod check;
mod compile;
mod cost;
mod grad;
mod import;
mod input;
mod plan;
mod plan_pipeline;
mod profile;
mod propagate;
mod run;
mod schedule;
mod show;
mod zoo;

/// shardc: a parallelism planner and SPMD sharding compiler.
#[derive(Parser, Debug)]
#[command(name = "shardc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a model from the zoo as a graph file.
    Zoo(zoo::ZooArgs),
    /// Verify a graph file and print a summary (nodes, parameters, FLOPs, bytes).
    Check(check::CheckArgs),
    /// Print a graph file as text, one op per line.
    Show(show::ShowArgs),
    /// Add the backward pass (gradients of every parameter) to a graph with a scalar loss.
    Grad(grad::GradArgs),
    /// Estimate a step of a sharded graph on a cluster: time, FLOP/s, memory, collectives.
    Cost(cost::CostArgs),
    /// Measure this machine's CPU kernels and threads-backend all-reduce into a calibration profile.
    Profile(profile::ProfileArgs),
    /// Run a graph on one CPU device with random inputs and summarise its outputs.
    Run(run::RunArgs),
    /// Import an XLA HLO text module as a shardc graph (JSON).
    Import(import::ImportArgs),
    /// Derive every value's sharding from a few annotations.
    Propagate(propagate::PropagateArgs),
    /// Partition a graph for a mesh and write the per-stage SPMD programs.
    Compile(compile::CompileArgs),
    /// Choose the mesh shape and every value's sharding for a cluster; print the plan.
    Plan(plan::PlanArgs),
    /// Generate, validate, simulate and draw a pipeline schedule (SVG, Chrome trace, torch CSV).
    Schedule(schedule::ScheduleArgs),
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Zoo(a) => zoo::run(a),
        Command::Check(a) => check::run(a),
        Command::Show(a) => show::run(a),
        Command::Grad(a) => grad::run(a),
        Command::Cost(a) => cost::run(a),
        Command::Profile(a) => profile::run(a),
        Command::Run(a) => run::run(a),
        Command::Import(a) => import::run(a),
        Command::Propagate(a) => propagate::run(a),
        Command::Compile(a) => compile::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Schedule(a) => schedule::run(a),
    }
}

/// Reads and verifies a graph file; errors name the file.
pub(crate) fn read_graph(path: &Path) -> Result<Graph, CliError> {
    if path.extension().and_then(|e| e.to_str()) == Some("onnx") {
        return Ok(import::read_onnx(path, &[])?.graph);
    }
    let spin = spinner(&format!("reading {}", path.display()));
    let read = || {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?;
        spin.set_message(format!("verifying {}", path.display()));
        shardc::ir::from_json(&text)
            .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))
    };
    let g = read();
    // Cleared on errors too, so the message is not printed after a stale spinner line.
    spin.finish_and_clear();
    g
}

/// Writes `text` to `path`, or to standard output when there is no path.
pub(crate) fn write_output(path: Option<&Path>, text: &str) -> Result<(), CliError> {
    match path {
        Some(p) => std::fs::write(p, text).map_err(|source| CliError::Io {
            path: p.display().to_string(),
            source,
        }),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// A progress bar on stderr when stderr is a terminal; hidden otherwise (pipes, tests, CI).
pub(crate) fn progress_bar(len: u64, message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed})")
            .expect("invariant: the template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// A spinner on stderr when stderr is a terminal, for work without a known length.
pub(crate) fn spinner(message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let s = ProgressBar::new_spinner();
    s.set_message(message.to_string());
    s.enable_steady_tick(std::time::Duration::from_millis(100));
    s
}
