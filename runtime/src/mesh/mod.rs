//! The device-mesh runtime: the [`Communicator`] interface, the threads backend and the SPMD /
//! MPMD executors that run a partitioned program on every device of a mesh.

mod collectives;
mod communicator;
mod executor;
mod threads;

pub use communicator::Communicator;
pub use executor::{run_mpmd, run_spmd, run_spmd_per_device, InjectedFailure, MeshOptions, Stage};
pub use threads::{launch, ThreadComm};

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
