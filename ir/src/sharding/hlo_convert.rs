//! Between XLA's device-list shardings and axis-based [`Sharding`]s on a [`Mesh`].
//!
//! An HLO sharding names devices tile by tile; an axis-based one names mesh axes per dim. Going
//! from HLO to axes needs a mesh whose axes line up with the tiles: [`common_mesh`] finds one
//! for all shardings of a module (the finest split of the device ids that every tiling respects),
//! and [`HloSharding::to_sharding`] then searches which axes split which dim.

use std::collections::BTreeSet;

use crate::error::IrError;
use crate::mesh::{Mesh, MeshAxis};
use crate::op::ReduceFn;
use crate::sharding::hlo_text::{HloSharding, Subgroup, Tiled};
use crate::sharding::spec::{DimSharding, Sharding};
use crate::sharding::tile::{detect_iota, digits, TileDevices};

fn conv_err(s: &HloSharding, m: impl Into<String>) -> IrError {
    IrError::parse("HLO sharding", s.to_string(), m)
}

/// Suffix products of a tile shape: the position counts at which a tile dim boundary falls.
fn cuts(tile: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut p = 1u64;
    for &t in tile.iter().rev() {
        p *= t;
        out.push(p);
    }
    out
}

/// Every tiled sharding inside `s` (tuple elements and grouped ones included).
fn tiled_parts<'a>(s: &'a HloSharding, out: &mut Vec<&'a Tiled>) {
    match s {
        HloSharding::Tiled(t) => out.push(t),
        HloSharding::Tuple(v) => v.iter().for_each(|e| tiled_parts(e, out)),
        HloSharding::Grouped(e, _) => tiled_parts(e, out),
        _ => {}
    }
}

/// One mesh over devices `0..n` whose axes every tiled sharding in `shardings` splits along,
/// named `x0, x1, ...` major first. Fails when the shardings use different device counts or a
/// device order that is no transposed iota of `0..n` (then no single axis-based mesh fits).
/// `None` when no sharding is tiled.
pub fn common_mesh(shardings: &[&HloSharding]) -> Result<Option<Mesh>, IrError> {
    let mut tiled = Vec::new();
    for s in shardings {
        tiled_parts(s, &mut tiled);
    }
    let Some(first) = tiled.first() else {
        return Ok(None);
    };
    let n = first.devices.len();
    // The device ids the module uses: usually 0..n, but a module may run on a subset of a
    // larger machine (devices 0,1,4,5 of 8); the mesh then lists those ids in order.
    let mut ids = first.devices.expand();
    ids.sort_unstable();
    let mut bounds: BTreeSet<u64> = [1, n].into_iter().collect();
    for t in &tiled {
        let s = HloSharding::Tiled((*t).clone());
        if t.devices.len() != n {
            return Err(conv_err(
                &s,
                format!(
                    "uses {} devices where other shardings of the module use {n}",
                    t.devices.len()
                ),
            ));
        }
        let mut devices = t.devices.expand();
        let mut sorted = devices.clone();
        sorted.sort_unstable();
        if sorted != ids {
            return Err(conv_err(
                &s,
                "its devices are not the ones the module's other shardings use, so no one mesh fits",
            ));
        }
        // Positions in the sorted id list stand for the ids.
        for d in &mut devices {
            *d = ids.binary_search(d).expect("invariant: d is one of ids") as u32;
        }
        let ds = digits(&devices, &cuts(&t.tile)).ok_or_else(|| {
            conv_err(
                &s,
                "its device order is no transposed iota of 0..n, so no axis-based mesh fits it",
            )
        })?;
        for d in ds {
            bounds.insert(d.stride);
            bounds.insert(d.stride * d.size);
        }
    }
    let b: Vec<u64> = bounds.into_iter().collect();
    if b.windows(2).any(|w| w[1] % w[0] != 0) {
        return Err(IrError::parse(
            "HLO sharding",
            tiled
                .iter()
                .map(|t| HloSharding::Tiled((*t).clone()).to_string())
                .collect::<Vec<_>>()
                .join(" "),
            "these tilings split the devices along incompatible axes (no common mesh)",
        ));
    }
    let sizes: Vec<u64> = b.windows(2).rev().map(|w| w[1] / w[0]).collect();
    Ok(Some(named_mesh(&sizes, ids)))
}

fn named_mesh(sizes: &[u64], devices: Vec<u32>) -> Mesh {
    Mesh {
        axes: sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| MeshAxis {
                name: format!("x{i}"),
                size: s,
            })
            .collect(),
        devices,
    }
}

impl HloSharding {
    /// A mesh this sharding is axis-based on: the [`common_mesh`] of it alone, or, when its
    /// device order is no iota, one axis per split tile dim (`x0, x1, ...`) over its own device
    /// order. `None` for shardings that split nothing.
    pub fn derive_mesh(&self) -> Result<Option<Mesh>, IrError> {
        match common_mesh(&[self]) {
            Ok(m) => Ok(m),
            Err(e) => match self.ungrouped() {
                HloSharding::Tiled(t) => {
                    let sizes: Vec<u64> = t.tile.iter().copied().filter(|&s| s > 1).collect();
                    let m = named_mesh(&sizes, t.devices.expand());
                    m.validate()?;
                    Ok(Some(m))
                }
                _ => Err(e),
            },
        }
    }

    /// The axis-based sharding this is on `mesh`, for a value of `rank` dims. Fails for manual,
    /// maximal and tuple shardings, and for tilings that do not split along whole mesh axes.
    pub fn to_sharding(&self, mesh: &Mesh, rank: usize) -> Result<Sharding, IrError> {
        match self {
            HloSharding::Replicated => Ok(Sharding::replicated(rank)),
            HloSharding::Grouped(s, _) => s.to_sharding(mesh, rank),
            HloSharding::Tiled(t) => tiled_to_sharding(self, t, mesh, rank),
            _ => Err(conv_err(
                self,
                "only replicated and tiled shardings have an axis-based form",
            )),
        }
    }

    /// The HLO sharding of `s` on `mesh`, in the iota form where the device order allows (as
    /// XLA prints shardings made from a mesh). Partial (pending-sum) axes have no HLO form.
    pub fn from_sharding(s: &Sharding, mesh: &Mesh) -> Result<HloSharding, IrError> {
        let err = |m: String| IrError::parse("sharding", format!("{s:?}"), m);
        s.validate(mesh, s.rank()).map_err(err)?;
        if !s.partial.is_empty() {
            return Err(err(format!(
                "partial ({}) axes {:?} have no XLA HLO sharding form",
                s.partial_fn.name(),
                s.partial
            )));
        }
        let used: BTreeSet<&str> = s.used_axes().into_iter().collect();
        let rest: Vec<String> = mesh
            .axis_names()
            .into_iter()
            .filter(|a| !used.contains(a))
            .map(String::from)
            .collect();
        let mut groups: Vec<&[String]> = s.dims.iter().map(|d| d.axes.as_slice()).collect();
        let size = |axes: &[String]| -> u64 {
            axes.iter()
                .map(|a| mesh.axis_size(a).unwrap_or(1))
                .product()
        };
        let mut tile: Vec<u64> = groups.iter().map(|g| size(g)).collect();
        if tile.iter().all(|&t| t == 1) {
            return Ok(HloSharding::Replicated);
        }
        let repl = size(&rest);
        let mut subgroups = Vec::new();
        if repl > 1 {
            groups.push(&rest);
            tile.push(repl);
            subgroups.push(Subgroup::Replicated);
        }
        let mut devices = vec![0u32; mesh.devices.len()];
        for (i, &dev) in mesh.devices.iter().enumerate() {
            let pos = groups
                .iter()
                .zip(&tile)
                .fold(0u64, |acc, (g, &t)| acc * t + mesh.linear_index(i, g));
            devices[pos as usize] = dev;
        }
        let devices = detect_iota(&devices).unwrap_or(TileDevices::Explicit(devices));
        Ok(HloSharding::Tiled(Tiled {
            tile,
            devices,
            subgroups,
        }))
    }
}

fn tiled_to_sharding(
    whole: &HloSharding,
    t: &Tiled,
    mesh: &Mesh,
    rank: usize,
) -> Result<Sharding, IrError> {
    if t.subgroups.contains(&Subgroup::Manual) {
        return Err(conv_err(whole, "manual subgroups have no axis-based form"));
    }
    if t.data_rank() != rank {
        return Err(conv_err(
            whole,
            format!("tiles {} dims, the value has rank {rank}", t.data_rank()),
        ));
    }
    let devs = t.devices.expand();
    if devs.len() != mesh.devices.len() {
        return Err(conv_err(
            whole,
            format!(
                "uses {} devices, the mesh {mesh} has {}",
                devs.len(),
                mesh.devices.len()
            ),
        ));
    }
    // Mesh coordinates of the device at each tile position.
    let position: std::collections::BTreeMap<u32, usize> = mesh
        .devices
        .iter()
        .enumerate()
        .map(|(i, &d)| (d, i))
        .collect();
    let mut coords = Vec::with_capacity(devs.len());
    for &d in &devs {
        let i = *position
            .get(&d)
            .ok_or_else(|| conv_err(whole, format!("device {d} is not in the mesh {mesh}")))?;
        coords.push(mesh.coords(i));
    }
    // Tile index of each position along each data dim.
    let mut tile_idx = vec![vec![0u64; rank]; devs.len()];
    for (p, idx) in tile_idx.iter_mut().enumerate() {
        let mut rest = p as u64;
        for k in (0..t.tile.len()).rev() {
            if k < rank {
                idx[k] = rest % t.tile[k];
            }
            rest /= t.tile[k];
        }
    }
    let mut chosen: Vec<Vec<usize>> = vec![Vec::new(); rank];
    let mut used = vec![false; mesh.axes.len()];
    if !assign(0, t, mesh, &coords, &tile_idx, &mut chosen, &mut used) {
        return Err(conv_err(
            whole,
            format!("its tiles do not split along whole axes of the mesh {mesh}"),
        ));
    }
    Ok(Sharding {
        dims: chosen
            .into_iter()
            .map(|axes| DimSharding {
                axes: axes
                    .into_iter()
                    .map(|a| mesh.axes[a].name.clone())
                    .collect(),
                open: false,
            })
            .collect(),
        partial: Vec::new(),
        partial_fn: ReduceFn::Sum,
    })
}

/// Depth-first search: picks, for data dim `d` onward, an ordered list of unused mesh axes whose
/// mixed-radix coordinate equals the tile index at every position.
fn assign(
    d: usize,
    t: &Tiled,
    mesh: &Mesh,
    coords: &[Vec<u64>],
    tile_idx: &[Vec<u64>],
    chosen: &mut Vec<Vec<usize>>,
    used: &mut Vec<bool>,
) -> bool {
    if d == chosen.len() {
        return true;
    }
    extend(d, t.tile[d], t, mesh, coords, tile_idx, chosen, used)
}

#[allow(clippy::too_many_arguments)]
fn extend(
    d: usize,
    remaining: u64,
    t: &Tiled,
    mesh: &Mesh,
    coords: &[Vec<u64>],
    tile_idx: &[Vec<u64>],
    chosen: &mut Vec<Vec<usize>>,
    used: &mut Vec<bool>,
) -> bool {
    if remaining == 1 {
        let axes = &chosen[d];
        let ok = coords.iter().zip(tile_idx).all(|(c, ti)| {
            let lin = axes
                .iter()
                .fold(0u64, |acc, &a| acc * mesh.axes[a].size + c[a]);
            lin == ti[d]
        });
        return ok && assign(d + 1, t, mesh, coords, tile_idx, chosen, used);
    }
    for a in 0..mesh.axes.len() {
        let s = mesh.axes[a].size;
        if used[a] || s == 1 || remaining % s != 0 {
            continue;
        }
        used[a] = true;
        chosen[d].push(a);
        if extend(d, remaining / s, t, mesh, coords, tile_idx, chosen, used) {
            return true;
        }
        chosen[d].pop();
        used[a] = false;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HloSharding {
        HloSharding::parse(s).unwrap()
    }

    #[test]
    fn megatron_shardings_print_in_xla_iota_form() {
        let mesh: Mesh = "dp=2,tp=4".parse().unwrap();
        let col = Sharding::from_dims(&[&[], &["tp"]]);
        assert_eq!(
            HloSharding::from_sharding(&col, &mesh).unwrap().to_string(),
            "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"
        );
        let both = Sharding::from_dims(&[&["dp"], &["tp"]]);
        assert_eq!(
            HloSharding::from_sharding(&both, &mesh)
                .unwrap()
                .to_string(),
            "{devices=[2,4]<=[8]}"
        );
        let swapped = Sharding::from_dims(&[&["tp", "dp"], &[]]);
        assert_eq!(
            HloSharding::from_sharding(&swapped, &mesh)
                .unwrap()
                .to_string(),
            "{devices=[8,1]<=[2,4]T(1,0)}"
        );
        let mut partial = Sharding::replicated(2);
        partial.partial.push("tp".into());
        let e = HloSharding::from_sharding(&partial, &mesh).unwrap_err();
        assert!(e.to_string().contains("no XLA HLO sharding form"), "{e}");
    }

    #[test]
    fn hlo_shardings_read_back_onto_the_mesh() {
        let mesh: Mesh = "dp=2,tp=4".parse().unwrap();
        let s = h("{devices=[1,4,2]0,4,1,5,2,6,3,7 last_tile_dim_replicate}")
            .to_sharding(&mesh, 2)
            .unwrap();
        assert_eq!(s, Sharding::from_dims(&[&[], &["tp"]]));
        let s = h("{devices=[8,1]<=[2,4]T(1,0)}")
            .to_sharding(&mesh, 2)
            .unwrap();
        assert_eq!(s, Sharding::from_dims(&[&["tp", "dp"], &[]]));
        assert!(h("{devices=[2,1]0,1}").to_sharding(&mesh, 2).is_err());
        assert!(h("{manual}").to_sharding(&mesh, 2).is_err());
    }

    #[test]
    fn one_mesh_fits_every_sharding_of_a_module() {
        let a = h("{devices=[2,1,4]<=[8] last_tile_dim_replicate}");
        let b = h("{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}");
        let c = h("{devices=[8]<=[8]}");
        let m = common_mesh(&[&a, &b, &c]).unwrap().unwrap();
        assert_eq!(m.to_string(), "x0=2,x1=4");
        assert_eq!(
            a.to_sharding(&m, 2).unwrap(),
            Sharding::from_dims(&[&["x0"], &[]])
        );
        assert_eq!(
            c.to_sharding(&m, 1).unwrap(),
            Sharding::from_dims(&[&["x0", "x1"]])
        );
        let d = h("{devices=[4]0,1,2,3}");
        assert!(common_mesh(&[&a, &d]).is_err());
        let odd = h("{devices=[3]1,2,3}");
        let m = odd.derive_mesh().unwrap().unwrap();
        assert_eq!(m.to_string(), "x0=3 devices=[1, 2, 3]");
        assert!(
            HloSharding::from_sharding(&odd.to_sharding(&m, 1).unwrap(), &m)
                .unwrap()
                .equivalent(&odd)
        );
    }
}
