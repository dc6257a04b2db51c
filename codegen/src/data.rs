//! Moving whole arrays to and from per-device shards, for tests and the CLI: what a runtime feeds
//! each device and how it reassembles the outputs. Arrays are dense row-major `Vec<T>`, so this
//! works for any element type without knowing the runtime's tensor type.

use shardc_ir::{Mesh, Sharding};

use crate::error::{CodegenError, Result};
use crate::program::SpmdProgram;
use crate::reshard::local_dims;

/// Where device `device`'s shard of each dim starts in the global array.
fn shard_origin(global: &[u64], s: &Sharding, mesh: &Mesh, device: usize) -> (Vec<u64>, Vec<u64>) {
    let local = local_dims(global, s, mesh);
    let origin = s
        .dims
        .iter()
        .zip(&local)
        .map(|(ds, &l)| mesh.linear_index(device, &ds.axes) * l)
        .collect();
    (origin, local)
}

/// Visits every element of a local shard: `(local flat index, global flat index if inside)`.
fn for_each_element(
    global: &[u64],
    origin: &[u64],
    local: &[u64],
    mut f: impl FnMut(usize, Option<usize>),
) {
    let n: u64 = local.iter().product();
    let rank = local.len();
    let mut idx = vec![0u64; rank];
    for flat in 0..n as usize {
        let mut g = 0u64;
        let mut inside = true;
        for d in 0..rank {
            let gi = origin[d] + idx[d];
            inside &= gi < global[d];
            g = g * global[d] + gi;
        }
        f(flat, inside.then_some(g as usize));
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < local[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

fn check_len<T>(data: &[T], global: &[u64], what: &str) -> Result<()> {
    let want: u64 = global.iter().product();
    if data.len() as u64 != want {
        return Err(CodegenError::Data(format!(
            "{what}: has {} elements, its shape {global:?} needs {want}",
            data.len()
        )));
    }
    Ok(())
}

/// Device `device`'s shard of the row-major array `data` of shape `global` under `s`, padded
/// with `T::default()` where the shard runs past the end of an uneven dim.
pub fn shard_array<T: Copy + Default>(
    data: &[T],
    global: &[u64],
    s: &Sharding,
    mesh: &Mesh,
    device: usize,
) -> Result<Vec<T>> {
    check_len(data, global, "array")?;
    let (origin, local) = shard_origin(global, s, mesh, device);
    let mut out = vec![T::default(); local.iter().product::<u64>() as usize];
    for_each_element(global, &origin, &local, |l, g| {
        if let Some(g) = g {
            out[l] = data[g];
        }
    });
    Ok(out)
}

/// Reassembles a row-major array of shape `global` from every device's shard under `s` (no
/// pending sums); padding is dropped.
pub fn unshard_array<T: Copy + Default>(
    shards: &[Vec<T>],
    global: &[u64],
    s: &Sharding,
    mesh: &Mesh,
) -> Result<Vec<T>> {
    if !s.partial.is_empty() {
        return Err(CodegenError::Data(
            "cannot reassemble a value with pending sums".into(),
        ));
    }
    if shards.len() as u64 != mesh.num_devices() {
        return Err(CodegenError::Data(format!(
            "{} shards for a mesh of {} devices",
            shards.len(),
            mesh.num_devices()
        )));
    }
    let mut out = vec![T::default(); global.iter().product::<u64>() as usize];
    for (device, shard) in shards.iter().enumerate() {
        let (origin, local) = shard_origin(global, s, mesh, device);
        check_len(shard, &local, &format!("shard of device {device}"))?;
        for_each_element(global, &origin, &local, |l, g| {
            if let Some(g) = g {
                out[g] = shard[l];
            }
        });
    }
    Ok(out)
}

/// Splits the program's global inputs (in the order of `program.inputs`) into what each device
/// is fed: `result[device][input]`.
pub fn shard_inputs<T: Copy + Default>(
    program: &SpmdProgram,
    globals: &[Vec<T>],
) -> Result<Vec<Vec<Vec<T>>>> {
    if globals.len() != program.inputs.len() {
        return Err(CodegenError::Data(format!(
            "{} inputs given, the program takes {}",
            globals.len(),
            program.inputs.len()
        )));
    }
    let mesh = program_mesh(program)?;
    (0..mesh.num_devices() as usize)
        .map(|dev| {
            program
                .inputs
                .iter()
                .zip(globals)
                .map(|(i, data)| {
                    shard_array(data, i.global.dims(), &i.sharding, mesh, dev)
                        .map_err(|e| CodegenError::Data(format!("input `{}`: {e}", i.name)))
                })
                .collect()
        })
        .collect()
}

/// Reassembles the program's global outputs from `per_device[device][output]`.
pub fn gather_outputs<T: Copy + Default>(
    program: &SpmdProgram,
    per_device: &[Vec<Vec<T>>],
) -> Result<Vec<Vec<T>>> {
    let mesh = program_mesh(program)?;
    program
        .outputs
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let shards: Vec<Vec<T>> = per_device
                .iter()
                .map(|outs| {
                    outs.get(k).cloned().ok_or_else(|| {
                        CodegenError::Data(format!(
                            "a device returned no output {k} (`{}`)",
                            o.name
                        ))
                    })
                })
                .collect::<Result<_>>()?;
            unshard_array(&shards, o.global.dims(), &o.sharding, mesh)
                .map_err(|e| CodegenError::Data(format!("output `{}`: {e}", o.name)))
        })
        .collect()
}

fn program_mesh(p: &SpmdProgram) -> Result<&Mesh> {
    p.graph
        .mesh
        .as_ref()
        .ok_or_else(|| CodegenError::Data("the program names no mesh".into()))
}
