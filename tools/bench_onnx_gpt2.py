#!/usr/bin/env python3
"""Times the GPT-2 ONNX fixture on shardc's reference executor and on onnxruntime (CPU).

    pip install -r tools/requirements-onnx.txt
    python tools/bench_onnx_gpt2.py [--shardc target/release/shardc] [--threads 1] [--repeat 20]

The warm-run figure for shardc's reference executor alone (import and binding once, then one
`execute` per iteration, as a warm onnxruntime session runs) is the criterion bench
`cargo bench -p shardc-runtime --bench onnx_gpt2` (it prints the median of 2000 single runs),
and `tools/bench_onnx_gpt2_warm.py` times onnxruntime's warm session run the same way;
BENCHMARKS.md sets the two side by side.

Both run the same file (`tests/data/onnx/gpt2.dynamo.onnx`) on the same inputs with the same
thread count (onnxruntime's intra- and inter-op pools; shardc's reference executor is single
threaded, RAYON_NUM_THREADS is set for its kernels). shardc is timed as the `shardc run`
process (ONNX import, verification and one execution); onnxruntime both as session creation
plus one run (the same work) and as one run of a warm session. The minimum of `--repeat`
runs is reported, with the outputs checked against PyTorch's.
"""

import argparse
import os
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "onnx")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", default=os.path.join(ROOT, "target", "release", "shardc"))
    ap.add_argument("--model", default="gpt2.dynamo")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    model = os.path.join(DATA, f"{a.model}.onnx")
    inputs = dict(np.load(os.path.join(DATA, f"{a.model}.inputs.npz")))
    expected = list(np.load(os.path.join(DATA, f"{a.model}.outputs.npz")).values())

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = a.threads
    cold, warm = [], []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        out = sess.run(None, inputs)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sess.run(None, inputs)
        warm.append(time.perf_counter() - t0)
    err = max(np.abs(o - e).max() / np.abs(e).max() for o, e in zip(out, expected))
    print(f"onnxruntime {ort.__version__}: create+run {min(cold) * 1e3:.2f} ms, warm run {min(warm) * 1e3:.3f} ms (rel err {err:.1e})")

    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    times = []
    with tempfile.TemporaryDirectory() as d:
        out_path = os.path.join(d, "out.npz")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [a.shardc, "run", model, "--inputs", os.path.join(DATA, f"{a.model}.inputs.npz"), "--outputs", out_path],
                check=True, env=env, stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - t0)
        got = list(np.load(out_path).values())
    err = max(np.abs(o - e).max() / np.abs(e).max() for o, e in zip(got, expected))
    print(f"shardc ({a.shardc}): import+verify+run process {min(times) * 1e3:.2f} ms (rel err {err:.1e})")
    print(f"ratio shardc / onnxruntime create+run: {min(times) / min(cold):.2f}")


if __name__ == "__main__":
    main()
