//! Collectives on GPU memory through NCCL (`cudarc::nccl`), for one process per GPU.
//!
//! One communicator per mesh-axis group, made when the program first uses that group: the
//! group's first member creates an NCCL unique id and shares it through an [`NcclIds`]
//! exchange (a directory of files, [`FileIds`]; an MPI broadcast is the other implementation,
//! see [`NcclIds`]); then every member calls `ncclCommInitRank` with its rank in the group.
//! Send/recv between pipeline stages use one more communicator over every device.
//!
//! NCCL collectives concatenate and split along the leading dim, so collectives over another
//! dim permute on the GPU first (or after): all-gather gathers `[ranks, x]` and moves the rank
//! axis next to `dim`; reduce-scatter and all-to-all move the chunk axis first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cudarc::driver::{DevicePtr, DevicePtrMut};
use cudarc::nccl::{result as nr, sys as ns};
use shardc_ir::{DType, Mesh, Node, Op, ReduceFn, TensorType};

use super::device::{cuda_error, DeviceTensor, Gpu};
use super::exec::GpuMesh;
use super::layout::permute;
use super::staged::{axis_index, peer};
use crate::error::RuntimeError;
use crate::mesh::group;

/// How the members of a group agree on an NCCL unique id (128 bytes).
///
/// The leader (`leader == true`, the group's first member) passes the id it created; the others
/// pass `None` and get the leader's. `key` names the group and is the same on every member.
/// MPI hook: an MPI build implements this with a broadcast from the leader over the group's
/// ranks (`MPI_Bcast` of the 128 bytes), and passes it to [`NcclMesh::new`].
pub trait NcclIds {
    /// Shares the unique id of group `key`.
    fn share(
        &mut self,
        key: &str,
        leader: bool,
        id: Option<[u8; 128]>,
    ) -> Result<[u8; 128], RuntimeError>;
}

/// Unique ids shared through files in a directory that every process sees (fresh per run: a
/// file left from an earlier run would be read as this run's id).
pub struct FileIds {
    /// The directory.
    pub dir: PathBuf,
    /// How long a member waits for the leader's file.
    pub timeout: Duration,
}

impl NcclIds for FileIds {
    fn share(
        &mut self,
        key: &str,
        leader: bool,
        id: Option<[u8; 128]>,
    ) -> Result<[u8; 128], RuntimeError> {
        let path = self.dir.join(format!("{key}.ncclid"));
        let io = |what: &str, e: std::io::Error| {
            RuntimeError::Invalid(format!("NCCL id file {}: {what}: {e}", path.display()))
        };
        if leader {
            let id = id.ok_or_else(|| {
                RuntimeError::Invalid("the leader has no NCCL id (invariant)".into())
            })?;
            // Write then rename, so that a reader never sees half a file.
            let tmp = self.dir.join(format!("{key}.ncclid.tmp"));
            std::fs::write(&tmp, id).map_err(|e| io("write", e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io("rename", e))?;
            return Ok(id);
        }
        let start = Instant::now();
        loop {
            if let Ok(bytes) = std::fs::read(&path) {
                return <[u8; 128]>::try_from(bytes.as_slice()).map_err(|_| {
                    RuntimeError::Invalid(format!(
                        "NCCL id file {} has {} bytes, expected 128",
                        path.display(),
                        bytes.len()
                    ))
                });
            }
            if start.elapsed() > self.timeout {
                return Err(RuntimeError::Invalid(format!(
                    "waited {} s for the NCCL id file {}",
                    self.timeout.as_secs(),
                    path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An NCCL communicator, destroyed on drop.
struct Comm {
    raw: ns::ncclComm_t,
    ranks: usize,
    rank: usize,
}

impl Drop for Comm {
    fn drop(&mut self) {
        // SAFETY: `raw` came from a successful ncclCommInitRank and is destroyed once, here.
        let _ = unsafe { nr::comm_destroy(self.raw) };
    }
}

fn nccl_error(what: &str, e: nr::NcclError) -> RuntimeError {
    cuda_error(&format!("NCCL {what}"), format!("{e:?}"))
}

fn nccl_type(d: DType) -> Result<ns::ncclDataType_t, RuntimeError> {
    use ns::ncclDataType_t as T;
    Ok(match d {
        DType::F32 => T::ncclFloat32,
        DType::F64 => T::ncclFloat64,
        DType::F16 => T::ncclFloat16,
        DType::BF16 => T::ncclBfloat16,
        DType::I32 => T::ncclInt32,
        // Unsigned values are held as i64 on the device, as on the host.
        DType::I64 | DType::U32 | DType::U64 => T::ncclInt64,
        DType::Bool => T::ncclUint8,
    })
}

fn nccl_op(f: ReduceFn) -> ns::ncclRedOp_t {
    match f {
        ReduceFn::Sum => ns::ncclRedOp_t::ncclSum,
        ReduceFn::Max => ns::ncclRedOp_t::ncclMax,
        ReduceFn::Min => ns::ncclRedOp_t::ncclMin,
    }
}

/// One process's GPU rank in a mesh whose collectives run through NCCL.
pub struct NcclMesh {
    mesh: Mesh,
    position: usize,
    /// Global device ids per pipeline stage position (one stage: `0..n`).
    stages: Vec<Vec<usize>>,
    ids: Box<dyn NcclIds>,
    comms: BTreeMap<Vec<String>, Comm>,
    world: Option<Comm>,
}

impl NcclMesh {
    /// The rank at `position` of `mesh` (SPMD: global device id = position), sharing unique ids
    /// through `ids`. Fails clearly when NCCL cannot be opened.
    pub fn new(
        mesh: Mesh,
        position: usize,
        ids: Box<dyn NcclIds>,
    ) -> Result<NcclMesh, RuntimeError> {
        super::device::probe_nccl()?;
        let n = mesh.devices.len();
        if position >= n {
            return Err(RuntimeError::Invalid(format!(
                "position {position} is outside the mesh `{mesh}` of {n} devices"
            )));
        }
        Ok(NcclMesh {
            stages: vec![(0..n).collect()],
            mesh,
            position,
            ids,
            comms: BTreeMap::new(),
            world: None,
        })
    }

    fn init(&mut self, key: &str, members: usize, rank: usize) -> Result<Comm, RuntimeError> {
        let leader = rank == 0;
        let mine = if leader {
            let id = nr::get_uniqueid().map_err(|e| nccl_error("get unique id", e))?;
            Some(id.internal.map(|c| c as u8))
        } else {
            None
        };
        let bytes = self.ids.share(key, leader, mine)?;
        let id = ns::ncclUniqueId {
            internal: bytes.map(|b| b as ::core::ffi::c_char),
        };
        let mut raw = std::mem::MaybeUninit::uninit();
        // SAFETY: `raw` is written by ncclCommInitRank on success and read only then.
        let raw = unsafe {
            nr::comm_init_rank(raw.as_mut_ptr(), members as i32, id, rank as i32)
                .map_err(|e| nccl_error(&format!("init of group {key}"), e))?;
            raw.assume_init()
        };
        Ok(Comm {
            raw,
            ranks: members,
            rank,
        })
    }

    /// The communicator of the group along `axes` that this rank belongs to.
    fn comm(&mut self, axes: &[String]) -> Result<&Comm, RuntimeError> {
        if !self.comms.contains_key(axes) {
            let g = group(&self.mesh, self.position, axes).map_err(RuntimeError::Invalid)?;
            let key = format!("axes-{}-lead-{}", axes.join("+"), g.members[0]);
            let c = self.init(&key, g.members.len(), g.rank)?;
            self.comms.insert(axes.to_vec(), c);
        }
        self.comms
            .get(axes)
            .ok_or_else(|| RuntimeError::Invalid("communicator missing (invariant)".into()))
    }

    fn world(&mut self) -> Result<&Comm, RuntimeError> {
        if self.world.is_none() {
            let n = self.stages.iter().map(Vec::len).sum();
            let me = self.stages[0]
                .get(self.position)
                .copied()
                .unwrap_or(self.position);
            self.world = Some(self.init("world", n, me)?);
        }
        self.world
            .as_ref()
            .ok_or_else(|| RuntimeError::Invalid("world communicator missing (invariant)".into()))
    }
}

/// `x` with dim `d` split as `[ranks, d / ranks]` and the rank part moved first.
fn ranks_first(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    d: usize,
    ranks: u64,
) -> Result<DeviceTensor, RuntimeError> {
    let dims = x.ty.dims();
    if ranks == 0 || dims[d] % ranks != 0 {
        return Err(cuda_error(
            "NCCL",
            format!("dim {d} of {} does not split into {ranks} chunks", x.ty),
        ));
    }
    let mut split: Vec<u64> = dims[..d].to_vec();
    split.push(ranks);
    split.push(dims[d] / ranks);
    split.extend_from_slice(&dims[d + 1..]);
    let view = gpu.clone_as(x, &TensorType::new(x.ty.dtype, split))?;
    let perm: Vec<usize> = std::iter::once(d)
        .chain((0..d).chain(d + 1..dims.len() + 1))
        .collect();
    permute(gpu, &view, &perm)
}

/// `[ranks, x...]` with the rank axis merged into dim `d` (major), as type `ty`.
fn ranks_into(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    d: usize,
    ty: &TensorType,
) -> Result<DeviceTensor, RuntimeError> {
    let r = x.ty.rank();
    let perm: Vec<usize> = (1..=d).chain(std::iter::once(0)).chain(d + 1..r).collect();
    let moved = permute(gpu, x, &perm)?;
    gpu.clone_as(&moved, ty)
}

fn with_ranks(ranks: u64, ty: &TensorType) -> TensorType {
    TensorType::new(
        ty.dtype,
        std::iter::once(ranks)
            .chain(ty.dims().iter().copied())
            .collect::<Vec<_>>(),
    )
}

impl GpuMesh for NcclMesh {
    fn mesh_op(
        &mut self,
        gpu: &mut Gpu,
        node: &Node,
        operands: Vec<DeviceTensor>,
    ) -> Result<DeviceTensor, RuntimeError> {
        let x = operands.into_iter().next();
        let x =
            || x.ok_or_else(|| RuntimeError::node(&node.name, node.op.name(), "missing operand"));
        let stream = gpu.stream.clone();
        let cu = stream.cu_stream() as ns::cudaStream_t;
        let ty = node.ty.clone();
        match &node.op {
            Op::AxisIndex { axes } => {
                gpu.upload(&axis_index(&self.mesh, self.position, axes, node)?)
            }
            Op::AllReduce { axes, func } => {
                let x = x()?;
                let c = self.comm(axes)?;
                let mut out = gpu.alloc(&ty)?;
                let (s, _s) = x.buf.device_ptr(&stream);
                let (r, _r) = out.buf.device_ptr_mut(&stream);
                // SAFETY: both buffers hold `len` elements of the dtype, on this stream.
                unsafe {
                    nr::all_reduce(
                        s as _,
                        r as _,
                        x.len() as usize,
                        nccl_type(ty.dtype)?,
                        nccl_op(*func),
                        c.raw,
                        cu,
                    )
                }
                .map_err(|e| nccl_error("all-reduce", e))?;
                drop((_s, _r));
                Ok(out)
            }
            Op::AllGather { dim, axes } => {
                let x = x()?;
                let ranks = self.comm(axes)?.ranks as u64;
                let mut gathered = gpu.alloc(&with_ranks(ranks, &x.ty))?;
                let c = self.comm(axes)?;
                let (s, _s) = x.buf.device_ptr(&stream);
                let (r, _r) = gathered.buf.device_ptr_mut(&stream);
                // SAFETY: the receive buffer holds `ranks` times the send buffer's elements.
                unsafe {
                    nr::all_gather(
                        s as _,
                        r as _,
                        x.len() as usize,
                        nccl_type(ty.dtype)?,
                        c.raw,
                        cu,
                    )
                }
                .map_err(|e| nccl_error("all-gather", e))?;
                drop((_s, _r));
                ranks_into(gpu, &gathered, *dim, &ty)
            }
            Op::ReduceScatter { dim, axes, func } => {
                let x = x()?;
                let ranks = self.comm(axes)?.ranks as u64;
                let chunks = ranks_first(gpu, &x, *dim, ranks)?;
                let mut out = gpu.alloc(&ty)?;
                let count = out.len() as usize;
                let c = self.comm(axes)?;
                let (s, _s) = chunks.buf.device_ptr(&stream);
                let (r, _r) = out.buf.device_ptr_mut(&stream);
                // SAFETY: the send buffer holds `ranks` chunks of the result's element count.
                unsafe {
                    nr::reduce_scatter(
                        s as _,
                        r as _,
                        count,
                        nccl_type(ty.dtype)?,
                        nccl_op(*func),
                        c.raw,
                        cu,
                    )
                }
                .map_err(|e| nccl_error("reduce-scatter", e))?;
                drop((_s, _r));
                Ok(out)
            }
            Op::AllToAll {
                split_dim,
                concat_dim,
                axes,
            } => {
                let x = x()?;
                let ranks = self.comm(axes)?.ranks as u64;
                let chunks = ranks_first(gpu, &x, *split_dim, ranks)?;
                let mut got = gpu.alloc(&chunks.ty)?;
                let chunk = (chunks.len() / ranks.max(1)) as usize;
                let bytes = chunk * super::codegen::storage_bytes(ty.dtype);
                let dt = nccl_type(ty.dtype)?;
                let c = self.comm(axes)?;
                let (s, _s) = chunks.buf.device_ptr(&stream);
                let (r, _r) = got.buf.device_ptr_mut(&stream);
                nr::group_start().map_err(|e| nccl_error("group start", e))?;
                for p in 0..c.ranks {
                    let off = (p * bytes) as u64;
                    // SAFETY: chunk `p` of both buffers lies within them (ranks × chunk elements).
                    unsafe {
                        nr::send((s + off) as _, chunk, dt, p as i32, c.raw, cu)
                            .map_err(|e| nccl_error("send", e))?;
                        nr::recv((r + off) as _, chunk, dt, p as i32, c.raw, cu)
                            .map_err(|e| nccl_error("recv", e))?;
                    }
                }
                nr::group_end().map_err(|e| nccl_error("group end", e))?;
                drop((_s, _r));
                // Slot p holds rank p's chunk; joining the slots along `concat_dim` (rank
                // major) gives the result type.
                ranks_into(gpu, &got, *concat_dim, &ty)
            }
            Op::CollectivePermute { axes, pairs } => {
                let x = x()?;
                let mut out = gpu.alloc(&ty)?;
                let c = self.comm(axes)?;
                let me = c.rank as u64;
                let dt = nccl_type(ty.dtype)?;
                let n = x.len() as usize;
                let (s, _s) = x.buf.device_ptr(&stream);
                let (r, _r) = out.buf.device_ptr_mut(&stream);
                nr::group_start().map_err(|e| nccl_error("group start", e))?;
                for &(from, to) in pairs {
                    // SAFETY: send and receive buffers hold `n` elements each.
                    unsafe {
                        if from == me {
                            nr::send(s as _, n, dt, to as i32, c.raw, cu)
                                .map_err(|e| nccl_error("send", e))?;
                        }
                        if to == me {
                            nr::recv(r as _, n, dt, from as i32, c.raw, cu)
                                .map_err(|e| nccl_error("recv", e))?;
                        }
                    }
                }
                nr::group_end().map_err(|e| nccl_error("group end", e))?;
                drop((_s, _r));
                Ok(out)
            }
            Op::Send { to_stage, .. } => {
                let x = x()?;
                let to = peer(&self.stages, *to_stage, self.position, node)?;
                let n = x.len() as usize;
                let dt = nccl_type(ty.dtype)?;
                let w = self.world()?;
                let (s, _s) = x.buf.device_ptr(&stream);
                // SAFETY: the buffer holds `n` elements; the peer posts the matching recv.
                unsafe { nr::send(s as _, n, dt, to as i32, w.raw, cu) }
                    .map_err(|e| nccl_error("send", e))?;
                drop(_s);
                Ok(x)
            }
            Op::Recv { from_stage, .. } => {
                let from = peer(&self.stages, *from_stage, self.position, node)?;
                let mut out = gpu.alloc(&ty)?;
                let n = out.len() as usize;
                let dt = nccl_type(ty.dtype)?;
                let w = self.world()?;
                let (r, _r) = out.buf.device_ptr_mut(&stream);
                // SAFETY: the buffer holds `n` elements of the type the sender sends.
                unsafe { nr::recv(r as _, n, dt, from as i32, w.raw, cu) }
                    .map_err(|e| nccl_error("recv", e))?;
                drop(_r);
                Ok(out)
            }
            _ => Err(RuntimeError::node(
                &node.name,
                node.op.name(),
                "not a mesh op (invariant)",
            )),
        }
    }
}
