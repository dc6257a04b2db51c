//! The device-mesh runtime: the [`Communicator`] interface, the threads backend and the SPMD /
//! MPMD executors that run a partitioned program on every device of a mesh.

mod collectives;
mod communicator;
mod executor;
mod threads;

pub use communicator::Communicator;
pub use executor::{
    run_mpmd, run_mpmd_with, run_spmd, run_spmd_per_device, run_spmd_with, InjectedFailure,
    MeshOptions, Stage,
};
pub use threads::{launch, launch_with, ThreadComm};

#[cfg(feature = "mpi")]
pub(crate) use collectives::{chunk, concat, flat_chunk, reduce_flat};
pub(crate) use executor::Endpoint;
pub(crate) use executor::MeshDevice;
#[cfg(feature = "mpi")]
pub(crate) use threads::panic_message;

/// How a mesh run reduces its all-reduces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AllReduceAlgorithm {
    /// Among the group's devices: a reduce-scatter then an all-gather (a ring's traffic; on
    /// MPI, the library's own `MPI_Allreduce`).
    #[default]
    Ring,
    /// Through `reducers` extra workers that hold no device (threads on the threads backend,
    /// processes on MPI): every device sends chunk `j` of its buffer to reducer `j`, which sums
    /// the chunk over the group in rank order and sends it back (REFERENCES.md, Reduction
    /// Server). Sums in the same order as `Ring` on the threads backend.
    ReductionServer {
        /// How many reducers (at least 1).
        reducers: usize,
    },
}

impl std::str::FromStr for AllReduceAlgorithm {
    type Err = String;
    /// `ring`, or `reduction-server:R` / `reduction-server` (2 reducers).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "ring" => Ok(AllReduceAlgorithm::Ring),
            None if s == "reduction-server" => {
                Ok(AllReduceAlgorithm::ReductionServer { reducers: 2 })
            }
            Some(("reduction-server", r)) => match r.parse::<usize>() {
                Ok(reducers) if reducers >= 1 => {
                    Ok(AllReduceAlgorithm::ReductionServer { reducers })
                }
                _ => Err(format!(
                    "`{s}`: the reducer count must be a positive integer"
                )),
            },
            _ => Err(format!(
                "unknown all-reduce algorithm `{s}`: expected `ring` or `reduction-server[:R]`"
            )),
        }
    }
}

use shardc_ir::Mesh;

/// The devices that take part in a collective over `axes` with the device at `position`: those
/// that share all coordinates except on `axes`, ordered by their linear index over `axes`
/// (major first, as `Mesh::linear_index`), and `position`'s rank among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub members: Vec<usize>,
    pub rank: usize,
}

pub(crate) fn group(mesh: &Mesh, position: usize, axes: &[String]) -> Result<Group, String> {
    let n = mesh.devices.len();
    if position >= n {
        return Err(format!(
            "position {position} is outside the mesh `{mesh}` of {n} devices"
        ));
    }
    let mut on = vec![false; mesh.axes.len()];
    for a in axes {
        let k = mesh
            .axis_index(a)
            .ok_or_else(|| format!("mesh `{mesh}` has no axis `{a}`"))?;
        if on[k] {
            return Err(format!("axis `{a}` is listed twice"));
        }
        on[k] = true;
    }
    let me = mesh.coords(position);
    let mut members: Vec<(u64, usize)> = (0..n)
        .filter(|&p| {
            let c = mesh.coords(p);
            (0..c.len()).all(|k| on[k] || c[k] == me[k])
        })
        .map(|p| (mesh.linear_index(p, axes), p))
        .collect();
    members.sort_unstable();
    let rank = mesh.linear_index(position, axes) as usize;
    Ok(Group {
        members: members.into_iter().map(|(_, p)| p).collect(),
        rank,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_vary_only_on_their_axes_and_order_by_linear_index() {
        let mesh: Mesh = "dp=2,tp=3".parse().unwrap();
        // Position 4 is (dp=1, tp=1).
        let g = group(&mesh, 4, &["tp".into()]).unwrap();
        assert_eq!(
            g,
            Group {
                members: vec![3, 4, 5],
                rank: 1
            }
        );
        let g = group(&mesh, 4, &["dp".into()]).unwrap();
        assert_eq!(
            g,
            Group {
                members: vec![1, 4],
                rank: 1
            }
        );
        // Minor-major order: tp major, then dp.
        let g = group(&mesh, 4, &["tp".into(), "dp".into()]).unwrap();
        assert_eq!(
            g,
            Group {
                members: vec![0, 3, 1, 4, 2, 5],
                rank: 3
            }
        );
        assert!(group(&mesh, 0, &["pp".into()])
            .unwrap_err()
            .contains("no axis `pp`"));
    }
}
