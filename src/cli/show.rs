//! `shardc show FILE`: the text dump of a graph.

use std::path::PathBuf;

use clap::Args;

use super::{read_graph, CliError};

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The graph file (shardc JSON).
    pub file: PathBuf,
}

pub fn run(a: ShowArgs) -> Result<(), CliError> {
    let g = read_graph(&a.file)?;
    print!("{}", shardc::ir::dump(&g));
    Ok(())
}
