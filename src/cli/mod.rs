//! Subcommands, one module each.

use clap::{Parser, Subcommand};

pub use shardc::CliError;

mod import;

/// shardc: a parallelism planner and SPMD sharding compiler.
#[derive(Parser, Debug)]
#[command(name = "shardc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import an XLA HLO text module as a shardc graph (JSON).
    Import(import::ImportArgs),
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Import(a) => import::run(a),
    }
}
