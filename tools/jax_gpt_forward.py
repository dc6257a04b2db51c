#!/usr/bin/env python3
"""The zoo GPT's forward pass (and loss) in JAX on the CPU, timed: the yardstick for the
reference executor's speed (BENCHMARKS.md, `cargo bench -p shardc-runtime --bench gpt_forward`).

The model is `shardc zoo gpt` op for op: token + position embeddings, pre-LN blocks (layer norm
with gain and bias, eps 1e-5; fused qkv; causal softmax attention; tanh-approximation GELU MLP of
width 4h), a final layer norm, logits through the tied token embedding, mean cross-entropy.
GFLOP/s counts the matmuls only (2·m·n·k each), the same count `GraphStats::matmul_flops`
gives ours.

    pip install -r tools/requirements-jax.txt
    python3 tools/jax_gpt_forward.py            # GPT-2 small: l=12 h=768 a=12 s=256 V=50304 B=4
    python3 tools/jax_gpt_forward.py --layers 2 --hidden 64 --heads 4 --seq 32 --vocab 512
"""

import argparse
import json
import os
import time


def matmul_flops(l, h, a, s, v, b):
    t = b * s
    per_layer = 2 * t * h * 3 * h + 2 * t * h * h + 2 * 2 * t * h * 4 * h
    attention = 2 * 2 * b * a * s * s * (h // a)
    return l * (per_layer + attention) + 2 * t * h * v


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--vocab", type=int, default=50304)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    import jax
    import jax.numpy as jnp

    l, h, a, s, v, b = args.layers, args.hidden, args.heads, args.seq, args.vocab, args.batch
    d = h // a
    key = jax.random.PRNGKey(0)
    ks = iter(jax.random.split(key, 8 + 8 * l))

    def normal(shape, std=0.02):
        return std * jax.random.normal(next(ks), shape, jnp.float32)

    def ln_params():
        return (jnp.ones((h,), jnp.float32), jnp.zeros((h,), jnp.float32))

    params = {
        "wte": normal((v, h)),
        "wpe": normal((s, h)),
        "final_ln": ln_params(),
        "layers": [
            {
                "ln1": ln_params(),
                "qkv_w": normal((h, 3 * h)),
                "qkv_b": jnp.zeros((3 * h,)),
                "out_w": normal((h, h)),
                "out_b": jnp.zeros((h,)),
                "ln2": ln_params(),
                "fc1_w": normal((h, 4 * h)),
                "fc1_b": jnp.zeros((4 * h,)),
                "fc2_w": normal((4 * h, h)),
                "fc2_b": jnp.zeros((h,)),
            }
            for _ in range(l)
        ],
    }
    tokens = jax.random.randint(next(ks), (b, s), 0, v, jnp.int32)
    labels = jax.random.randint(next(ks), (b, s), 0, v, jnp.int32)

    def layer_norm(x, gb):
        mean = x.mean(-1, keepdims=True)
        c = x - mean
        var = (c * c).mean(-1, keepdims=True)
        return c * jax.lax.rsqrt(var + 1e-5) * gb[0] + gb[1]

    allowed = jnp.arange(s)[:, None] >= jnp.arange(s)[None, :]

    def block(x, p):
        y = layer_norm(x, p["ln1"])
        qkv = (y @ p["qkv_w"] + p["qkv_b"]).reshape(b, s, a, 3, d)
        q, k, vv = qkv[:, :, :, 0], qkv[:, :, :, 1], qkv[:, :, :, 2]
        scores = jnp.einsum("bsad,btad->bast", q, k) / jnp.sqrt(float(d))
        scores = jnp.where(allowed, scores, -1e9)
        probs = jax.nn.softmax(scores, axis=-1)
        ctx = jnp.einsum("bast,btad->bsad", probs, vv).reshape(b, s, h)
        x = x + ctx @ p["out_w"] + p["out_b"]
        y = layer_norm(x, p["ln2"])
        f = jax.nn.gelu(y @ p["fc1_w"] + p["fc1_b"], approximate=True)
        return x + f @ p["fc2_w"] + p["fc2_b"]

    def forward(params, tokens, labels):
        x = params["wte"][tokens] + params["wpe"]
        for p in params["layers"]:
            x = block(x, p)
        x = layer_norm(x, params["final_ln"])
        logits = jnp.einsum("bsh,vh->bsv", x, params["wte"])
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, labels[..., None], axis=-1).mean()

    f = jax.jit(forward)
    f(params, tokens, labels).block_until_ready()  # compile
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        f(params, tokens, labels).block_until_ready()
        times.append(time.perf_counter() - t0)
    best = min(times)
    flops = matmul_flops(l, h, a, s, v, b)
    print(
        json.dumps(
            {
                "jax": jax.__version__,
                "model": dict(layers=l, hidden=h, heads=a, seq=s, vocab=v, batch=b),
                "matmul_gflop": flops / 1e9,
                "seconds_best": best,
                "seconds_all": times,
                "gflops_per_s": flops / best / 1e9,
                "load_average": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
