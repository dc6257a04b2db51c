//! The MPI backend (cargo feature `mpi`): one process per device under `mpirun`, each running
//! the same SPMD program; every [`Communicator`] operation is an MPI collective over a
//! sub-communicator built once per mesh axis group, and send/recv are point-to-point.
//!
//! World ranks `0..n` are the mesh's devices (rank = mesh position = global device id); with the
//! Reduction Server, ranks `n..n+R` are reducers that hold no device (`mpi_reducer`).
//!
//! A rank that hits an error prints it with its rank and the op and calls `MPI_Abort`, which
//! ends every rank of the job with a non-zero exit: no rank is left waiting in a collective. A
//! rank that dies without aborting (killed) is noticed by `mpirun`, which ends the job too.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::environment::Universe;
use mpi::topology::{Color, SimpleCommunicator};
use mpi::traits::Communicator as _;
use mpi::traits::*;
use ndarray::{ArrayD, IxDyn};
use shardc_ir::{DType, Graph, Mesh, Node, Op, ReduceFn, TensorType, ValueId};

use crate::error::RuntimeError;
use crate::executor::{owned, run_graph, DeviceOps};
use crate::kernels::arr;
use crate::mesh::InjectedFailure;
use crate::mesh::{group, AllReduceAlgorithm, Communicator, Endpoint, MeshDevice};
use crate::mpi_reducer::{self, ServerLink};
use crate::tensor::{element_count, usize_dims, with_elem, Elem, Tensor};

/// Point-to-point tags at or above this are the pipeline's send/recv (hashed from their tag
/// text); below are the backend's own. MPI guarantees tags up to 32767 (`MPI_TAG_UB`).
const USER_TAG_BASE: i32 = 1024;
/// The tag of collective-permute messages (on the group's own communicator).
const PERMUTE_TAG: i32 = 7;

/// This process's MPI environment: initialised once, finalised when dropped.
pub struct MpiWorld {
    universe: Universe,
}

impl MpiWorld {
    /// Initialises MPI (once per process).
    pub fn init() -> Result<MpiWorld, RuntimeError> {
        mpi::initialize()
            .map(|universe| MpiWorld { universe })
            .ok_or_else(|| {
                RuntimeError::Invalid("MPI is already initialised in this process".into())
            })
    }

    /// This process's rank in `MPI_COMM_WORLD`.
    pub fn rank(&self) -> usize {
        self.universe.world().rank() as usize
    }

    /// The number of processes in the job.
    pub fn size(&self) -> usize {
        self.universe.world().size() as usize
    }

    /// The MPI universe (to attach a send buffer, or reach `MPI_COMM_WORLD`).
    pub(crate) fn universe(&mut self) -> &mut Universe {
        &mut self.universe
    }

    /// Prints `message` with this rank and ends the whole job with exit status 1.
    pub fn abort(&self, message: &str) -> ! {
        eprintln!("shardc: MPI rank {}: {message}", self.rank());
        self.universe.world().abort(1)
    }
}

/// One device's endpoint in the MPI backend.
pub struct MpiComm {
    world: SimpleCommunicator,
    mesh: Mesh,
    position: usize,
    /// One communicator per axis list the program's collectives use, ranked by the group's
    /// linear index over those axes (the `Communicator` contract).
    groups: BTreeMap<Vec<String>, SimpleCommunicator>,
    server: Option<ServerLink>,
    /// Point-to-point sends go through the buffer attached to the process (`MPI_Bsend`) and
    /// return at once, as the `Communicator` contract says; set by the pipeline runner, which
    /// attaches a buffer large enough for every send of its rank.
    pub(crate) buffered: bool,
    /// The input of the last large all-reduce, whose buffer the next one of its dtype and
    /// length receives into ([`SPARE_MIN_BYTES`]).
    spare: Option<Tensor>,
}

/// Every axis list the program's collectives run over, in a deterministic order (every rank
/// must create the sub-communicators in the same order).
pub(crate) fn axis_lists(program: &Graph) -> Vec<Vec<String>> {
    let mut lists: Vec<Vec<String>> = program
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::AllReduce { axes, .. }
            | Op::AllGather { axes, .. }
            | Op::ReduceScatter { axes, .. }
            | Op::AllToAll { axes, .. }
            | Op::CollectivePermute { axes, .. } => Some(axes.clone()),
            _ => None,
        })
        .collect();
    lists.sort();
    lists.dedup();
    lists
}

impl MpiComm {
    /// This rank's endpoint for running collectives over `axis_lists` by hand (benchmarks,
    /// embedders): every rank of the job is a device of `mesh` (no reducers). Collective over
    /// the world: every rank calls it with the same lists.
    pub fn connect(
        world: &MpiWorld,
        mesh: &Mesh,
        axis_lists: &[Vec<String>],
    ) -> Result<MpiComm, RuntimeError> {
        let wc = world.universe.world();
        if wc.size() as usize != mesh.devices.len() {
            return Err(RuntimeError::Invalid(format!(
                "the mesh `{mesh}` has {} devices, the job {} ranks",
                mesh.devices.len(),
                wc.size()
            )));
        }
        MpiComm::new(&wc, mesh, axis_lists, None)
    }

    /// Builds the sub-communicators of `axis_lists` on `workers` (the devices' communicator,
    /// rank = mesh position). Collective over `workers`.
    pub(crate) fn new(
        workers: &SimpleCommunicator,
        mesh: &Mesh,
        lists: &[Vec<String>],
        server: Option<ServerLink>,
    ) -> Result<MpiComm, RuntimeError> {
        let position = workers.rank() as usize;
        let mut groups = BTreeMap::new();
        for axes in lists {
            let g = group(mesh, position, axes).map_err(RuntimeError::Invalid)?;
            // Members share every coordinate off `axes`, so the smallest member names the group.
            let color = g.members.iter().copied().min().unwrap_or(position) as i32;
            let comm = workers
                .split_by_color_with_key(Color::with_value(color), g.rank as i32)
                .ok_or_else(|| RuntimeError::Invalid(format!("MPI split for {axes:?} failed")))?;
            groups.insert(axes.clone(), comm);
        }
        Ok(MpiComm {
            world: mpi::topology::SimpleCommunicator::world(),
            mesh: mesh.clone(),
            position,
            groups,
            server,
            buffered: false,
            spare: None,
        })
    }

    fn err(&self, what: &str, message: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Device {
            device: self.position,
            message: format!("{what}: {message}"),
        }
    }

    fn comm(&self, axes: &[String], what: &str) -> Result<&SimpleCommunicator, RuntimeError> {
        self.groups.get(axes).ok_or_else(|| {
            self.err(
                what,
                format!("no communicator for axes {axes:?} (not in the program)"),
            )
        })
    }
}

/// The row-major elements of `t` as one contiguous vector.
fn flat<T: Elem>(t: &Tensor) -> Result<Vec<T>, String> {
    let a = arr::<T>(t)?;
    Ok(match a.as_slice() {
        Some(s) => s.to_vec(),
        None => a.iter().copied().collect(),
    })
}

/// A tensor of `dtype` and `shape` over `v`.
fn tensor_of<T: Elem>(dtype: DType, shape: &[usize], v: Vec<T>) -> Result<Tensor, String> {
    let a = ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| format!("result shape: {e}"))?;
    Ok(Tensor::from_data(dtype, T::into_data(a)))
}

/// The `n` chunks of `t` along `dim`, each flattened, one after another: the layout MPI's
/// block collectives send (block `r` to rank `r`).
fn chunks_flat<T: Elem>(t: &Tensor, dim: usize, n: usize) -> Result<(Vec<T>, Vec<usize>), String> {
    let mut out = Vec::with_capacity(t.len());
    let mut shape = Vec::new();
    for r in 0..n {
        let c = crate::mesh::chunk(t, dim, n, r)?;
        shape = c.shape().to_vec();
        out.extend(flat::<T>(&c)?);
    }
    Ok((out, shape))
}

/// `buf` split into `n` equal blocks of `shape`, joined along `dim`.
fn join_blocks<T: Elem>(
    dtype: DType,
    buf: Vec<T>,
    n: usize,
    shape: &[usize],
    dim: usize,
) -> Result<Tensor, String> {
    let len = buf.len() / n.max(1);
    // Block r is buf[r·len..(r+1)·len]; empty blocks (len 0) are still n of them.
    let blocks = (0..n)
        .map(|r| tensor_of(dtype, shape, buf[r * len..(r + 1) * len].to_vec()))
        .collect::<Result<Vec<_>, _>>()?;
    crate::mesh::concat(&blocks.iter().collect::<Vec<_>>(), dim)
}

/// All-reduces at least this large keep their input's buffer for the next one's result: a
/// fresh 64 MiB result costs more page faults than the all-reduce itself on a loaded VM
/// (BENCHMARKS.md, MPI all-reduce).
const SPARE_MIN_BYTES: u64 = 1 << 20;

/// `MPI_Allreduce` of `x` over `comm`: sent from `x`'s own buffer when it is contiguous, and
/// received into `spare`'s (an earlier all-reduce's input) when that has `x`'s dtype and
/// length, so that a training loop's repeated all-reduces allocate nothing.
fn ring_all_reduce<T: Elem + Equivalence>(
    comm: &SimpleCommunicator,
    x: &Tensor,
    spare: Option<Tensor>,
    func: ReduceFn,
) -> Result<Tensor, String> {
    let a = arr::<T>(x)?;
    let copy;
    let src = match a.as_slice() {
        Some(s) => s,
        None => {
            copy = flat::<T>(x)?;
            &copy[..]
        }
    };
    let mut out = spare_vec::<T>(spare, x.dtype(), src.len())
        .unwrap_or_else(|| vec![T::default(); src.len()]);
    comm.all_reduce_into(src, &mut out[..], op(func));
    tensor_of(x.dtype(), x.shape(), out)
}

/// `spare`'s storage as a vector of `len` elements, if it is of `dtype`, that long and
/// contiguous from its start.
fn spare_vec<T: Elem>(spare: Option<Tensor>, dtype: DType, len: usize) -> Option<Vec<T>> {
    let s = spare.filter(|s| s.dtype() == dtype && s.len() == len)?;
    let mut data = s.into_data();
    let a = std::mem::take(T::get_mut(&mut data)?);
    if !a.is_standard_layout() {
        return None;
    }
    let (v, offset) = a.into_raw_vec_and_offset();
    (v.len() == len && offset.unwrap_or(0) == 0).then_some(v)
}

fn op(func: ReduceFn) -> SystemOperation {
    match func {
        ReduceFn::Sum => SystemOperation::sum(),
        ReduceFn::Max => SystemOperation::max(),
        ReduceFn::Min => SystemOperation::min(),
    }
}

/// A stable integer tag for a send/recv tag text (FNV-1a, folded into MPI's guaranteed range).
fn user_tag(tag: &str) -> i32 {
    let h = tag.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    USER_TAG_BASE + (h % (32767 - USER_TAG_BASE as u64)) as i32
}

impl Communicator for MpiComm {
    fn position(&self) -> usize {
        self.position
    }

    fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    fn all_reduce(
        &mut self,
        x: Tensor,
        axes: &[String],
        func: ReduceFn,
    ) -> Result<Tensor, RuntimeError> {
        let what = format!("all_reduce({}) of {} over {axes:?}", func.name(), x.ty());
        if self.comm(axes, &what)?.size() == 1 {
            return Ok(x);
        }
        if self.server.is_some() {
            let key = self.groups.keys().position(|k| k == axes).unwrap_or(0);
            let g = group(&self.mesh, self.position, axes).map_err(|m| self.err(&what, m))?;
            let r = match &mut self.server {
                Some(server) => server.all_reduce(&self.world, x, key, &g, func),
                None => Err("no reduction server (invariant)".into()),
            };
            return r.map_err(|m| self.err(&what, m));
        }
        let spare = self.spare.take();
        let comm = self.comm(axes, &what)?;
        let r = with_elem!(x.data(), T => {
            if matches!(x.dtype(), DType::Bool) {
                Err("cannot reduce bool tensors".to_string())
            } else {
                ring_all_reduce::<T>(comm, &x, spare, func)
            }
        });
        let y = r.map_err(|m| self.err(&what, m))?;
        // `x`'s buffer is nobody's now: the next large all-reduce receives into it.
        if x.ty().size_bytes() >= SPARE_MIN_BYTES {
            self.spare = Some(x);
        }
        Ok(y)
    }

    fn all_gather(
        &mut self,
        x: Tensor,
        dim: usize,
        axes: &[String],
    ) -> Result<Tensor, RuntimeError> {
        let what = format!("all_gather(dim {dim}) of {} over {axes:?}", x.ty());
        let comm = self.comm(axes, &what)?;
        let n = comm.size() as usize;
        let r = with_elem!(x.data(), T => flat::<T>(&x).and_then(|src| {
            let mut out = vec![T::default(); src.len() * n];
            comm.all_gather_into(&src[..], &mut out[..]);
            join_blocks(x.dtype(), out, n, x.shape(), dim)
        }));
        r.map_err(|m| self.err(&what, m))
    }

    fn reduce_scatter(
        &mut self,
        x: Tensor,
        dim: usize,
        axes: &[String],
        func: ReduceFn,
    ) -> Result<Tensor, RuntimeError> {
        let what = format!(
            "reduce_scatter({}, dim {dim}) of {} over {axes:?}",
            func.name(),
            x.ty()
        );
        let comm = self.comm(axes, &what)?;
        let n = comm.size() as usize;
        let r = with_elem!(x.data(), T => {
            if matches!(x.dtype(), DType::Bool) {
                Err("cannot reduce bool tensors".to_string())
            } else {
                chunks_flat::<T>(&x, dim, n).and_then(|(src, shape)| {
                    let mut out = vec![T::default(); src.len() / n];
                    comm.reduce_scatter_block_into(&src[..], &mut out[..], op(func));
                    tensor_of(x.dtype(), &shape, out)
                })
            }
        });
        r.map_err(|m| self.err(&what, m))
    }

    fn all_to_all(
        &mut self,
        x: Tensor,
        split_dim: usize,
        concat_dim: usize,
        axes: &[String],
    ) -> Result<Tensor, RuntimeError> {
        let what = format!(
            "all_to_all(split {split_dim}, concat {concat_dim}) of {} over {axes:?}",
            x.ty()
        );
        let comm = self.comm(axes, &what)?;
        let n = comm.size() as usize;
        let r = with_elem!(x.data(), T => chunks_flat::<T>(&x, split_dim, n).and_then(|(src, shape)| {
            let mut out = vec![T::default(); src.len()];
            comm.all_to_all_into(&src[..], &mut out[..]);
            join_blocks(x.dtype(), out, n, &shape, concat_dim)
        }));
        r.map_err(|m| self.err(&what, m))
    }

    fn collective_permute(
        &mut self,
        x: Tensor,
        axes: &[String],
        pairs: &[(u64, u64)],
    ) -> Result<Tensor, RuntimeError> {
        let what = format!("collective_permute({pairs:?}) of {} over {axes:?}", x.ty());
        let comm = self.comm(axes, &what)?;
        let (me, n) = (comm.rank() as u64, comm.size() as u64);
        if let Some(&(s, t)) = pairs.iter().find(|&&(s, t)| s >= n || t >= n) {
            return Err(self.err(&what, format!("pair ({s}, {t}) is outside a group of {n}")));
        }
        let source = pairs.iter().find(|&&(_, t)| t == me).map(|&(s, _)| s);
        let r = with_elem!(x.data(), T => flat::<T>(&x).and_then(|src| {
            let mut out = vec![T::default(); src.len()];
            mpi::request::scope(|scope| {
                let sends: Vec<_> = pairs
                    .iter()
                    .filter(|&&(s, t)| s == me && t != me)
                    .map(|&(_, t)| comm.process_at_rank(t as i32).immediate_send_with_tag(scope, &src[..], PERMUTE_TAG))
                    .collect();
                match source {
                    Some(s) if s == me => out.copy_from_slice(&src),
                    Some(s) => {
                        comm.process_at_rank(s as i32).receive_into_with_tag(&mut out[..], PERMUTE_TAG);
                    }
                    None => {}
                }
                for q in sends {
                    q.wait();
                }
            });
            tensor_of(x.dtype(), x.shape(), out)
        }));
        r.map_err(|m| self.err(&what, m))
    }

    fn send(&mut self, x: Tensor, to: usize, tag: &str) -> Result<(), RuntimeError> {
        let what = format!("send `{tag}` to device {to}");
        let peer = self.world.process_at_rank(to as i32);
        // A standard-mode send: small messages go eagerly, large ones wait for the matching
        // receive (MPI's rule); the pipeline's schedules post each receive in order.
        let buffered = self.buffered;
        let r = with_elem!(x.data(), T => flat::<T>(&x).map(|src| {
            if buffered {
                peer.buffered_send_with_tag(&src[..], user_tag(tag))
            } else {
                peer.send_with_tag(&src[..], user_tag(tag))
            }
        }));
        r.map_err(|m| self.err(&what, m))
    }

    fn recv(&mut self, from: usize, tag: &str, ty: &TensorType) -> Result<Tensor, RuntimeError> {
        let what = format!("recv `{tag}` from device {from}");
        let len = element_count(ty)?;
        let shape = usize_dims(ty)?;
        let peer = self.world.process_at_rank(from as i32);
        let empty = Tensor::full(&TensorType::new(ty.dtype, vec![0]), 0.0)?;
        let r = with_elem!(empty.data(), T => {
            let mut out = vec![T::default(); len];
            let status = peer.receive_into_with_tag(&mut out[..], user_tag(tag));
            if status.count(T::equivalent_datatype()) as usize != len {
                Err(format!("expected {ty}, device {from} sent {} elements", status.count(T::equivalent_datatype())))
            } else {
                tensor_of(ty.dtype, &shape, out)
            }
        });
        r.map_err(|m| self.err(&what, m))
    }
}

impl Endpoint for MpiComm {
    fn device(&self) -> usize {
        self.position
    }
    fn check(&self) -> Result<(), RuntimeError> {
        // A failed rank aborts the whole job; there is nothing to poll.
        Ok(())
    }
}

/// Gathers every device's outputs at device 0 (`gather` over the devices' communicator; every
/// device's output `k` has the program's local type of that output).
fn gather_outputs(
    workers: &SimpleCommunicator,
    program: &Graph,
    outputs: Vec<Tensor>,
) -> Result<Option<Vec<Vec<Tensor>>>, RuntimeError> {
    let n = workers.size() as usize;
    let root = workers.process_at_rank(0);
    let mut per_device: Vec<Vec<Tensor>> = vec![Vec::with_capacity(outputs.len()); n];
    for (k, t) in outputs.into_iter().enumerate() {
        let ty = program.node(program.outputs[k]).ty.clone();
        let shape = usize_dims(&ty)?;
        let r = with_elem!(t.data(), T => flat::<T>(&t).and_then(|src| {
            if workers.rank() == 0 {
                let mut all = vec![T::default(); src.len() * n];
                root.gather_into_root(&src[..], &mut all[..]);
                let len = src.len();
                for (d, dev) in per_device.iter_mut().enumerate() {
                    dev.push(tensor_of(t.dtype(), &shape, all[d * len..(d + 1) * len].to_vec())?);
                }
            } else {
                root.gather_into(&src[..]);
            }
            Ok::<(), String>(())
        }));
        r.map_err(|m| RuntimeError::Invalid(format!("gathering output {k}: {m}")))?;
    }
    Ok((workers.rank() == 0).then_some(per_device))
}

/// Runs `program` with one MPI process per device of `mesh`: this rank's `inputs` in, and at
/// rank 0 every device's outputs (indexed by mesh position) out; `None` on every other rank.
///
/// The job must have `mesh.num_devices()` ranks, plus `reducers` for the Reduction Server
/// (those ranks ignore `inputs` and serve all-reduces until every device is done). On any error
/// or panic this rank prints it, with its rank and op, and aborts the job (exit status 1).
pub fn run_spmd_mpi(
    world: &MpiWorld,
    program: &Graph,
    mesh: &Mesh,
    inputs: Vec<Tensor>,
    algorithm: AllReduceAlgorithm,
) -> Option<Vec<Vec<Tensor>>> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        run_rank(world, program, mesh, inputs, algorithm)
    }));
    match r {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => world.abort(&e.to_string()),
        Err(p) => world.abort(&format!("panicked: {}", crate::mesh::panic_message(p))),
    }
}

fn run_rank(
    world: &MpiWorld,
    program: &Graph,
    mesh: &Mesh,
    inputs: Vec<Tensor>,
    algorithm: AllReduceAlgorithm,
) -> Result<Option<Vec<Vec<Tensor>>>, RuntimeError> {
    let n = mesh.devices.len();
    let reducers = match algorithm {
        AllReduceAlgorithm::Ring => 0,
        AllReduceAlgorithm::ReductionServer { reducers } => reducers,
    };
    let (rank, size) = (world.rank(), world.size());
    if size != n + reducers {
        return Err(RuntimeError::Invalid(format!(
            "the mesh `{mesh}` has {n} devices{}, but mpirun started {size} processes (use -n {})",
            if reducers > 0 {
                format!(" and {reducers} reducers")
            } else {
                String::new()
            },
            n + reducers
        )));
    }
    shardc_ir::verify(program)?;
    let wc = world.universe.world();
    // Devices are colour 0, ranked as the world; reducers take no part in the devices' groups.
    let is_device = rank < n;
    let color = if is_device {
        Color::with_value(0)
    } else {
        Color::undefined()
    };
    let workers = wc.split_by_color_with_key(color, rank as i32);
    let Some(workers) = workers else {
        mpi_reducer::serve(&wc, n, rank - n).map_err(|m| RuntimeError::Device {
            device: rank,
            message: format!("reducer {}: {m}", rank - n),
        })?;
        return Ok(None);
    };
    let server = (reducers > 0).then(|| ServerLink::new(n, reducers));
    let mut comm = MpiComm::new(&workers, mesh, &axis_lists(program), server)?;
    let stage = crate::mesh::Stage {
        program,
        mesh: mesh.clone(),
        devices: (0..n).collect(),
    };
    let stages = [stage];
    let (fail, kill_at) = injected(rank);
    let mut dev = MeshDevice {
        comm: &mut comm,
        stages: &stages,
        fail: fail.as_ref(),
    };
    let outputs = match kill_at {
        Some(node) => run_graph(
            program,
            owned(inputs),
            &program.outputs,
            &mut Killed { dev, node },
        )?,
        None => run_graph(program, owned(inputs), &program.outputs, &mut dev)?,
    };
    if let Some(s) = &comm.server {
        s.done(&comm.world);
    }
    gather_outputs(&workers, program, outputs)
}

/// The test hook `SHARDC_MPI_INJECT`: `error:RANK:NODE` makes rank `RANK` fail before node
/// `NODE` (as `MeshOptions::fail` does on threads), `kill:RANK:NODE` makes it SIGKILL itself
/// there, as a crashed or killed host would. Unset in real runs.
fn injected(rank: usize) -> (Option<InjectedFailure>, Option<String>) {
    let Ok(spec) = std::env::var("SHARDC_MPI_INJECT") else {
        return (None, None);
    };
    let mut it = spec.splitn(3, ':');
    let (kind, r, node) = (
        it.next(),
        it.next().and_then(|r| r.parse::<usize>().ok()),
        it.next(),
    );
    match (kind, r, node) {
        (Some("error"), Some(r), Some(node)) if r == rank => (
            Some(InjectedFailure {
                device: rank,
                node: node.to_string(),
                panic: false,
            }),
            None,
        ),
        (Some("kill"), Some(r), Some(node)) if r == rank => (None, Some(node.to_string())),
        _ => (None, None),
    }
}

/// A device that kills its own process (SIGKILL: no MPI_Abort, no unwinding) before `node`.
struct Killed<'a, 'c> {
    dev: MeshDevice<'a, 'c, MpiComm>,
    node: String,
}

impl DeviceOps for Killed<'_, '_> {
    fn mesh_op(&mut self, node: &Node, operands: Vec<Tensor>) -> Result<Tensor, RuntimeError> {
        self.dev.mesh_op(node, operands)
    }

    fn before_node(&mut self, v: ValueId, node: &Node) -> Result<(), RuntimeError> {
        if node.name == self.node {
            let pid = std::process::id().to_string();
            // `kill` is POSIX; if it is missing, failing loudly still ends the job.
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            std::process::abort();
        }
        self.dev.before_node(v, node)
    }

    fn runs_all_effects(&self) -> bool {
        self.dev.runs_all_effects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_buffer_is_reused_only_for_its_dtype_and_length() {
        let spare = || Tensor::from_f32_vec(&[2, 3], vec![1.0; 6]).unwrap();
        let v = spare_vec::<f32>(Some(spare()), DType::F32, 6).expect("reused");
        assert_eq!(v.len(), 6);
        assert!(spare_vec::<f32>(Some(spare()), DType::F32, 5).is_none());
        assert!(spare_vec::<f32>(Some(spare()), DType::BF16, 6).is_none());
        assert!(spare_vec::<f64>(Some(spare()), DType::F32, 6).is_none());
        assert!(spare_vec::<f32>(None, DType::F32, 6).is_none());
    }
}
