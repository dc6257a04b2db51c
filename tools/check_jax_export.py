#!/usr/bin/env python3
"""Applies a `shardc plan --export jax` snippet with JAX and checks that the plan took.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu \\
        python3 tools/check_jax_export.py SNIPPET.py PLAN.sdy

SNIPPET.py is the jax export of a plan; PLAN.sdy the sdy export of the same plan (it gives each
input's type and its expected Shardy sharding). The script runs the snippet on the host's
devices (8 CPU devices with the flags above), puts an array of the right shape and dtype for
every entry of `shardings` on the mesh with the snippet's `place`, checks that every placed
array has the planned sharding, then lowers a jitted function of all of them and checks that
the lowered module gives every argument the planned sharding. Prints one line per failure and
`ok: N inputs` at the end; exits 1 on any failure.
"""

import re
import sys

DTYPES = {
    "f32": "float32",
    "f64": "float64",
    "bf16": "bfloat16",
    "f16": "float16",
    "i32": "int32",
    "i64": "int64",
    "u32": "uint32",
    "u64": "uint64",
    "bool": "bool",
}


def read_sdy(path):
    """`%name: f32[2,3] #sdy.sharding<@mesh, [...]>` lines as {name: (dtype, dims, sharding)}."""
    out = {}
    with open(path) as f:
        lines = f.read().splitlines()[1:]
    for line in lines:
        m = re.match(r"^%(.*?): (\w+)\[([0-9,]*)\] (#sdy\.sharding<.*>)$", line)
        if not m:
            raise SystemExit(f"{path}: unexpected line {line!r}")
        name, dtype, dims, sharding = m.groups()
        shape = tuple(int(d) for d in dims.split(",") if d)
        out[name] = (dtype, shape, sharding)
    return out


def dims_of(sharding):
    """The per-dim axes of `#sdy.sharding<@mesh, [{"dp"}, {}]...>`, ignoring what follows."""
    inner = sharding[sharding.index("[") :]
    depth, end = 0, 0
    for i, c in enumerate(inner):
        depth += c == "["
        depth -= c == "]"
        if depth == 0:
            end = i
            break
    dims = re.findall(r"\{([^}]*)\}", inner[: end + 1])
    return [tuple(a.strip().strip('"') for a in d.split(",") if a.strip()) for d in dims]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    snippet, sdy = sys.argv[1], sys.argv[2]
    import jax
    import numpy as np

    expected = read_sdy(sdy)
    env = {"__name__": "shardc_plan"}
    with open(snippet) as f:
        exec(compile(f.read(), snippet, "exec"), env)
    shardings, place, mesh = env["shardings"], env["place"], env["mesh"]
    failures = []
    arrays = {}
    for name in shardings:
        if name not in expected:
            failures.append(f"{name}: in the snippet, not in the plan's values")
            continue
        dtype, shape, _ = expected[name]
        arrays[name] = np.zeros(shape, dtype=DTYPES.get(dtype, dtype))
    placed = place(arrays)
    for name, x in placed.items():
        want = shardings[name]
        if not x.sharding.is_equivalent_to(want, x.ndim):
            failures.append(f"{name}: placed with {x.sharding}, the plan says {want}")
    names = sorted(placed)
    fn = jax.jit(lambda *xs: [x for x in xs])
    text = fn.lower(*[placed[n] for n in names]).as_text()
    # The ENTRY function's arguments in order, each with its sharding attribute.
    header = text[text.index("func.func public @main(") :]
    header = header[: header.index("{\n")]
    parts = re.split(r"%arg(\d+): ", header)[1:]
    args = list(zip(parts[0::2], parts[1::2]))
    if len(args) != len(names):
        failures.append(f"the lowered module has {len(args)} arguments for {len(names)} inputs")
    for (i, attrs), name in zip(args, names):
        m = re.search(r"(#sdy\.sharding<[^>]*>|mhlo\.sharding = \"[^\"]*\")", attrs)
        got = m.group(1) if m else ""
        want_dims = dims_of(expected[name][2])
        if got.startswith("#sdy"):
            ok = dims_of(got) == want_dims
        else:
            # Without Shardy, XLA's sharding: compare with the placed array's own HLO sharding.
            hlo = placed[name].sharding._to_xla_hlo_sharding(placed[name].ndim)
            ok = str(hlo) in got or (not any(want_dims) and ("replicated" in got or not got))
        if not ok:
            failures.append(f"{name} (argument {i}): lowered with `{got}`, the plan says {want_dims}")
    for f in failures:
        print(f)
    print(f"{'FAILED' if failures else 'ok'}: {len(names)} inputs on mesh {dict(mesh.shape)}, {len(jax.devices())} devices")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
