//! Subcommands, one module each.

use clap::{Parser, Subcommand};

pub use shardc::CliError;

mod propagate;

/// shardc: a parallelism planner and SPMD sharding compiler.
#[derive(Parser, Debug)]
#[command(name = "shardc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Derive every value's sharding from a few annotations.
    Propagate(propagate::PropagateArgs),
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Propagate(args) => propagate::run(args),
    }
}
