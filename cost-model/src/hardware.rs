//! The hardware catalog: devices and cluster presets, shipped as JSON data files under
//! `cost-model/catalog/` (embedded into the binary) and extensible with users' own files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shardc_ir::DType;

use crate::error::{CostError, Result};

/// What a device is; CPUs can also serve as Reduction Server reducers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Gpu,
    Tpu,
    Cpu,
}

/// The arithmetic a tensor op runs in, which selects a peak FLOP/s figure.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    Fp64,
    Fp32,
    Tf32,
    Bf16,
    Fp16,
}

impl Precision {
    /// The precision an op on `dtype` runs in. `tf32` makes f32 matmuls use TF32 units (the
    /// PyTorch `allow_tf32` setting); integers and booleans count at the fp32 rate.
    pub fn of(dtype: DType, tf32: bool) -> Self {
        match dtype {
            DType::F64 | DType::I64 | DType::U64 => Precision::Fp64,
            DType::BF16 => Precision::Bf16,
            DType::F16 => Precision::Fp16,
            DType::F32 if tf32 => Precision::Tf32,
            DType::F32 | DType::I32 | DType::U32 | DType::Bool => Precision::Fp32,
        }
    }

    /// `fp32`, `bf16`, ...
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp64 => "fp64",
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }
}

/// Peak dense FLOP/s per precision (no sparsity). Missing figures fall back as
/// [`PeakFlops::get`] documents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeakFlops {
    #[serde(default)]
    pub fp64: Option<f64>,
    #[serde(default)]
    pub fp32: Option<f64>,
    #[serde(default)]
    pub tf32: Option<f64>,
    #[serde(default)]
    pub bf16: Option<f64>,
    #[serde(default)]
    pub fp16: Option<f64>,
    pub source: String,
}

impl PeakFlops {
    /// Peak FLOP/s in `p`. A device without a figure for `p` runs it on the nearest units it
    /// has: tf32 and fp64 on fp32 units, bf16 on fp16 units and vice versa, and fp32 on bf16
    /// units where only those exist (TPUs, whose default f32 matmul precision is bf16 passes).
    pub fn get(&self, p: Precision) -> f64 {
        let chain: &[Option<f64>] = match p {
            Precision::Fp64 => &[self.fp64, self.fp32, self.bf16],
            Precision::Fp32 => &[self.fp32, self.bf16, self.fp16],
            Precision::Tf32 => &[self.tf32, self.fp32, self.bf16],
            Precision::Bf16 => &[self.bf16, self.fp16, self.fp32],
            Precision::Fp16 => &[self.fp16, self.bf16, self.fp32],
        };
        // invariant: `Device::validate` requires at least one of fp32, bf16, fp16.
        chain.iter().flatten().copied().next().unwrap_or(1.0)
    }
}

/// Device memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub capacity_bytes: u64,
    pub bandwidth_bytes_per_s: f64,
    pub source: String,
}

/// A link: bandwidth per device per direction and the latency of one algorithm step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub name: String,
    pub bandwidth_bytes_per_s: f64,
    pub latency_s: f64,
    pub source: String,
}

/// A node's scale-out network: NICs shared by the node's devices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub name: String,
    pub nics_per_node: u32,
    /// Per NIC, per direction.
    pub nic_bandwidth_bytes_per_s: f64,
    pub latency_s: f64,
    pub source: String,
}

impl Network {
    /// Bandwidth of the whole node, per direction.
    pub fn node_bandwidth(&self) -> f64 {
        self.nics_per_node as f64 * self.nic_bandwidth_bytes_per_s
    }
}

/// The vendor's standard server for a device: how many share a scale-up domain and its NICs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeLayout {
    pub devices_per_node: u32,
    pub network: Network,
}

/// The fraction of peak a device achieves: per op class of its FLOP/s (or of its memory
/// bandwidth, for memory-bound ops), and of each link's bandwidth. Calibration replaces these.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Achievable {
    pub matmul: f64,
    pub conv: f64,
    pub elementwise: f64,
    pub reduction: f64,
    pub scale_up_bandwidth: f64,
    pub network_bandwidth: f64,
    pub source: String,
    /// How a matmul's local shape lowers its fraction of peak below `matmul` (which is the
    /// fraction a large square matmul reaches).
    #[serde(default)]
    pub matmul_shape: MatmulShapeCurve,
}

/// The achievable fraction of a matmul by its local shape: `matmul · g(m)·g(n)·g(k)` with
/// `g(x) = x / (x + half_dim)`, `m, n` the result's rows and columns and `k` the contracted
/// size on one device (a batch of matmuls counts as one).
///
/// Why this form: a GEMM kernel computes its result in tiles (typically 128×128 or 128×256 on
/// tensor cores) and streams `k` in steps with a pipeline prologue and epilogue. A dim that is
/// not a multiple of the tile wastes the padded part (tile quantization, NVIDIA's "Matrix
/// Multiplication Background" performance guide), which averaged over sizes costs about half a
/// tile per dim; the `k` loop's fill and drain cost a few `k` steps. Both make a dim `x` run at
/// about `x / (x + half_dim)` of the rate of a very large one, with `half_dim` half the tile
/// edge. Calibration replaces `half_dim` (and the scale, `matmul`) from measured matmuls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatmulShapeCurve {
    /// The dim size at which a dim halves the rate.
    pub half_dim: f64,
    pub source: String,
}

impl Default for MatmulShapeCurve {
    /// Half of a 128-wide tensor-core tile.
    fn default() -> Self {
        MatmulShapeCurve {
            half_dim: 64.0,
            source: "default: half of a 128-wide GEMM tile (tile quantization)".into(),
        }
    }
}

impl MatmulShapeCurve {
    /// The factor `g(m)·g(n)·g(k)` in (0, 1].
    pub fn factor(&self, m: f64, n: f64, k: f64) -> f64 {
        let g = |x: f64| {
            if x <= 0.0 {
                1.0
            } else {
                x / (x + self.half_dim)
            }
        };
        g(m) * g(n) * g(k)
    }
}

/// One accelerator (or CPU socket) model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Catalog key, lower case (`a100-80gb`).
    pub name: String,
    pub description: String,
    pub kind: DeviceKind,
    pub peak_flops: PeakFlops,
    pub memory: Memory,
    /// NVLink, ICI, or shared memory: the link between devices of one node.
    pub scale_up: Link,
    pub node: NodeLayout,
    pub achievable: Achievable,
}

/// Reduction Server reducers: CPU-only nodes that sum gradient shards workers push to them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reducers {
    pub nodes: u32,
    /// Per reducer node, per direction.
    pub nic_bandwidth_bytes_per_s: f64,
    pub latency_s: f64,
    pub source: String,
}

/// A cluster preset: a device, its node layout and optionally a network and reducers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterPreset {
    pub name: String,
    pub description: String,
    pub device: String,
    pub devices_per_node: u32,
    /// Node count when the spec gives none.
    pub nodes: u32,
    /// The device's default network when absent.
    #[serde(default)]
    pub network: Option<Network>,
    #[serde(default)]
    pub reducers: Option<Reducers>,
}

/// The built-in data files, embedded so the binary needs no files at run time.
const BUILTIN_DEVICES: [(&str, &str); 7] = [
    (
        "v100-32gb.json",
        include_str!("../catalog/devices/v100-32gb.json"),
    ),
    (
        "a100-40gb.json",
        include_str!("../catalog/devices/a100-40gb.json"),
    ),
    (
        "a100-80gb.json",
        include_str!("../catalog/devices/a100-80gb.json"),
    ),
    ("h100.json", include_str!("../catalog/devices/h100.json")),
    ("h200.json", include_str!("../catalog/devices/h200.json")),
    (
        "tpu-v4.json",
        include_str!("../catalog/devices/tpu-v4.json"),
    ),
    (
        "cpu-xeon-8380.json",
        include_str!("../catalog/devices/cpu-xeon-8380.json"),
    ),
];

const BUILTIN_CLUSTERS: [(&str, &str); 3] = [
    (
        "dgx-a100-80gb.json",
        include_str!("../catalog/clusters/dgx-a100-80gb.json"),
    ),
    (
        "dgx-h100.json",
        include_str!("../catalog/clusters/dgx-h100.json"),
    ),
    (
        "a2-highgpu-8g-reduction-server.json",
        include_str!("../catalog/clusters/a2-highgpu-8g-reduction-server.json"),
    ),
];

/// Devices and cluster presets by name.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Catalog {
    pub devices: BTreeMap<String, Device>,
    pub clusters: BTreeMap<String, ClusterPreset>,
}

/// A user's hardware file holds one device, one cluster preset, or lists of both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HardwareLists {
    #[serde(default)]
    devices: Vec<Device>,
    #[serde(default)]
    clusters: Vec<ClusterPreset>,
}

impl Catalog {
    /// The catalog shipped with the crate.
    pub fn builtin() -> Self {
        let mut c = Catalog::default();
        for (file, text) in BUILTIN_DEVICES.iter().chain(&BUILTIN_CLUSTERS) {
            // invariant: the shipped files parse and validate (tested by
            // `builtin_catalog_loads_every_shipped_file`).
            c.add_json(file, text)
                .expect("invariant: shipped catalog files are valid");
        }
        c
    }

    /// Adds the devices and presets of one JSON text (`file` names it in errors). A name
    /// already present is replaced, so a user's file can correct a shipped figure.
    pub fn add_json(&mut self, file: &str, text: &str) -> Result<()> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| CostError::file(file, format!("not JSON: {e}")))?;
        let has = |k: &str| value.get(k).is_some();
        let bad = |what: &str, e: serde_json::Error| {
            CostError::file(file, format!("expected {what}: {e}"))
        };
        let (devices, clusters) = if has("devices") || has("clusters") {
            let l: HardwareLists = serde_json::from_value(value)
                .map_err(|e| bad("{\"devices\": [...], \"clusters\": [...]}", e))?;
            (l.devices, l.clusters)
        } else if has("device") {
            let c: ClusterPreset = serde_json::from_value(value).map_err(|e| {
                bad(
                    "a cluster preset (name, description, device, devices_per_node, nodes)",
                    e,
                )
            })?;
            (vec![], vec![c])
        } else {
            let d: Device = serde_json::from_value(value).map_err(|e| {
                bad("a device (name, description, kind, peak_flops, memory, scale_up, node, achievable)", e)
            })?;
            (vec![d], vec![])
        };
        for d in devices {
            d.validate().map_err(|m| CostError::file(file, m))?;
            self.devices.insert(d.name.clone(), d);
        }
        for c in clusters {
            if !self.devices.contains_key(&c.device) {
                return Err(CostError::file(
                    file,
                    format!(
                        "cluster `{}` names device `{}`, which the catalog does not have (devices: {})",
                        c.name,
                        c.device,
                        self.device_names().join(", ")
                    ),
                ));
            }
            if c.devices_per_node == 0 || c.nodes == 0 {
                return Err(CostError::file(
                    file,
                    format!(
                        "cluster `{}`: nodes and devices_per_node must be positive",
                        c.name
                    ),
                ));
            }
            self.clusters.insert(c.name.clone(), c);
        }
        Ok(())
    }

    /// Reads a user's hardware file into the catalog.
    pub fn add_file(&mut self, path: &std::path::Path) -> Result<()> {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| CostError::file(&name, e.to_string()))?;
        self.add_json(&name, &text)
    }

    pub fn device(&self, name: &str) -> Result<&Device> {
        self.devices.get(&name.to_ascii_lowercase()).ok_or_else(|| {
            CostError::Mismatch(format!(
                "unknown device `{name}` (catalog devices: {}; add your own with --hardware FILE)",
                self.device_names().join(", ")
            ))
        })
    }

    pub fn device_names(&self) -> Vec<&str> {
        self.devices.keys().map(String::as_str).collect()
    }
}

impl Device {
    /// Checks figures are positive and fractions in (0, 1].
    pub fn validate(&self) -> Result<(), String> {
        let who = format!("device `{}`", self.name);
        let pf = &self.peak_flops;
        if pf.fp32.is_none() && pf.bf16.is_none() && pf.fp16.is_none() {
            return Err(format!(
                "{who}: peak_flops needs at least one of fp32, bf16, fp16"
            ));
        }
        let positive = [
            ("peak_flops.fp64", pf.fp64),
            ("peak_flops.fp32", pf.fp32),
            ("peak_flops.tf32", pf.tf32),
            ("peak_flops.bf16", pf.bf16),
            ("peak_flops.fp16", pf.fp16),
            (
                "memory.bandwidth_bytes_per_s",
                Some(self.memory.bandwidth_bytes_per_s),
            ),
            (
                "scale_up.bandwidth_bytes_per_s",
                Some(self.scale_up.bandwidth_bytes_per_s),
            ),
            (
                "node.network.nic_bandwidth_bytes_per_s",
                Some(self.node.network.nic_bandwidth_bytes_per_s),
            ),
        ];
        for (field, v) in positive {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(format!("{who}: {field} must be a positive number, got {v}"));
                }
            }
        }
        for (field, v) in [
            ("scale_up.latency_s", self.scale_up.latency_s),
            ("node.network.latency_s", self.node.network.latency_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{who}: {field} must be >= 0, got {v}"));
            }
        }
        if self.memory.capacity_bytes == 0 || self.node.devices_per_node == 0 {
            return Err(format!(
                "{who}: memory.capacity_bytes and node.devices_per_node must be positive"
            ));
        }
        let a = &self.achievable;
        if !(a.matmul_shape.half_dim.is_finite() && a.matmul_shape.half_dim >= 0.0) {
            return Err(format!(
                "{who}: achievable.matmul_shape.half_dim must be >= 0, got {}",
                a.matmul_shape.half_dim
            ));
        }
        for (field, v) in [
            ("matmul", a.matmul),
            ("conv", a.conv),
            ("elementwise", a.elementwise),
            ("reduction", a.reduction),
            ("scale_up_bandwidth", a.scale_up_bandwidth),
            ("network_bandwidth", a.network_bandwidth),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!(
                    "{who}: achievable.{field} must be in (0, 1], got {v}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_loads_every_shipped_file() {
        let c = Catalog::builtin();
        assert_eq!(
            c.device_names(),
            [
                "a100-40gb",
                "a100-80gb",
                "cpu-xeon-8380",
                "h100",
                "h200",
                "tpu-v4",
                "v100-32gb"
            ]
        );
        assert_eq!(c.clusters.len(), 3);
        for d in c.devices.values() {
            assert!(!d.peak_flops.source.is_empty() && !d.memory.source.is_empty());
            assert!(!d.scale_up.source.is_empty() && !d.node.network.source.is_empty());
        }
    }

    #[test]
    fn catalog_figures_match_the_references_table() {
        let c = Catalog::builtin();
        let a100 = c.device("A100-80GB").unwrap();
        assert_eq!(a100.peak_flops.get(Precision::Bf16), 312e12);
        assert_eq!(a100.peak_flops.get(Precision::Tf32), 156e12);
        assert_eq!(a100.peak_flops.get(Precision::Fp32), 19.5e12);
        assert_eq!(a100.memory.capacity_bytes, 80_000_000_000);
        // NVLink3: 600 GB/s both directions = 300 GB/s each way.
        assert_eq!(a100.scale_up.bandwidth_bytes_per_s, 300e9);
        assert_eq!(a100.node.network.node_bandwidth(), 8.0 * 25e9);
        assert_eq!(
            c.device("h100").unwrap().peak_flops.get(Precision::Bf16),
            989e12
        );
        assert_eq!(
            c.device("h200").unwrap().memory.bandwidth_bytes_per_s,
            4.8e12
        );
    }

    #[test]
    fn missing_precisions_fall_back_to_units_the_device_has() {
        let c = Catalog::builtin();
        // V100 has no bf16 units: bf16 runs at the fp16 tensor-core rate.
        assert_eq!(
            c.device("v100-32gb")
                .unwrap()
                .peak_flops
                .get(Precision::Bf16),
            125e12
        );
        // TPU v4 runs f32 matmuls as bf16 passes.
        assert_eq!(
            c.device("tpu-v4").unwrap().peak_flops.get(Precision::Fp32),
            275e12
        );
        // A CPU without bf16 units runs bf16 at its fp32 rate.
        let cpu = c.device("cpu-xeon-8380").unwrap();
        assert_eq!(
            cpu.peak_flops.get(Precision::Bf16),
            cpu.peak_flops.get(Precision::Fp32)
        );
    }

    #[test]
    fn user_files_add_devices_and_reject_bad_figures() {
        let mut c = Catalog::builtin();
        let mut mine = c.device("a100-80gb").unwrap().clone();
        mine.name = "my-gpu".into();
        mine.memory.capacity_bytes = 96_000_000_000;
        c.add_json("mine.json", &serde_json::to_string(&mine).unwrap())
            .unwrap();
        assert_eq!(
            c.device("my-gpu").unwrap().memory.capacity_bytes,
            96_000_000_000
        );

        mine.achievable.matmul = 1.5;
        let err = c
            .add_json("bad.json", &serde_json::to_string(&mine).unwrap())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("bad.json: device `my-gpu`: achievable.matmul"),
            "{err}"
        );
        let err = c.add_json("junk.json", "{\"name\": 3}").unwrap_err();
        assert!(
            err.to_string().starts_with("junk.json: expected a device"),
            "{err}"
        );
        let err = c.device("b200").unwrap_err();
        assert!(err.to_string().contains("unknown device `b200`"), "{err}");
    }
}
