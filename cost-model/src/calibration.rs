//! Calibration: the fractions of peak in effect, and measured op and collective times that
//! override the analytic numbers or fit their constants (achievable fraction per op class,
//! latency and bandwidth fraction per link).

use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, GroupPlacement};
use crate::collective::CollectiveKind;
use crate::compute::{ideal_time, OpClass, OpWork};
use crate::error::{CostError, Result};
use crate::hardware::{Device, MatmulShapeCurve, Precision};

/// One measured op: its work (as [`OpWork`] describes it) and its time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredOp {
    /// What ran, for people (`dot_general f32[256,256]x[256,256]`).
    pub name: String,
    pub class: OpClass,
    pub precision: Precision,
    pub flops: f64,
    pub bytes: f64,
    pub seconds: f64,
}

/// One measured collective over a group of `ranks` devices on `nodes` nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredCollective {
    pub kind: CollectiveKind,
    pub ranks: u64,
    pub nodes: u64,
    /// `S`, the full buffer.
    pub bytes: f64,
    pub seconds: f64,
}

/// A measured profile, as `shardc profile` writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The catalog device the measurements were taken on.
    pub device: String,
    #[serde(default)]
    pub ops: Vec<MeasuredOp>,
    #[serde(default)]
    pub collectives: Vec<MeasuredCollective>,
}

impl Profile {
    /// Parses a profile JSON (`file` names it in errors).
    pub fn from_json(file: &str, text: &str) -> Result<Self> {
        let p: Profile = serde_json::from_str(text).map_err(|e| {
            CostError::file(
                file,
                format!("expected a profile {{device, ops: [...], collectives: [...]}}: {e}"),
            )
        })?;
        for (i, o) in p.ops.iter().enumerate() {
            if !(o.seconds > 0.0 && o.flops >= 0.0 && o.bytes >= 0.0) {
                return Err(CostError::file(
                    file,
                    format!(
                        "ops[{i}] (`{}`): seconds must be > 0, flops and bytes >= 0",
                        o.name
                    ),
                ));
            }
        }
        for (i, c) in p.collectives.iter().enumerate() {
            if !(c.seconds > 0.0 && c.bytes >= 0.0 && c.ranks >= 1 && c.nodes >= 1) {
                return Err(CostError::file(
                    file,
                    format!("collectives[{i}]: seconds must be > 0, ranks and nodes >= 1"),
                ));
            }
        }
        Ok(p)
    }
}

/// The constants in effect and the measurements that override the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub matmul: f64,
    pub conv: f64,
    pub elementwise: f64,
    pub reduction: f64,
    /// Fraction of the datasheet scale-up bandwidth achieved.
    pub scale_up_bandwidth: f64,
    /// Fraction of the datasheet network bandwidth achieved.
    pub network_bandwidth: f64,
    /// Fitted per-step latency, replacing the datasheet estimate.
    #[serde(default)]
    pub scale_up_latency_s: Option<f64>,
    #[serde(default)]
    pub network_latency_s: Option<f64>,
    #[serde(default)]
    pub ops: Vec<MeasuredOp>,
    #[serde(default)]
    pub collectives: Vec<MeasuredCollective>,
    pub source: String,
    /// The matmul efficiency curve by local shape in effect (`matmul` is its large-shape scale).
    #[serde(default)]
    pub matmul_shape: MatmulShapeCurve,
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

impl Calibration {
    /// The device's `achievable` figures, no measurements.
    pub fn from_device(d: &Device) -> Self {
        let a = &d.achievable;
        Calibration {
            matmul: a.matmul,
            conv: a.conv,
            elementwise: a.elementwise,
            reduction: a.reduction,
            scale_up_bandwidth: a.scale_up_bandwidth,
            network_bandwidth: a.network_bandwidth,
            scale_up_latency_s: None,
            network_latency_s: None,
            ops: Vec::new(),
            collectives: Vec::new(),
            source: format!("{}: {}", d.name, a.source),
            matmul_shape: a.matmul_shape.clone(),
        }
    }

    /// The achievable fraction of peak of an op class.
    pub fn fraction(&self, class: OpClass) -> f64 {
        match class {
            OpClass::Matmul => self.matmul,
            OpClass::Conv => self.conv,
            OpClass::Elementwise | OpClass::Free => self.elementwise,
            OpClass::Reduction => self.reduction,
        }
    }

    /// The achievable fraction of peak of a matmul whose local result is `m × n` with `k`
    /// contracted: `matmul · g(m)·g(n)·g(k)` ([`MatmulShapeCurve`]).
    pub fn matmul_fraction(&self, m: f64, n: f64, k: f64) -> f64 {
        self.matmul * self.matmul_shape.factor(m, n, k)
    }

    /// A measured time for exactly this work, if the profile has one.
    pub fn measured_op(&self, w: &OpWork) -> Option<f64> {
        self.ops
            .iter()
            .find(|m| {
                m.class == w.class
                    && m.precision == w.precision
                    && same(m.flops, w.flops)
                    && same(m.bytes, w.bytes)
            })
            .map(|m| m.seconds)
    }

    /// A measured time for exactly this collective, if the profile has one.
    pub fn measured_collective(
        &self,
        kind: CollectiveKind,
        place: GroupPlacement,
        s: f64,
    ) -> Option<f64> {
        self.collectives
            .iter()
            .find(|m| {
                m.kind == kind
                    && m.ranks == place.ranks
                    && m.nodes == place.nodes
                    && same(m.bytes, s)
            })
            .map(|m| m.seconds)
    }

    /// Fits the constants of `cluster`'s calibration to a measured profile and keeps the
    /// measurements as overrides.
    ///
    /// - Per op class, the time is modelled as `ideal / fraction` (ideal: the roofline at peak), so
    ///   the least-squares fraction is `Σ ideal² / Σ ideal·t`.
    /// - Per link, a ring-model time `t = α·steps + bytes / (fraction · bandwidth)` is fitted by
    ///   least squares in `(α, 1/fraction)`; with one distinct shape only the fraction is fitted.
    pub fn fit(profile: &Profile, cluster: &Cluster) -> Result<Calibration> {
        if !profile.device.eq_ignore_ascii_case(&cluster.device.name) {
            return Err(CostError::Mismatch(format!(
                "the profile was measured on `{}`, the cluster has `{}`",
                profile.device, cluster.device.name
            )));
        }
        let mut cal = cluster.calibration.clone();
        for class in [
            OpClass::Matmul,
            OpClass::Conv,
            OpClass::Elementwise,
            OpClass::Reduction,
        ] {
            let (mut ii, mut it) = (0.0, 0.0);
            for m in profile.ops.iter().filter(|m| m.class == class) {
                let w = OpWork {
                    class,
                    precision: m.precision,
                    flops: m.flops,
                    bytes: m.bytes,
                };
                let ideal = ideal_time(&w, cluster);
                ii += ideal * ideal;
                it += ideal * m.seconds;
            }
            if it > 0.0 {
                let f = ii / it;
                match class {
                    OpClass::Matmul => cal.matmul = f,
                    OpClass::Conv => cal.conv = f,
                    OpClass::Elementwise => cal.elementwise = f,
                    _ => cal.reduction = f,
                }
            }
        }
        for network in [false, true] {
            // Each sample: (steps, bytes / datasheet bandwidth, seconds).
            let samples: Vec<(f64, f64, f64)> = profile
                .collectives
                .iter()
                .filter(|m| (m.nodes > 1) == network && m.ranks > 1)
                .map(|m| {
                    let n = m.ranks as f64;
                    let (steps, moved) = match m.kind {
                        CollectiveKind::AllReduce => {
                            (2.0 * (n - 1.0), 2.0 * (n - 1.0) / n * m.bytes)
                        }
                        CollectiveKind::Permute => (1.0, m.bytes),
                        _ => (n - 1.0, (n - 1.0) / n * m.bytes),
                    };
                    let raw = if network {
                        let per_node = m.ranks.div_ceil(m.nodes);
                        let groups = (cluster.devices_per_node as f64 / per_node as f64).max(1.0);
                        cluster.network.node_bandwidth() / groups
                    } else {
                        cluster.device.scale_up.bandwidth_bytes_per_s
                    };
                    (steps, moved / raw, m.seconds)
                })
                .collect();
            if samples.is_empty() {
                continue;
            }
            let (alpha, inv_fraction) = fit_alpha_beta(&samples);
            if network {
                cal.network_bandwidth = 1.0 / inv_fraction;
                cal.network_latency_s = alpha;
            } else {
                cal.scale_up_bandwidth = 1.0 / inv_fraction;
                cal.scale_up_latency_s = alpha;
            }
        }
        cal.ops = profile.ops.clone();
        cal.collectives = profile.collectives.clone();
        cal.source = format!(
            "fitted to a profile of {} ops and {} collectives measured on {}",
            profile.ops.len(),
            profile.collectives.len(),
            profile.device
        );
        Ok(cal)
    }
}

/// Least squares of `t = α·a + c·b` over samples `(a, b, t)`, with `α ≥ 0` and `c > 0`. Returns
/// `(Some(α), c)`, or `(None, c)` when the samples cannot separate the two (then `c` alone is
/// fitted through the origin).
fn fit_alpha_beta(samples: &[(f64, f64, f64)]) -> (Option<f64>, f64) {
    let (mut aa, mut ab, mut bb, mut at, mut bt) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(a, b, t) in samples {
        aa += a * a;
        ab += a * b;
        bb += b * b;
        at += a * t;
        bt += b * t;
    }
    let det = aa * bb - ab * ab;
    if det > 1e-12 * aa * bb {
        let alpha = (at * bb - bt * ab) / det;
        let c = (aa * bt - ab * at) / det;
        if alpha >= 0.0 && c > 0.0 {
            return (Some(alpha), c);
        }
    }
    (None, (bt / bb).max(f64::MIN_POSITIVE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collective::{price, ring_all_reduce};
    use crate::{Catalog, LinkCost};

    fn cpu() -> Cluster {
        Cluster::parse("cpu-xeon-8380:1x8", &Catalog::builtin()).unwrap()
    }

    #[test]
    fn fitting_recovers_the_fractions_that_generated_the_times() {
        let c = cpu();
        // Synthetic measurements from a machine at 0.42 of peak matmul and a scale-up link with
        // 7 µs steps at 0.6 of its 50 GB/s.
        let mut p = Profile {
            device: "cpu-xeon-8380".into(),
            ..Default::default()
        };
        for n in [64.0f64, 256.0, 1024.0] {
            let w = OpWork {
                class: OpClass::Matmul,
                precision: Precision::Fp32,
                flops: 2.0 * n * n * n,
                bytes: 12.0 * n * n,
            };
            p.ops.push(MeasuredOp {
                name: format!("dot_general f32[{n},{n}]"),
                class: w.class,
                precision: w.precision,
                flops: w.flops,
                bytes: w.bytes,
                seconds: ideal_time(&w, &c) / 0.42,
            });
        }
        let link = LinkCost {
            alpha_s: 7e-6,
            bytes_per_s: 0.6 * 50e9,
        };
        for (n, s) in [(2u64, 1e3), (4, 1e6), (8, 1e8), (8, 1e4)] {
            p.collectives.push(MeasuredCollective {
                kind: CollectiveKind::AllReduce,
                ranks: n,
                nodes: 1,
                bytes: s,
                seconds: ring_all_reduce(n, s, link),
            });
        }
        let cal = Calibration::fit(&p, &c).unwrap();
        assert!((cal.matmul - 0.42).abs() < 1e-9, "{}", cal.matmul);
        assert!(
            (cal.scale_up_bandwidth - 0.6).abs() < 1e-9,
            "{}",
            cal.scale_up_bandwidth
        );
        assert!((cal.scale_up_latency_s.unwrap() - 7e-6).abs() < 1e-12);
        // Unmeasured classes keep the device's figures.
        assert_eq!(cal.elementwise, c.device.achievable.elementwise);
    }

    #[test]
    fn measured_entries_override_the_model_exactly() {
        let mut c = cpu();
        let place = GroupPlacement {
            ranks: 4,
            nodes: 1,
            per_node: 4,
        };
        c.calibration.collectives.push(MeasuredCollective {
            kind: CollectiveKind::AllGather,
            ranks: 4,
            nodes: 1,
            bytes: 4096.0,
            seconds: 0.125,
        });
        let hit = price(CollectiveKind::AllGather, 4096.0, place, 4, &c);
        assert_eq!((hit.seconds, hit.algorithm.name()), (0.125, "measured"));
        let miss = price(CollectiveKind::AllGather, 8192.0, place, 4, &c);
        assert_ne!(miss.algorithm.name(), "measured");
    }

    #[test]
    fn profiles_from_another_device_or_with_bad_times_are_rejected() {
        let c = cpu();
        let p = Profile {
            device: "h100".into(),
            ..Default::default()
        };
        assert!(Calibration::fit(&p, &c)
            .unwrap_err()
            .to_string()
            .contains("measured on `h100`"));
        let bad = r#"{"device":"cpu-xeon-8380","ops":[{"name":"x","class":"matmul","precision":"fp32","flops":1,"bytes":1,"seconds":0}]}"#;
        let e = Profile::from_json("p.json", bad).unwrap_err().to_string();
        assert!(e.contains("p.json: ops[0] (`x`)"), "{e}");
    }
}
