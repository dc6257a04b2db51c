//! Device meshes: named axes over an ordered device list.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::IrError;

/// One named mesh axis.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MeshAxis {
    pub name: String,
    pub size: u64,
}

/// A logical device mesh: axes (major first) over an ordered list of device ids. Device
/// `devices[i]` sits at the row-major coordinate `i` over the axes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mesh {
    pub axes: Vec<MeshAxis>,
    pub devices: Vec<u32>,
}

impl Mesh {
    /// A mesh over devices `0..n` in order.
    pub fn new(axes: &[(&str, u64)]) -> Result<Self, IrError> {
        let axes: Vec<MeshAxis> = axes
            .iter()
            .map(|&(n, s)| MeshAxis {
                name: n.to_string(),
                size: s,
            })
            .collect();
        let n = axes
            .iter()
            .try_fold(1u64, |acc, a| acc.checked_mul(a.size))
            .filter(|&n| n <= u32::MAX as u64)
            .ok_or_else(|| IrError::Format("mesh: device count overflows".into()))?;
        let mesh = Mesh {
            axes,
            devices: (0..n as u32).collect(),
        };
        mesh.validate()?;
        Ok(mesh)
    }

    /// Checks axis names are distinct and non-empty, sizes positive, devices a permutation-free list
    /// of the right length.
    pub fn validate(&self) -> Result<(), IrError> {
        let err = |m: String| Err(IrError::Format(format!("mesh: {m}")));
        let mut names = std::collections::BTreeSet::new();
        let mut n = 1u64;
        for a in &self.axes {
            if a.name.is_empty() || !a.name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return err(format!(
                    "axis name `{}` must be a non-empty identifier",
                    a.name
                ));
            }
            if !names.insert(&a.name) {
                return err(format!("axis `{}` appears twice", a.name));
            }
            if a.size == 0 {
                return err(format!("axis `{}` has size 0", a.name));
            }
            n = match n.checked_mul(a.size) {
                Some(n) => n,
                None => return err("device count overflows".into()),
            };
        }
        if self.devices.len() as u64 != n {
            return err(format!(
                "{} devices listed, the axes need {n}",
                self.devices.len()
            ));
        }
        let distinct: std::collections::BTreeSet<_> = self.devices.iter().collect();
        if distinct.len() != self.devices.len() {
            return err("a device is listed twice".into());
        }
        Ok(())
    }

    pub fn num_devices(&self) -> u64 {
        self.devices.len() as u64
    }

    pub fn axis_size(&self, name: &str) -> Option<u64> {
        self.axes.iter().find(|a| a.name == name).map(|a| a.size)
    }

    pub fn axis_index(&self, name: &str) -> Option<usize> {
        self.axes.iter().position(|a| a.name == name)
    }

    pub fn axis_names(&self) -> Vec<&str> {
        self.axes.iter().map(|a| a.name.as_str()).collect()
    }

    /// The coordinate of position `i` of the device list, one entry per axis.
    pub fn coords(&self, i: usize) -> Vec<u64> {
        let mut c = vec![0; self.axes.len()];
        let mut rest = i as u64;
        for (k, a) in self.axes.iter().enumerate().rev() {
            c[k] = rest % a.size;
            rest /= a.size;
        }
        c
    }

    /// The position in the device list of a coordinate.
    pub fn position(&self, coords: &[u64]) -> usize {
        coords
            .iter()
            .zip(&self.axes)
            .fold(0u64, |acc, (&c, a)| acc * a.size + c) as usize
    }

    /// The linear index of position `i` along `axes` (major first), as `axis_index` computes it.
    pub fn linear_index(&self, i: usize, axes: &[String]) -> u64 {
        let c = self.coords(i);
        axes.iter().fold(0, |acc, a| {
            let k = self.axis_index(a).unwrap_or(0);
            acc * self.axes[k].size + c[k]
        })
    }
}

impl fmt::Display for Mesh {
    /// `dp=2,tp=4` (the device list is omitted when it is `0..n` in order).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.axes.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", a.name, a.size)?;
        }
        if self
            .devices
            .iter()
            .enumerate()
            .any(|(i, &d)| d as usize != i)
        {
            write!(f, " devices={:?}", self.devices)?;
        }
        Ok(())
    }
}

impl FromStr for Mesh {
    type Err = IrError;
    /// Parses `dp=2,tp=4` (devices `0..8` in order).
    fn from_str(s: &str) -> Result<Self, IrError> {
        let err = |m: &str| IrError::parse("mesh", s, m);
        let mut axes = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, size) = part
                .split_once('=')
                .ok_or_else(|| err("expected NAME=SIZE, e.g. dp=2,tp=4"))?;
            let size: u64 = size.trim().parse().map_err(|_| {
                err(&format!(
                    "size of axis `{}` must be a positive integer",
                    name.trim()
                ))
            })?;
            axes.push((name.trim(), size));
        }
        if axes.is_empty() {
            return Err(err("expected at least one axis, e.g. dp=2,tp=4"));
        }
        Mesh::new(&axes).map_err(|e| err(&e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_row_major() {
        let m: Mesh = "dp=2,tp=4".parse().unwrap();
        assert_eq!(m.coords(5), vec![1, 1]);
        assert_eq!(m.position(&[1, 1]), 5);
        assert_eq!(m.linear_index(6, &["tp".into(), "dp".into()]), 2 * 2 + 1);
        assert!("dp=0".parse::<Mesh>().is_err());
        assert!("dp=2,dp=2".parse::<Mesh>().is_err());
    }
}
