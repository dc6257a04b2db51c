//! The Reduction Server on MPI: reducer ranks that hold no device. For an all-reduce, each
//! device splits its buffer into one flat chunk per reducer and sends chunk `j` to reducer `j`;
//! reducer `j` sums its chunk over the group's members in rank order (as the threads backend's
//! reduction does) and sends the sum back to every member. A device sends `2·S·(R·1/R)` = `2S`
//! bytes whatever the group size, which is the point (REFERENCES.md, Reduction Server).
//!
//! Messages: a header of `u64`s ([`Header`]) and then the chunk, from the same device (MPI does
//! not let messages between one pair of ranks overtake each other).

use std::collections::HashMap;

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use shardc_ir::{DType, ReduceFn};

use crate::mesh::{flat_chunk, reduce_flat, Group};
use crate::tensor::{with_elem, Tensor};

const HEADER_TAG: i32 = 11;
const DATA_TAG: i32 = 12;
const REPLY_TAG: i32 = 13;

/// What a device tells a reducer before sending it a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    /// 0: a chunk follows; 1: this device has finished its program.
    done: bool,
    /// The collective's axis list (index into the program's sorted lists).
    list: u64,
    /// The group's smallest member (with `list`, names the group).
    color: u64,
    /// Group size and this device's rank in it.
    size: u64,
    rank: u64,
    /// The group's call count, pairing up the members' chunks of one all-reduce.
    seq: u64,
    func: ReduceFn,
    dtype: DType,
    len: u64,
}

const FUNCS: [ReduceFn; 3] = [ReduceFn::Sum, ReduceFn::Max, ReduceFn::Min];

impl Header {
    fn encode(&self) -> [u64; 9] {
        let func = FUNCS.iter().position(|&f| f == self.func).unwrap_or(0) as u64;
        let dtype = DType::ALL
            .iter()
            .position(|&d| d == self.dtype)
            .unwrap_or(0) as u64;
        [
            self.done as u64,
            self.list,
            self.color,
            self.size,
            self.rank,
            self.seq,
            func,
            dtype,
            self.len,
        ]
    }

    fn decode(h: &[u64]) -> Result<Header, String> {
        let [done, list, color, size, rank, seq, func, dtype, len] = *h else {
            return Err(format!("a header of {} words, expected 9", h.len()));
        };
        Ok(Header {
            done: done == 1,
            list,
            color,
            size,
            rank,
            seq,
            func: *FUNCS.get(func as usize).ok_or("bad reduction code")?,
            dtype: *DType::ALL.get(dtype as usize).ok_or("bad dtype code")?,
            len,
        })
    }
}

/// A device's link to the reducers (world ranks `devices..devices + reducers`).
pub(crate) struct ServerLink {
    devices: usize,
    reducers: usize,
    /// Calls made so far per group (axis list, colour). Never iterated.
    seqs: HashMap<(usize, usize), u64>,
}

impl ServerLink {
    pub(crate) fn new(devices: usize, reducers: usize) -> ServerLink {
        ServerLink {
            devices,
            reducers,
            seqs: HashMap::new(),
        }
    }

    /// The all-reduce of `x` over group `g` (of axis list `list`) through the reducers.
    pub(crate) fn all_reduce(
        &mut self,
        world: &SimpleCommunicator,
        x: Tensor,
        list: usize,
        g: &Group,
        func: ReduceFn,
    ) -> Result<Tensor, String> {
        if x.dtype() == DType::Bool {
            return Err("cannot reduce bool tensors".into());
        }
        let color = g.members.iter().copied().min().unwrap_or(0);
        let seq = self.seqs.entry((list, color)).or_insert(0);
        let header = Header {
            done: false,
            list: list as u64,
            color: color as u64,
            size: g.members.len() as u64,
            rank: g.rank as u64,
            seq: *seq,
            func,
            dtype: x.dtype(),
            len: x.len() as u64,
        };
        *seq += 1;
        let (len, r) = (x.len(), self.reducers);
        let shape = x.shape().to_vec();
        with_elem!(x.data(), T => {
            let a = crate::kernels::arr::<T>(&x)?.as_standard_layout();
            let src = a.as_slice().ok_or("a standard-layout array is contiguous (invariant)")?;
            let mut out = vec![T::default(); len];
            mpi::request::scope(|scope| {
                // Post every reply's receive before sending, so that a reducer's reply never
                // waits on a device that is still sending.
                let mut rest = &mut out[..];
                let mut recvs = Vec::with_capacity(r);
                for j in 0..r {
                    let (mine, tail) = rest.split_at_mut(flat_chunk(len, r, j).len());
                    rest = tail;
                    let reducer = world.process_at_rank((self.devices + j) as i32);
                    recvs.push(reducer.immediate_receive_into_with_tag(scope, mine, REPLY_TAG));
                }
                let words = header.encode();
                let mut sends = Vec::with_capacity(r);
                for j in 0..r {
                    let reducer = world.process_at_rank((self.devices + j) as i32);
                    reducer.send_with_tag(&words[..], HEADER_TAG);
                    let chunk = &src[flat_chunk(len, r, j)];
                    sends.push(reducer.immediate_send_with_tag(scope, chunk, DATA_TAG));
                }
                for q in sends {
                    q.wait();
                }
                for q in recvs {
                    q.wait();
                }
            });
            let arr = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), out)
                .map_err(|e| format!("result shape: {e}"))?;
            Ok(Tensor::from_data(x.dtype(), <T as crate::tensor::Elem>::into_data(arr)))
        })
    }

    /// Tells every reducer that this device has finished.
    pub(crate) fn done(&self, world: &SimpleCommunicator) {
        let header = Header {
            done: true,
            list: 0,
            color: 0,
            size: 0,
            rank: 0,
            seq: 0,
            func: ReduceFn::Sum,
            dtype: DType::F32,
            len: 0,
        };
        for j in 0..self.reducers {
            world
                .process_at_rank((self.devices + j) as i32)
                .send_with_tag(&header.encode()[..], HEADER_TAG);
        }
    }
}

/// One all-reduce a reducer is collecting: each member's chunk (by group rank) and world rank.
struct Pending {
    parts: Vec<Option<Tensor>>,
    sources: Vec<i32>,
}

/// The reducer loop: serves all-reduces until each of the `devices` has said it is done.
pub(crate) fn serve(
    world: &SimpleCommunicator,
    devices: usize,
    _index: usize,
) -> Result<(), String> {
    let mut done = 0;
    // Keyed by (axis list, colour, seq). Never iterated.
    let mut pending: HashMap<(u64, u64, u64), Pending> = HashMap::new();
    while done < devices {
        let (words, status) = world.any_process().receive_vec_with_tag::<u64>(HEADER_TAG);
        let h = Header::decode(&words)?;
        let src = status.source_rank();
        if h.done {
            done += 1;
            continue;
        }
        let peer = world.process_at_rank(src);
        let probe = Tensor::full(&shardc_ir::TensorType::new(h.dtype, vec![0]), 0.0)
            .map_err(|e| e.to_string())?;
        let part = with_elem!(probe.data(), T => {
            let (v, _) = peer.receive_vec_with_tag::<T>(DATA_TAG);
            let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[v.len()]), v)
                .map_err(|e| e.to_string())?;
            Tensor::from_data(h.dtype, <T as crate::tensor::Elem>::into_data(a))
        });
        let key = (h.list, h.color, h.seq);
        let n = h.size as usize;
        let p = pending.entry(key).or_insert_with(|| Pending {
            parts: vec![None; n],
            sources: vec![-1; n],
        });
        let slot = p
            .parts
            .get_mut(h.rank as usize)
            .ok_or_else(|| format!("device {src} claims rank {} of a group of {n}", h.rank))?;
        *slot = Some(part);
        p.sources[h.rank as usize] = src;
        if p.parts.iter().any(Option::is_none) {
            continue;
        }
        // invariant: the entry was just completed.
        let p = pending.remove(&key).expect("invariant: the entry exists");
        let parts: Vec<&Tensor> = p.parts.iter().flatten().collect();
        let len = parts[0].len();
        let sum = reduce_flat(&parts, h.func, 0..len, None)?;
        with_elem!(sum.data(), T => {
            let a = crate::kernels::arr::<T>(&sum)?;
            let s = a.as_slice().ok_or("a fresh 1-D result is contiguous (invariant)")?;
            for &dst in &p.sources {
                world.process_at_rank(dst).send_with_tag(s, REPLY_TAG);
            }
        });
    }
    Ok(())
}
