#!/usr/bin/env python3
"""Writes the HLO that JAX lowers for a few sharded models, and XLA's own after-propagation HLO.

For each model NAME it writes, under tests/data/jax/:
  NAME.hlo                     pre-propagation HLO text (jit(...).lower(...).as_text("hlo")),
                               shardings only where the user gave them;
  NAME.after_propagation.hlo   the module after XLA's GSPMD sharding-propagation pass, a
                               sharding on every instruction (the expected answers).

Run from the repository root (needs `pip install jax`, CPU is enough):
    python3 tools/gen_jax_hlo.py
The outputs are committed so that tests do not need jax.
"""

import glob
import os
import shutil
import sys
import tempfile

# 8 CPU devices for a 2x4 mesh; must be set before jax is imported.
DUMP = tempfile.mkdtemp(prefix="shardc_xla_dump_")
os.environ["XLA_FLAGS"] = (
    "--xla_force_host_platform_device_count=8"
    f" --xla_dump_to={DUMP} --xla_dump_hlo_pass_re=sharding-propagation"
)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

# GSPMD, not Shardy: we compare against GSPMD's propagation and read its HLO sharding text.
jax.config.update("jax_use_shardy_partitioner", False)

OUT = os.path.join("tests", "data", "jax")
MESH = jax.make_mesh((2, 4), ("dp", "tp"), axis_types=(jax.sharding.AxisType.Auto,) * 2)


def ns(*spec):
    return NamedSharding(MESH, P(*spec))


def wsc(x, *spec):
    return jax.lax.with_sharding_constraint(x, ns(*spec))


# ---- models ------------------------------------------------------------------------------

B, S, D, H, F, HEADS = 8, 16, 64, 256, 256, 8


def mlp(x, w1, w2):
    h = jnp.tanh(x @ w1)
    return h @ w2


def megatron_mlp(x, w1, w2):
    # Column-split w1 and row-split w2 on tp: the hidden activation is split on tp.
    h = wsc(jnp.tanh(x @ w1), "dp", "tp")
    return h @ w2


def layer_norm(x, g, b):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + 1e-5) * g + b


def transformer_block(x, g1, b1, wqkv, wo, g2, b2, w1, w2):
    dh = D // HEADS
    h = layer_norm(x, g1, b1)
    qkv = jnp.einsum("bsd,dthk->tbshk", h, wqkv)
    q, k, v = qkv[0], qkv[1], qkv[2]
    q = wsc(q, "dp", None, "tp", None)
    scores = jnp.einsum("bshk,bthk->bhst", q, k) / jnp.sqrt(float(dh))
    mask = jnp.tril(jnp.ones((S, S), dtype=bool))
    scores = jnp.where(mask, scores, -1e9)
    probs = jax.nn.softmax(scores, axis=-1)
    att = jnp.einsum("bhst,bthk->bshk", probs, v)
    x = x + jnp.einsum("bshk,hkd->bsd", att, wo)
    h = layer_norm(x, g2, b2)
    u = wsc(jax.nn.gelu(h @ w1), "dp", None, "tp")
    return x + u @ w2


def mlp_loss(x, y, w1, w2):
    return jnp.mean((mlp(x, w1, w2) - y) ** 2)


mlp_grad = jax.grad(mlp_loss, argnums=(2, 3))

f32 = jnp.float32
sds = jax.ShapeDtypeStruct

MODELS = {
    "megatron_mlp": (
        megatron_mlp,
        [sds((B, D), f32), sds((D, H), f32), sds((H, D), f32)],
        [ns("dp", None), ns(None, "tp"), ns("tp", None)],
        ns("dp", None),
    ),
    "transformer_block": (
        transformer_block,
        [
            sds((B, S, D), f32),
            sds((D,), f32),
            sds((D,), f32),
            sds((D, 3, HEADS, D // HEADS), f32),
            sds((HEADS, D // HEADS, D), f32),
            sds((D,), f32),
            sds((D,), f32),
            sds((D, F), f32),
            sds((F, D), f32),
        ],
        [
            ns("dp", None, None),
            ns(None),
            ns(None),
            ns(None, None, "tp", None),
            ns("tp", None, None),
            ns(None),
            ns(None),
            ns(None, "tp"),
            ns("tp", None),
        ],
        ns("dp", None, None),
    ),
    "mlp_grad_dp": (
        mlp_grad,
        [sds((B, D), f32), sds((B, D), f32), sds((D, H), f32), sds((H, D), f32)],
        [ns("dp", None), ns("dp", None), ns(None, None), ns(None, None)],
        (ns(None, None), ns(None, None)),
    ),
    "mlp_dp": (
        mlp,
        [sds((B, D), f32), sds((D, H), f32), sds((H, D), f32)],
        [ns("dp", None), ns(None, None), ns(None, None)],
        ns("dp", None),
    ),
}


def after_propagation_dump(before):
    """The newest after-sharding-propagation dump that appeared since `before`."""
    files = set(glob.glob(os.path.join(DUMP, "*after_sharding-propagation*.txt")))
    new = sorted(files - before, key=os.path.getmtime)
    return new[-1] if new else None


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (f, args, ins, outs) in MODELS.items():
        lowered = jax.jit(f, in_shardings=ins, out_shardings=outs).lower(*args)
        with open(os.path.join(OUT, f"{name}.hlo"), "w") as fh:
            fh.write(lowered.as_text(dialect="hlo"))
        before = set(glob.glob(os.path.join(DUMP, "*after_sharding-propagation*.txt")))
        compiled = lowered.compile()
        dump = after_propagation_dump(before)
        target = os.path.join(OUT, f"{name}.after_propagation.hlo")
        if dump:
            shutil.copyfile(dump, target)
            print(f"{name}: {os.path.basename(dump)}")
        else:
            with open(target, "w") as fh:
                fh.write(compiled.as_text())
            print(f"{name}: no dump produced, wrote compiled HLO", file=sys.stderr)
    shutil.rmtree(DUMP, ignore_errors=True)


if __name__ == "__main__":
    main()
