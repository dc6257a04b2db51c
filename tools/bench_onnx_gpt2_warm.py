#!/usr/bin/env python3
"""One warm onnxruntime session run of an ONNX fixture, timed the way the executor's bench
(`cargo bench -p shardc-runtime --bench onnx_gpt2`) times shardc's prepared run: each run timed
alone, the median and minimum of `--runs` runs after `--warmup` runs, CPU provider, intra- and
inter-op threads `--threads`. Checks the outputs against PyTorch's saved ones.

    python3 tools/bench_onnx_gpt2_warm.py [--model gpt2.dynamo] [--threads 1] [--runs 2000]
"""

import argparse
import os
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "onnx")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2.dynamo")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    a = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = a.threads
    sess = ort.InferenceSession(
        os.path.join(DATA, f"{a.model}.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    inputs = dict(np.load(os.path.join(DATA, f"{a.model}.inputs.npz")))
    expected = list(np.load(os.path.join(DATA, f"{a.model}.outputs.npz")).values())
    for _ in range(a.warmup):
        out = sess.run(None, inputs)
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        sess.run(None, inputs)
        times.append(time.perf_counter() - t0)
    err = max(np.abs(o - e).max() / np.abs(e).max() for o, e in zip(out, expected))
    print(
        f"onnxruntime {ort.__version__} warm run, {a.threads} thread(s): median "
        f"{np.median(times) * 1e3:.4f} ms, min {min(times) * 1e3:.4f} ms ({a.runs} runs; "
        f"rel err {err:.1e}; load average {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
