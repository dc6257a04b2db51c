//! Collective cost: alpha-beta models per algorithm (REFERENCES.md, "Collectives"), over the links
//! the group's placement crosses, and the cheapest algorithm for each collective.
//!
//! `n` ranks, `S` bytes of the full buffer (nccl-tests' "size": the all-reduce buffer, the
//! gathered result, the scattered input), `α` seconds per step, `β = 1/bandwidth`.

use serde::{Deserialize, Serialize};
use shardc_ir::{Mesh, Op};

use crate::cluster::{Cluster, GroupPlacement, LinkCost};
use crate::comm::CommUse;
use crate::error::{CostError, Result};

/// The collectives of the IR, as the cost model distinguishes them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectiveKind {
    AllReduce,
    AllGather,
    ReduceScatter,
    AllToAll,
    /// collective_permute and pipeline send/recv: each device sends its buffer to one peer.
    Permute,
}

impl CollectiveKind {
    /// The kind of an IR collective op (`None` for other ops).
    pub fn of(op: &Op) -> Option<Self> {
        Some(match op {
            Op::AllReduce { .. } => CollectiveKind::AllReduce,
            Op::AllGather { .. } => CollectiveKind::AllGather,
            Op::ReduceScatter { .. } => CollectiveKind::ReduceScatter,
            Op::AllToAll { .. } => CollectiveKind::AllToAll,
            Op::CollectivePermute { .. } | Op::Send { .. } | Op::Recv { .. } => {
                CollectiveKind::Permute
            }
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CollectiveKind::AllReduce => "all_reduce",
            CollectiveKind::AllGather => "all_gather",
            CollectiveKind::ReduceScatter => "reduce_scatter",
            CollectiveKind::AllToAll => "all_to_all",
            CollectiveKind::Permute => "permute",
        }
    }
}

/// How a collective is carried out.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Over the group's slowest link; nothing to do for a group of one.
    Local,
    Ring,
    /// Double binary tree (NCCL): log-depth latency, all-reduce only.
    Tree,
    /// Two levels: inside each node over the scale-up link, across nodes on 1/g of the data.
    Hierarchical,
    /// All-to-all as n−1 pairwise exchanges.
    Pairwise,
    PointToPoint,
    /// Workers push shards to CPU reducer nodes and pull the sums (Vertex AI Reduction Server).
    ReductionServer,
    /// A measured time from the calibration profile.
    Measured,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Local => "local",
            Algorithm::Ring => "ring",
            Algorithm::Tree => "tree",
            Algorithm::Hierarchical => "hierarchical",
            Algorithm::Pairwise => "pairwise",
            Algorithm::PointToPoint => "point_to_point",
            Algorithm::ReductionServer => "reduction_server",
            Algorithm::Measured => "measured",
        }
    }
}

/// The price of one collective.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct CollectiveCost {
    pub kind: CollectiveKind,
    pub algorithm: Algorithm,
    pub seconds: f64,
    /// `S`: bytes of the full buffer.
    pub bytes: f64,
    pub ranks: u64,
}

/// Ring all-reduce: `2(n−1)·α + 2(n−1)/n·S·β`.
pub fn ring_all_reduce(n: u64, s: f64, link: LinkCost) -> f64 {
    let n = n as f64;
    link.time(2.0 * (n - 1.0), 2.0 * (n - 1.0) / n * s)
}

/// Ring all-gather or reduce-scatter (and pairwise all-to-all): `(n−1)·α + (n−1)/n·S·β`.
pub fn ring_gather(n: u64, s: f64, link: LinkCost) -> f64 {
    let n = n as f64;
    link.time(n - 1.0, (n - 1.0) / n * s)
}

/// Double binary tree all-reduce: `2·⌈log2 n⌉·α + 2·S·β` (each rank sends and receives the
/// buffer up one tree and down the other, halves in each).
pub fn tree_all_reduce(n: u64, s: f64, link: LinkCost) -> f64 {
    let depth = (n as f64).log2().ceil();
    link.time(2.0 * depth, 2.0 * s)
}

/// The bus bandwidth of nccl-tests: `algbw = S/t`, times `2(n−1)/n` for all-reduce and `(n−1)/n`
/// for all-gather, reduce-scatter and all-to-all; a point-to-point's bus bandwidth is its algbw.
pub fn bus_bandwidth(kind: CollectiveKind, n: u64, s: f64, seconds: f64) -> f64 {
    let n = n as f64;
    let algbw = s / seconds;
    match kind {
        CollectiveKind::AllReduce => algbw * 2.0 * (n - 1.0) / n,
        CollectiveKind::AllGather | CollectiveKind::ReduceScatter | CollectiveKind::AllToAll => {
            algbw * (n - 1.0) / n
        }
        CollectiveKind::Permute => algbw,
    }
}

/// Every algorithm that can carry `kind` on `place`, with its time. `concurrent` is how many
/// devices run such a collective at once (the whole mesh, for SPMD programs): Reduction Server
/// reducers are shared among all of them.
pub fn algorithms(
    kind: CollectiveKind,
    s: f64,
    place: GroupPlacement,
    concurrent: u64,
    cluster: &Cluster,
) -> Vec<(Algorithm, f64)> {
    let n = place.ranks;
    if n <= 1 || s <= 0.0 {
        return vec![(Algorithm::Local, 0.0)];
    }
    let up = cluster.scale_up();
    // A flat algorithm proceeds at the pace of its slowest link: the network share of the
    // group's members on each node once it crosses nodes.
    let flat = if place.crosses_nodes() {
        cluster.network_for(place.per_node)
    } else {
        up
    };
    let net = cluster.network_per_device();
    let (g, k) = (place.per_node, place.nodes);
    let two_level = place.crosses_nodes() && g > 1;
    let mut out = Vec::new();
    match kind {
        CollectiveKind::AllReduce => {
            out.push((Algorithm::Ring, ring_all_reduce(n, s, flat)));
            if place.crosses_nodes() {
                // NCCL builds trees only across nodes; inside one it runs rings.
                out.push((Algorithm::Tree, tree_all_reduce(n, s, flat)));
            }
            if two_level {
                // Reduce-scatter in the node, all-reduce S/g across nodes, all-gather in the node.
                let t = 2.0 * ring_gather(g, s, up) + ring_all_reduce(k, s / g as f64, net);
                out.push((Algorithm::Hierarchical, t));
            }
            if let (Some(r), true) = (&cluster.reducers, place.crosses_nodes()) {
                // Each worker pushes its S/g shard and pulls the sum (S/g each way, full duplex);
                // the reducers receive and send every worker's shard.
                let shard = s / g as f64;
                let worker = net.time(2.0, shard);
                let reducer_bw = r.nodes as f64 * r.nic_bandwidth_bytes_per_s;
                let reducers = 2.0 * r.latency_s + concurrent as f64 * shard / reducer_bw;
                let inner = if g > 1 {
                    2.0 * ring_gather(g, s, up)
                } else {
                    0.0
                };
                out.push((Algorithm::ReductionServer, inner + worker.max(reducers)));
            }
        }
        CollectiveKind::AllGather | CollectiveKind::ReduceScatter => {
            out.push((Algorithm::Ring, ring_gather(n, s, flat)));
            if two_level {
                // Across nodes on S/g (each member with its local rank's peers), then in the node.
                let t = ring_gather(k, s / g as f64, net) + ring_gather(g, s, up);
                out.push((Algorithm::Hierarchical, t));
            }
        }
        CollectiveKind::AllToAll => {
            // Each rank sends S/n to every other: (n−g)/n·S leaves the node over the NICs and
            // (g−1)/n·S stays on the scale-up link, both at once.
            let t = if place.crosses_nodes() {
                let nf = n as f64;
                let inter = (nf - g as f64) / nf * s / net.bytes_per_s;
                let intra = (g as f64 - 1.0) / nf * s / up.bytes_per_s;
                (nf - 1.0) * net.alpha_s + inter.max(intra)
            } else {
                ring_gather(n, s, up)
            };
            out.push((Algorithm::Pairwise, t));
        }
        CollectiveKind::Permute => {
            let link = if place.crosses_nodes() { net } else { up };
            out.push((Algorithm::PointToPoint, link.time(1.0, s)));
        }
    }
    out
}

/// The cheapest way to run `kind` on `S` bytes over `place` (or its measured time).
pub fn price(
    kind: CollectiveKind,
    s: f64,
    place: GroupPlacement,
    concurrent: u64,
    cluster: &Cluster,
) -> CollectiveCost {
    let cost = |algorithm, seconds| CollectiveCost {
        kind,
        algorithm,
        seconds,
        bytes: s,
        ranks: place.ranks,
    };
    if let Some(t) = cluster.calibration.measured_collective(kind, place, s) {
        return cost(Algorithm::Measured, t);
    }
    algorithms(kind, s, place, concurrent, cluster)
        .into_iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(a, t)| cost(a, t))
        // invariant: `algorithms` returns at least one entry for every kind.
        .expect("invariant: every collective has an algorithm")
}

/// `S` of a `CommUse`: the full buffer, from the per-device operand.
pub fn buffer_bytes(c: &CommUse, ranks: u64) -> f64 {
    let local = c.local_operand.size_bytes() as f64;
    match c.op {
        Op::AllGather { .. } => local * ranks as f64,
        _ => local,
    }
}

/// Prices one collective a sharded graph needs, over the links its mesh axes map to.
pub fn collective_time(c: &CommUse, mesh: &Mesh, cluster: &Cluster) -> Result<CollectiveCost> {
    let kind = CollectiveKind::of(&c.op).ok_or_else(|| {
        CostError::Mismatch(format!(
            "CommUse for {}: `{}` is not a collective",
            c.node,
            c.op.name()
        ))
    })?;
    let place = cluster.placement(mesh, &c.op.collective_axes())?;
    let s = buffer_bytes(c, place.ranks);
    Ok(price(kind, s, place, mesh.num_devices(), cluster))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;
    use shardc_ir::{DType, ReduceFn, TensorType, ValueId};

    fn cluster(spec: &str) -> Cluster {
        Cluster::parse(spec, &Catalog::builtin()).unwrap()
    }

    fn all_reduce(axes: &[&str], ty: TensorType) -> CommUse {
        CommUse {
            node: ValueId(0),
            op: Op::AllReduce {
                axes: axes.iter().map(|a| a.to_string()).collect(),
                func: ReduceFn::Sum,
            },
            local_operand: ty,
            reason: "test".into(),
        }
    }

    #[test]
    fn ring_all_reduce_matches_the_alpha_beta_formula() {
        let link = LinkCost {
            alpha_s: 5e-6,
            bytes_per_s: 240e9,
        };
        // n=8, S=1 GiB: 14 steps of 5 µs + 2·7/8·2^30 / 240e9 s.
        let s = (1u64 << 30) as f64;
        let expect = 14.0 * 5e-6 + 1.75 * s / 240e9;
        assert!((ring_all_reduce(8, s, link) - expect).abs() < 1e-15);
        assert!((expect - 0.0078995).abs() < 1e-6);
        // Its bus bandwidth tends to the link bandwidth for large buffers.
        let big = 1e12;
        let bw = bus_bandwidth(
            CollectiveKind::AllReduce,
            8,
            big,
            ring_all_reduce(8, big, link),
        );
        assert!((bw / 240e9 - 1.0).abs() < 1e-5, "{bw}");
    }

    #[test]
    fn bus_bandwidth_follows_nccl_tests() {
        // 1 GB all-reduce over 8 ranks in 10 ms: algbw 100 GB/s, busbw 175 GB/s.
        assert!((bus_bandwidth(CollectiveKind::AllReduce, 8, 1e9, 0.01) - 175e9).abs() < 1.0);
        assert!((bus_bandwidth(CollectiveKind::AllGather, 8, 1e9, 0.01) - 87.5e9).abs() < 1.0);
    }

    #[test]
    fn tensor_parallel_all_reduce_uses_nvlink_ring() {
        let c = cluster("a100-80gb:32x8");
        let mesh: Mesh = "dp=32,tp=8".parse().unwrap();
        // b·s·h = 1·2048·6144 bf16 = 25.2 MB.
        let use_ = all_reduce(&["tp"], TensorType::new(DType::BF16, vec![2048, 6144]));
        let cost = collective_time(&use_, &mesh, &c).unwrap();
        let s = 2048.0 * 6144.0 * 2.0;
        assert_eq!(cost.algorithm, Algorithm::Ring);
        assert_eq!(cost.bytes, s);
        let expect = 14.0 * 5e-6 + 1.75 * s / 240e9;
        assert!((cost.seconds - expect).abs() < 1e-12, "{}", cost.seconds);
    }

    #[test]
    fn data_parallel_all_reduce_across_nodes_uses_the_network_share() {
        let c = cluster("a100-80gb:32x8");
        let mesh: Mesh = "dp=32,tp=8".parse().unwrap();
        let use_ = all_reduce(&["dp"], TensorType::new(DType::BF16, vec![1 << 30]));
        let cost = collective_time(&use_, &mesh, &c).unwrap();
        // One member per node: a flat ring at 25 GB/s x 0.9 per device.
        let s = (2u64 << 30) as f64;
        let expect = ring_all_reduce(
            32,
            s,
            LinkCost {
                alpha_s: 8e-6,
                bytes_per_s: 22.5e9,
            },
        );
        assert_eq!(cost.algorithm, Algorithm::Ring);
        assert!((cost.seconds - expect).abs() < 1e-9);
    }

    #[test]
    fn a_thin_network_makes_the_two_level_all_reduce_cheapest() {
        // 8 nodes of 8 with one 100 Gb/s NIC each: reduce-scatter on NVLink, all-reduce 1/8 of the
        // data across nodes (2·7/8 of it instead of the flat ring's 2·63/64), all-gather.
        let mut c = cluster("a2-highgpu-8g-reduction-server");
        c.reducers = None;
        let mesh: Mesh = "dp=64".parse().unwrap();
        let use_ = all_reduce(&["dp"], TensorType::new(DType::BF16, vec![1 << 28]));
        let cost = collective_time(&use_, &mesh, &c).unwrap();
        assert_eq!(cost.algorithm, Algorithm::Hierarchical);
        let s = (1u64 << 29) as f64;
        let expect = 2.0 * ring_gather(8, s, c.scale_up())
            + ring_all_reduce(8, s / 8.0, c.network_per_device());
        assert!((cost.seconds - expect).abs() < 1e-12);
    }

    #[test]
    fn small_buffers_across_many_nodes_take_the_tree() {
        let tiny = all_reduce(&["dp"], TensorType::new(DType::F32, vec![16]));
        let mesh64: Mesh = "dp=64".parse().unwrap();
        let c = cluster("a100-80gb:64x1");
        assert_eq!(
            collective_time(&tiny, &mesh64, &c).unwrap().algorithm,
            Algorithm::Tree
        );
    }

    #[test]
    fn reduction_server_wins_on_a_thin_network_with_reducers() {
        // Vertex AI case: 8 a2-highgpu-8g workers at 100 Gb/s each, 20 reducers at 32 Gb/s.
        let c = cluster("a2-highgpu-8g-reduction-server");
        let mesh: Mesh = "dp=64".parse().unwrap();
        // BERT-large gradients, 340M parameters in fp16.
        let grads = all_reduce(&["dp"], TensorType::new(DType::F16, vec![340_000_000]));
        let with = collective_time(&grads, &mesh, &c).unwrap();
        assert_eq!(with.algorithm, Algorithm::ReductionServer);
        let mut without = c.clone();
        without.reducers = None;
        let plain = collective_time(&grads, &mesh, &without).unwrap();
        assert_eq!(plain.algorithm, Algorithm::Hierarchical);
        assert!(
            with.seconds < plain.seconds / 1.3,
            "{} vs {}",
            with.seconds,
            plain.seconds
        );
    }

    #[test]
    fn every_ir_collective_has_a_price_and_a_group_of_one_is_free() {
        let c = cluster("a100-80gb:2x8");
        let mesh: Mesh = "pp=2,tp=8".parse().unwrap();
        let ty = TensorType::new(DType::BF16, vec![64, 1024]);
        let ops = [
            Op::AllGather {
                dim: 0,
                axes: vec!["tp".into()],
            },
            Op::ReduceScatter {
                dim: 0,
                axes: vec!["tp".into()],
                func: ReduceFn::Sum,
            },
            Op::AllToAll {
                split_dim: 0,
                concat_dim: 1,
                axes: vec!["tp".into()],
            },
            Op::CollectivePermute {
                axes: vec!["pp".into()],
                pairs: vec![(0, 1)],
            },
        ];
        for op in ops {
            let u = CommUse {
                node: ValueId(1),
                op,
                local_operand: ty.clone(),
                reason: String::new(),
            };
            let cost = collective_time(&u, &mesh, &c).unwrap();
            assert!(cost.seconds > 0.0, "{cost:?}");
        }
        let ag = CommUse {
            node: ValueId(1),
            op: Op::AllGather {
                dim: 0,
                axes: vec!["tp".into()],
            },
            local_operand: ty.clone(),
            reason: String::new(),
        };
        assert_eq!(
            collective_time(&ag, &mesh, &c).unwrap().bytes,
            8.0 * 64.0 * 1024.0 * 2.0
        );
        let one: Mesh = "tp=1".parse().unwrap();
        let u = all_reduce(&["tp"], ty.clone());
        assert_eq!(collective_time(&u, &one, &c).unwrap().seconds, 0.0);
        let e = collective_time(&all_reduce(&["dp"], ty), &mesh, &c).unwrap_err();
        assert!(e.to_string().contains("axis `dp`"), "{e}");
    }
}
