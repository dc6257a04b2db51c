#!/usr/bin/env python3
"""Writes the HLO that JAX lowers for a few sharded models, and XLA's own after-propagation HLO.

For each model NAME it writes, under tests/data/jax/:
  NAME.hlo                     pre-propagation HLO text (jit(...).lower(...).as_text("hlo")),
                               shardings only where the user gave them;
  NAME.after_propagation.hlo   the module after XLA's GSPMD sharding-propagation pass, a
                               sharding on every instruction (the expected answers).
For the programs (PROGRAMS) also:
  NAME.mlir                    StableHLO as jax prints it by default (`lowered.as_text()`, Shardy
                               on: `sdy.mesh`, `sdy.sharding`);
  NAME.gspmd.mlir              the same StableHLO with Shardy off (`mhlo.sharding` attributes).

Run from the repository root (needs `pip install jax`, CPU is enough):
    python3 tools/gen_jax_hlo.py
The outputs are committed so that tests do not need jax.
"""

import glob
import json
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



# ---- programs as users write them (issue 13): tiny dims, 2x4 mesh --------------------------

V, T, E, NH, KV, FF, L = 32, 8, 16, 4, 2, 32, 2  # vocab, seq, width, heads, kv heads, ffn, layers


def _attention(h, wq, wk, wv, wo, n_kv):
    b, t, _ = h.shape
    q = jnp.einsum("btd,dhk->bthk", h, wq)
    k = jnp.einsum("btd,dhk->bthk", h, wk)
    v = jnp.einsum("btd,dhk->bthk", h, wv)
    rep = q.shape[2] // n_kv
    k = jnp.repeat(k, rep, axis=2)
    v = jnp.repeat(v, rep, axis=2)
    s = jnp.einsum("bthk,bshk->bhts", q, k) / jnp.sqrt(float(q.shape[-1]))
    mask = jnp.tril(jnp.ones((t, t), dtype=bool))
    s = jnp.where(mask, s, -1e9)
    p = jax.nn.softmax(s, axis=-1)
    o = jnp.einsum("bhts,bshk->bthk", p, v)
    return jnp.einsum("bthk,hkd->btd", o, wo)


def gpt_params_shapes():
    dh = E // NH
    return {
        "emb": ((V, E), P(None, "tp")),
        "wq": ((E, NH, dh), P(None, "tp", None)),
        "wk": ((E, NH, dh), P(None, "tp", None)),
        "wv": ((E, NH, dh), P(None, "tp", None)),
        "wo": ((NH, dh, E), P("tp", None, None)),
        "w1": ((E, FF), P(None, "tp")),
        "w2": ((FF, E), P("tp", None)),
        "g": ((E,), P(None)),
    }


def gpt_forward(params, tokens):
    x = params["emb"][tokens]
    h = layer_norm(x, params["g"], 0.0)
    x = x + _attention(h, params["wq"], params["wk"], params["wv"], params["wo"], NH)
    h = layer_norm(x, params["g"], 0.0)
    x = x + jax.nn.gelu(h @ params["w1"]) @ params["w2"]
    return x @ params["emb"].T


def gpt_loss(params, tokens, labels):
    logits = gpt_forward(params, tokens)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))


def gpt_adam(params, m, v, tokens, labels):
    """One training step: loss, gradients, an Adam update with bias correction (step 1)."""
    loss, g = jax.value_and_grad(gpt_loss)(params, tokens, labels)
    b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
    params = jax.tree.map(
        lambda p, m, v: p - lr * (m / (1 - b1)) / (jnp.sqrt(v / (1 - b2)) + eps), params, m, v
    )
    return loss, params, m, v


def gpt_scan(emb, wqkv, wo, w1, w2, tokens):
    """GPT with its layers stacked and run by lax.scan."""
    x = emb[tokens]

    def layer(x, w):
        wqkv, wo, w1, w2 = w
        h = layer_norm(x, 1.0, 0.0)
        qkv = jnp.einsum("btd,dchk->cbthk", h, wqkv)
        x = x + _attention_qkv(qkv, wo)
        h = layer_norm(x, 1.0, 0.0)
        return x + jax.nn.gelu(h @ w1) @ w2, None

    x, _ = jax.lax.scan(layer, x, (wqkv, wo, w1, w2))
    return x @ emb.T


def _attention_qkv(qkv, wo):
    q, k, v = qkv[0], qkv[1], qkv[2]
    t = q.shape[1]
    s = jnp.einsum("bthk,bshk->bhts", q, k) / jnp.sqrt(float(q.shape[-1]))
    s = jnp.where(jnp.tril(jnp.ones((t, t), dtype=bool)), s, -1e9)
    o = jnp.einsum("bhts,bshk->bthk", jax.nn.softmax(s, axis=-1), v)
    return jnp.einsum("bthk,hkd->btd", o, wo)


def mlp_dropout(x, w1, w2):
    """An MLP with dropout drawn from jax.random (a fixed key, so the bits are reproducible)."""
    key = jax.random.key(42)
    h = jax.nn.relu(x @ w1)
    keep = jax.random.bernoulli(key, 0.9, h.shape)
    h = jnp.where(keep, h / 0.9, 0.0)
    return h @ w2


def moe_top2(x, wg, w1, w2):
    """Top-2 mixture of experts: router softmax, lax.top_k, dense dispatch by one-hot weights."""
    logits = x @ wg  # [tokens, experts]
    probs = jax.nn.softmax(logits, axis=-1)
    top_p, top_i = jax.lax.top_k(probs, 2)
    top_p = top_p / jnp.sum(top_p, axis=-1, keepdims=True)
    gate = jnp.sum(jax.nn.one_hot(top_i, wg.shape[1]) * top_p[..., None], axis=1)  # [t, e]
    h = jax.nn.gelu(jnp.einsum("td,edf->tef", x, w1))
    y = jnp.einsum("tef,efd->ted", h, w2)
    return jnp.einsum("ted,te->td", y, gate)


def rms_norm(x, g):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6) * g


def rope(x):
    t, dh = x.shape[1], x.shape[-1]
    inv = 1.0 / (10000.0 ** (jnp.arange(0, dh, 2, dtype=jnp.float32) / dh))
    ang = jnp.arange(t, dtype=jnp.float32)[:, None] * inv[None, :]
    sin, cos = jnp.sin(ang)[None, :, None, :], jnp.cos(ang)[None, :, None, :]
    x1, x2 = x[..., ::2], x[..., 1::2]
    out = jnp.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return out.reshape(x.shape)


def llama_block(x, g1, wq, wk, wv, wo, g2, wg, wu, wd):
    h = rms_norm(x, g1)
    q = rope(jnp.einsum("btd,dhk->bthk", h, wq))
    k = rope(jnp.einsum("btd,dhk->bthk", h, wk))
    v = jnp.einsum("btd,dhk->bthk", h, wv)
    rep = q.shape[2] // k.shape[2]
    k, v = jnp.repeat(k, rep, axis=2), jnp.repeat(v, rep, axis=2)
    t = q.shape[1]
    s = jnp.einsum("bthk,bshk->bhts", q, k) / jnp.sqrt(float(q.shape[-1]))
    s = jnp.where(jnp.tril(jnp.ones((t, t), dtype=bool)), s, -jnp.inf)
    o = jnp.einsum("bhts,bshk->bthk", jax.nn.softmax(s, axis=-1), v)
    x = x + jnp.einsum("bthk,hkd->btd", o, wo)
    h = rms_norm(x, g2)
    return x + (jax.nn.silu(h @ wg) * (h @ wu)) @ wd


def llama_loss(x, *w):
    return jnp.mean(llama_block(x, *w) ** 2)


llama_grad = jax.grad(llama_loss, argnums=tuple(range(1, 10)))


def conv_bn_pool(x, w, gamma, beta):
    """Conv 3x3, batch norm (batch statistics), relu, 2x2 max pool; a loss and its gradients."""

    def f(w, gamma, beta):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        mu = jnp.mean(y, axis=(0, 1, 2))
        var = jnp.var(y, axis=(0, 1, 2))
        y = (y - mu) * jax.lax.rsqrt(var + 1e-5) * gamma + beta
        y = jax.nn.relu(y)
        y = jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        return jnp.mean(y**2)

    return jax.value_and_grad(f, argnums=(0, 1, 2))(w, gamma, beta)


def shard_map_matmul(x, w):
    """Row-parallel matmul written per device: local dot, psum over tp."""

    def local(x, w):
        return jax.lax.psum(x @ w, "tp")

    return jax.shard_map(local, mesh=MESH, in_specs=(P("dp", "tp"), P("tp", None)), out_specs=P("dp", None))(x, w)


def softplus_cumsum(x, w):
    """Our choice: exact (erf) GELU, softplus (log1p/expm1), clip, cumsum, rounding and a fori_loop."""
    h = jax.nn.gelu(x @ w, approximate=False)
    h = jnp.clip(h, -2.0, 2.0)
    h = jnp.log1p(jnp.exp(-jnp.abs(h))) + jnp.maximum(h, 0.0) + jnp.expm1(h * 0.1)
    h = jnp.cumsum(h, axis=-1)
    h = jax.lax.fori_loop(0, 3, lambda i, h: jnp.sin(h) + jnp.floor(h) * 0.5, h)
    return jnp.round(h * 4.0) / 4.0 + jnp.sign(h) * jnp.arctan2(h, 1.0 + h * h)


def random_bits():
    """jax.random as it is: raw threefry bits and a uniform draw (the expected values are
    written too, so tests can check that shardc draws the same bits)."""
    key = jax.random.key(7)
    k1, k2 = jax.random.split(key)
    return jax.random.bits(k1, (8, 4)), jax.random.uniform(k2, (8, 4))


def rbg_bits():
    """jax's `rbg` PRNG (XLA's `rng-bit-generator`, Philox on CPU): bits and a uniform draw from
    a split key; and Threefry-algorithm bits of an odd shape (its halves are trimmed)."""
    k1, k2 = jax.random.split(jax.random.key(7, impl="rbg"))
    state = jnp.array([1, 2, 3, 4], dtype=jnp.uint32)
    three_fry = jax.lax.RandomAlgorithm.RNG_THREE_FRY
    _, odd = jax.lax.rng_bit_generator(state, (3, 5), dtype=jnp.uint32, algorithm=three_fry)
    return jax.random.bits(k1, (8, 4)), jax.random.uniform(k2, (8, 4)), odd


def _params_specs():
    shapes = gpt_params_shapes()
    return ({k: sds(s, f32) for k, (s, _) in shapes.items()}, {k: ns(*p) for k, (_, p) in shapes.items()})


_gp, _gs = _params_specs()
_tok = sds((4, T), jnp.int32)
_dh = E // NH

PROGRAMS = {
    "gpt_adam": (
        gpt_adam,
        [_gp, _gp, _gp, _tok, _tok],
        [_gs, _gs, _gs, ns("dp", None), ns("dp", None)],
        (ns(), _gs, _gs, _gs),
    ),
    "gpt_scan": (
        gpt_scan,
        [sds((V, E), f32), sds((L, E, 3, NH, _dh), f32), sds((L, NH, _dh, E), f32), sds((L, E, FF), f32), sds((L, FF, E), f32), _tok],
        [ns(None, "tp"), ns(None, None, None, "tp", None), ns(None, "tp", None, None), ns(None, None, "tp"), ns(None, "tp", None), ns("dp", None)],
        ns("dp", None, None),
    ),
    "mlp_dropout": (
        mlp_dropout,
        [sds((8, E), f32), sds((E, FF), f32), sds((FF, E), f32)],
        [ns("dp", None), ns(None, "tp"), ns("tp", None)],
        ns("dp", None),
    ),
    "moe_top2": (
        moe_top2,
        [sds((16, E), f32), sds((E, 4), f32), sds((4, E, FF), f32), sds((4, FF, E), f32)],
        [ns("dp", None), ns(None, None), ns("tp", None, None), ns("tp", None, None)],
        ns("dp", None),
    ),
    "llama_grad": (
        llama_grad,
        [sds((4, T, E), f32), sds((E,), f32), sds((E, NH, _dh), f32), sds((E, KV, _dh), f32), sds((E, KV, _dh), f32),
         sds((NH, _dh, E), f32), sds((E,), f32), sds((E, FF), f32), sds((E, FF), f32), sds((FF, E), f32)],
        [ns("dp", None, None), ns(None), ns(None, "tp", None), ns(None, None, None), ns(None, None, None),
         ns("tp", None, None), ns(None), ns(None, "tp"), ns(None, "tp"), ns("tp", None)],
        None,
    ),
    "conv_bn_pool": (
        conv_bn_pool,
        [sds((2, 8, 8, 4), f32), sds((3, 3, 4, 8), f32), sds((8,), f32), sds((8,), f32)],
        [ns("dp", "tp", None, None), ns(None, None, None, None), ns(None), ns(None)],
        None,
    ),
    "shard_map_matmul": (
        shard_map_matmul,
        [sds((8, 16), f32), sds((16, 8), f32)],
        [ns("dp", "tp"), ns("tp", None)],
        ns("dp", None),
    ),
    "random_bits": (random_bits, [], [], (ns("dp", None), ns("dp", None))),
    "rbg_bits": (rbg_bits, [], [], (ns("dp", None), ns("dp", None), ns())),
    "softplus_cumsum": (
        softplus_cumsum,
        [sds((8, E), f32), sds((E, 8), f32)],
        [ns("dp", None), ns(None, None)],
        ns("dp", None),
    ),
}


def after_propagation_dump(before):
    """The newest after-sharding-propagation dump that appeared since `before`."""
    files = set(glob.glob(os.path.join(DUMP, "*after_sharding-propagation*.txt")))
    new = sorted(files - before, key=os.path.getmtime)
    return new[-1] if new else None


def lower(f, args, ins, outs, shardy):
    jax.config.update("jax_use_shardy_partitioner", shardy)
    kw = {"in_shardings": ins}
    if outs is not None:
        kw["out_shardings"] = outs
    return jax.jit(f, **kw).lower(*args)


def main():
    """Writes every model and program, or those named on the command line."""
    os.makedirs(OUT, exist_ok=True)
    wanted = set(sys.argv[1:])
    every = {**MODELS, **PROGRAMS}
    for name, (f, args, ins, outs) in every.items():
        if wanted and name not in wanted:
            continue
        if name in PROGRAMS:
            # StableHLO with Shardy shardings (jax's default today): `lowered.as_text()`.
            with open(os.path.join(OUT, f"{name}.mlir"), "w") as fh:
                fh.write(lower(f, args, ins, outs, True).as_text())
        lowered = lower(f, args, ins, outs, False)
        if name in PROGRAMS:
            with open(os.path.join(OUT, f"{name}.gspmd.mlir"), "w") as fh:
                fh.write(lowered.as_text())
        if not args:
            # No inputs: the outputs are fixed, so write them for tests to compare with.
            vals = jax.jit(f)()
            with open(os.path.join(OUT, f"{name}.expected.json"), "w") as fh:
                json.dump([[float(x) for x in jnp.ravel(v)] for v in vals], fh)
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
