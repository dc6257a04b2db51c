//! Subcommands, one module each.

use clap::{Parser, Subcommand};

pub use shardc::CliError;

mod grad;

/// shardc: a parallelism planner and SPMD sharding compiler.
#[derive(Parser, Debug)]
#[command(name = "shardc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Add the backward pass (gradients of every parameter) to a graph with a scalar loss.
    Grad(grad::GradArgs),
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Grad(a) => grad::run(a),
    }
}
