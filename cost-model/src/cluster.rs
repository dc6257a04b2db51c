//! Clusters (nodes × devices per node, optional reducer nodes) and the mapping of mesh axes onto
//! the links their collectives cross.
//!
//! A mesh lays devices out row-major over its axes, so the *last* axis is the innermost: with
//! `dp=32,tp=8` on nodes of 8, each `tp` group sits inside one node (NVLink) and each `dp` group
//! spans 32 nodes (the network). This is "scale up before out": put the axis with the heaviest
//! traffic last.

use std::collections::BTreeMap;

use serde::Serialize;
use shardc_ir::Mesh;

use crate::calibration::Calibration;
use crate::error::{CostError, Result};
use crate::hardware::{Catalog, Device, Network, Reducers};

/// Reducer nodes added with the `+R` spec suffix: Google Cloud n1-highcpu-16, the machine of the
/// Vertex AI Reduction Server case in REFERENCES.md (egress up to 32 Gb/s).
fn default_reducers(nodes: u32) -> Reducers {
    Reducers {
        nodes,
        nic_bandwidth_bytes_per_s: 4e9,
        latency_s: 30e-6,
        source: "Google Cloud n1-highcpu-16: up to 32 Gb/s egress (Vertex AI Reduction Server)"
            .into(),
    }
}

/// A cluster: `nodes` nodes of `devices_per_node` devices joined by NVLink-like links inside a
/// node and by `network` across nodes; optional CPU reducer nodes; the calibration in effect.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    pub device: Device,
    pub nodes: u32,
    pub devices_per_node: u32,
    pub network: Network,
    pub reducers: Option<Reducers>,
    /// Fractions of peak and measured times; starts as the device's `achievable` figures.
    pub calibration: Calibration,
}

/// Where the members of one collective group sit: `ranks` devices on `nodes` nodes, `per_node`
/// on each.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupPlacement {
    pub ranks: u64,
    pub nodes: u64,
    pub per_node: u64,
}

impl GroupPlacement {
    pub fn crosses_nodes(&self) -> bool {
        self.nodes > 1
    }
}

/// Effective figures of one link as one device sees it: latency per step and bandwidth per
/// direction.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct LinkCost {
    pub alpha_s: f64,
    pub bytes_per_s: f64,
}

impl LinkCost {
    /// Seconds to move `bytes` in `steps` dependent steps.
    pub fn time(&self, steps: f64, bytes: f64) -> f64 {
        steps * self.alpha_s + bytes / self.bytes_per_s
    }
}

impl Cluster {
    /// A cluster of `nodes` standard nodes of `device` (its default node layout and network).
    pub fn of_device(device: &Device, nodes: u32) -> Self {
        Cluster {
            device: device.clone(),
            nodes,
            devices_per_node: device.node.devices_per_node,
            network: device.node.network.clone(),
            reducers: None,
            calibration: Calibration::from_device(device),
        }
    }

    /// Parses a cluster spec:
    /// - `DEVICE:NxD` — `N` nodes of `D` devices (`a100-80gb:32x8`), the device's standard network;
    /// - `PRESET:N` or `PRESET:NxD` — a cluster preset (`dgx-a100-80gb:32`); `PRESET` alone uses
    ///   its node count; `DEVICE:N` uses the device's standard node size;
    /// - a `+R` suffix adds `R` CPU Reduction Server nodes (`a100-40gb:8x8+20`);
    /// - a path ending in `.json`: a file holding one cluster preset (and possibly devices).
    pub fn parse(spec: &str, catalog: &Catalog) -> Result<Self> {
        let spec = spec.trim();
        if spec.ends_with(".json") {
            let mut local = catalog.clone();
            let before: Vec<String> = local.clusters.keys().cloned().collect();
            local.add_file(std::path::Path::new(spec))?;
            let added: Vec<&String> = local
                .clusters
                .keys()
                .filter(|k| !before.contains(k))
                .collect();
            return match added.as_slice() {
                [one] => Cluster::parse(one.as_str(), &local),
                _ => Err(CostError::file(
                    spec,
                    format!(
                        "expected exactly one new cluster preset, found {}",
                        added.len()
                    ),
                )),
            };
        }
        let err = |m: &str| CostError::parse("cluster spec", spec, m);
        let (body, reducers) = match spec.split_once('+') {
            Some((b, r)) => {
                let r: u32 = r.trim().parse().ok().filter(|&r| r > 0).ok_or_else(|| {
                    err("the `+R` suffix must be a positive count of reducer nodes")
                })?;
                (b, Some(r))
            }
            None => (spec, None),
        };
        let (name, layout) = match body.split_once(':') {
            Some((n, l)) => (n.trim().to_ascii_lowercase(), Some(l.trim())),
            None => (body.trim().to_ascii_lowercase(), None),
        };
        let parse_count = |s: &str, what: &str| -> Result<u32> {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| err(&format!("{what} `{s}` must be a positive integer")))
        };
        let (nodes, per_node) = match layout {
            None => (None, None),
            Some(l) => match l.split_once(['x', 'X']) {
                Some((n, d)) => (
                    Some(parse_count(n, "node count")?),
                    Some(parse_count(d, "devices per node")?),
                ),
                None => (Some(parse_count(l, "node count")?), None),
            },
        };
        let mut cluster = if let Some(p) = catalog.clusters.get(&name) {
            let device = catalog.device(&p.device)?;
            let mut c = Cluster::of_device(device, nodes.unwrap_or(p.nodes));
            c.devices_per_node = p.devices_per_node;
            if let Some(n) = &p.network {
                c.network = n.clone();
            }
            c.reducers = p.reducers.clone();
            c
        } else if let Some(device) = catalog.devices.get(&name) {
            Cluster::of_device(device, nodes.unwrap_or(1))
        } else {
            let mut known: Vec<&str> = catalog.device_names();
            known.extend(catalog.clusters.keys().map(String::as_str));
            return Err(err(&format!(
                "`{name}` is neither a device nor a cluster preset (known: {}); \
                 expected DEVICE:NODESxPER_NODE, e.g. a100-80gb:32x8",
                known.join(", ")
            )));
        };
        if let Some(d) = per_node {
            cluster.devices_per_node = d;
        }
        if let Some(r) = reducers {
            cluster.reducers = Some(default_reducers(r));
        }
        Ok(cluster)
    }

    pub fn num_devices(&self) -> u64 {
        self.nodes as u64 * self.devices_per_node as u64
    }

    /// The node holding device id `d` (devices are numbered node by node).
    pub fn node_of(&self, d: u32) -> u64 {
        d as u64 / self.devices_per_node as u64
    }

    /// Checks the mesh's devices exist in this cluster.
    pub fn check_mesh(&self, mesh: &Mesh) -> Result<()> {
        let max = mesh.devices.iter().copied().max().unwrap_or(0) as u64;
        if mesh.num_devices() > self.num_devices() || max >= self.num_devices() {
            return Err(CostError::Mismatch(format!(
                "mesh `{mesh}` needs {} devices (largest id {max}), the cluster has {} ({} nodes x {})",
                mesh.num_devices(),
                self.num_devices(),
                self.nodes,
                self.devices_per_node
            )));
        }
        Ok(())
    }

    /// Where the group of a collective over mesh `axes` sits: the group of the first device
    /// (every group of an axis set has the same shape on a regular layout).
    pub fn placement(&self, mesh: &Mesh, axes: &[String]) -> Result<GroupPlacement> {
        self.check_mesh(mesh)?;
        let mut idx = Vec::with_capacity(axes.len());
        for a in axes {
            let k = mesh.axis_index(a).ok_or_else(|| {
                CostError::Mismatch(format!(
                    "collective over axis `{a}`, which mesh `{mesh}` does not have"
                ))
            })?;
            idx.push(k);
        }
        let sizes: Vec<u64> = idx.iter().map(|&k| mesh.axes[k].size).collect();
        let ranks: u64 = sizes.iter().product();
        let mut per_node: BTreeMap<u64, u64> = BTreeMap::new();
        let mut coords = vec![0u64; mesh.axes.len()];
        for r in 0..ranks {
            let mut rest = r;
            for (j, &k) in idx.iter().enumerate().rev() {
                coords[k] = rest % sizes[j];
                rest /= sizes[j];
            }
            let id = mesh.devices[mesh.position(&coords)];
            *per_node.entry(self.node_of(id)).or_default() += 1;
        }
        let nodes = per_node.len() as u64;
        Ok(GroupPlacement {
            ranks,
            nodes: nodes.max(1),
            per_node: per_node.values().copied().max().unwrap_or(1),
        })
    }

    /// The scale-up link (NVLink, ICI) as calibrated.
    pub fn scale_up(&self) -> LinkCost {
        let c = &self.calibration;
        LinkCost {
            alpha_s: c
                .scale_up_latency_s
                .unwrap_or(self.device.scale_up.latency_s),
            bytes_per_s: self.device.scale_up.bandwidth_bytes_per_s * c.scale_up_bandwidth,
        }
    }

    /// The network as one group of `per_node` members on each node sees it, when every device of
    /// the node runs such a collective at once (SPMD): the node's NICs are shared by
    /// `devices_per_node / per_node` concurrent groups.
    pub fn network_for(&self, per_node: u64) -> LinkCost {
        let c = &self.calibration;
        let groups = (self.devices_per_node as f64 / per_node.max(1) as f64).max(1.0);
        LinkCost {
            alpha_s: c.network_latency_s.unwrap_or(self.network.latency_s),
            bytes_per_s: self.network.node_bandwidth() * c.network_bandwidth / groups,
        }
    }

    /// The network share of one device (all devices of a node sending at once).
    pub fn network_per_device(&self) -> LinkCost {
        self.network_for(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a100(spec: &str) -> Cluster {
        Cluster::parse(spec, &Catalog::builtin()).unwrap()
    }

    #[test]
    fn specs_name_a_device_or_preset_and_a_node_layout() {
        let c = a100("a100-80gb:32x8");
        assert_eq!((c.nodes, c.devices_per_node, c.num_devices()), (32, 8, 256));
        assert_eq!(c.network.nics_per_node, 8);
        let p = a100("dgx-a100-80gb:192");
        assert_eq!(
            (p.device.name.as_str(), p.num_devices()),
            ("a100-80gb", 1536)
        );
        let r = a100("a100-40gb:8x8+20");
        assert_eq!(r.reducers.as_ref().map(|r| r.nodes), Some(20));
        assert_eq!(
            a100("a2-highgpu-8g-reduction-server")
                .reducers
                .unwrap()
                .nodes,
            20
        );
    }

    #[test]
    fn bad_specs_say_what_was_expected() {
        let cat = Catalog::builtin();
        for (spec, needle) in [
            ("a100-80gb:0x8", "node count `0` must be a positive integer"),
            ("a100-80gb:4xq", "devices per node `q`"),
            ("b300:4x8", "neither a device nor a cluster preset"),
            ("a100-80gb:4x8+x", "`+R` suffix"),
            ("/nonexistent/c.json", "/nonexistent/c.json"),
        ] {
            let e = Cluster::parse(spec, &cat).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn inner_mesh_axes_stay_inside_a_node_and_outer_ones_cross_nodes() {
        let c = a100("a100-80gb:32x8");
        let mesh: Mesh = "dp=32,tp=8".parse().unwrap();
        let tp = c.placement(&mesh, &["tp".into()]).unwrap();
        assert_eq!((tp.ranks, tp.nodes, tp.per_node), (8, 1, 8));
        let dp = c.placement(&mesh, &["dp".into()]).unwrap();
        assert_eq!((dp.ranks, dp.nodes, dp.per_node), (32, 32, 1));
        // An axis straddling the node boundary: 4 per node over 2 nodes.
        let m2: Mesh = "a=64,b=4".parse().unwrap();
        let b = c.placement(&m2, &["b".into()]).unwrap();
        assert_eq!((b.nodes, b.per_node), (1, 4));
        let both: Mesh = "x=16,y=16".parse().unwrap();
        let y = c.placement(&both, &["y".into()]).unwrap();
        assert_eq!((y.ranks, y.nodes, y.per_node), (16, 2, 8));
        let e = c
            .placement(&"dp=64,tp=8".parse().unwrap(), &["tp".into()])
            .unwrap_err();
        assert!(e.to_string().contains("needs 512 devices"), "{e}");
    }

    #[test]
    fn network_share_divides_node_nics_among_concurrent_groups() {
        let c = a100("a100-80gb:32x8");
        // 8 x 25 GB/s at 0.9 achievable, shared by 8 devices.
        assert!((c.network_per_device().bytes_per_s - 22.5e9).abs() < 1.0);
        assert!((c.network_for(8).bytes_per_s - 180e9).abs() < 1.0);
        assert!((c.scale_up().bytes_per_s - 240e9).abs() < 1.0);
    }
}
