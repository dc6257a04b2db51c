#!/usr/bin/env python3
"""Exports the ONNX fixtures of tests/data/onnx/ with PyTorch itself.

Run by hand (tests never need Python):

    pip install torch torchvision transformers onnx onnxscript onnxruntime
    python scripts/make-onnx-fixtures.py [--out tests/data/onnx] [--only gpt2,mlp]

Every model is built from a small config with random weights (seeded; nothing is downloaded):
2-layer, narrow versions of GPT-2, Llama (grouped-query attention, rotary embeddings), Qwen2,
Phi, GPT-NeoX and BERT from transformers, torchvision's ResNet-18 with its channel widths divided
by 8, and an MLP. Each is exported by torch's exporters:

- `NAME.dynamo.onnx` (+ `NAME.dynamo.onnx.data`): `torch.onnx.export(..., dynamo=True,
  external_data=True)`, the default exporter, weights in an external data file;
- `NAME.ts.onnx`: the TorchScript exporter (`dynamo=False`), weights inside the model; GPT-2's
  has dynamic `batch` and `seq` dims (the importer's `--dim`).

Beside each export `NAME.EXPORTER.inputs.npz` (keyed by the ONNX input names; the TorchScript
exports of the language models also take an `attention_mask`) and `NAME.EXPORTER.outputs.npz`
(PyTorch's outputs, keyed by the ONNX output names). onnxruntime runs every export as a sanity check of the file itself; a
model whose export fails is reported and skipped, not silently written.
"""

import argparse
import os
import sys

import numpy as np
import torch
from torch import nn

SEED = 0
BATCH, SEQ = 2, 8
VOCAB = 96


def lm_configs():
    """Small configs of the causal language models: 2 layers, hidden 32, 4 heads."""
    import transformers as tf

    common = dict(vocab_size=VOCAB, use_cache=False)
    return {
        "gpt2": lambda: tf.GPT2LMHeadModel(
            tf.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, **common)
        ),
        "llama": lambda: tf.LlamaForCausalLM(
            tf.LlamaConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=64,
                **common,
            )
        ),
        "qwen2": lambda: tf.Qwen2ForCausalLM(
            tf.Qwen2Config(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=64,
                **common,
            )
        ),
        "phi": lambda: tf.PhiForCausalLM(
            tf.PhiConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                partial_rotary_factor=0.5,
                max_position_embeddings=64,
                **common,
            )
        ),
        "gpt_neox": lambda: tf.GPTNeoXForCausalLM(
            tf.GPTNeoXConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                rotary_pct=0.25,
                max_position_embeddings=64,
                **common,
            )
        ),
        "bert": lambda: tf.BertModel(
            tf.BertConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=64,
                vocab_size=VOCAB,
            ),
            add_pooling_layer=True,
        ),
    }


def resnet18_narrow():
    """torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2]) with stage widths 8, 16, 32, 64.

    torchvision hard-codes the widths 64..512; dividing `planes` by 8 in `_make_layer` keeps
    every layer of the real architecture (stem, max pool, downsample shortcuts, average pool)
    at a size whose weights fit in a small fixture.
    """
    from torchvision.models.resnet import BasicBlock, ResNet

    class NarrowResNet(ResNet):
        def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
            return super()._make_layer(block, planes // 8, blocks, stride, dilate)

    m = NarrowResNet(BasicBlock, [2, 2, 2, 2], num_classes=10)
    m.fc = nn.Linear(64, 10)
    # Random running statistics, so BatchNormalization's inference form is really exercised.
    g = torch.Generator().manual_seed(SEED)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m


def mlp():
    return nn.Sequential(
        nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 10)
    )


def tensors_only(model):
    """Makes `model(input_ids)` return plain tensors (logits; BERT's hidden states and pooled
    output) by replacing the instance's `forward`, so that parameter names stay the module
    paths of the transformers model itself (a wrapper module would prefix them)."""
    inner = model.forward

    def forward(input_ids, attention_mask=None):
        out = inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, return_dict=True)
        if hasattr(out, "logits"):
            return out.logits
        return out.last_hidden_state, out.pooler_output

    model.forward = forward
    return model


def models():
    ms = {name: ((lambda make=make: tensors_only(make())), "lm") for name, make in lm_configs().items()}
    ms["resnet18"] = (resnet18_narrow, "image")
    ms["mlp"] = (mlp, "vector")
    return ms


def example_inputs(kind, exporter):
    g = torch.Generator().manual_seed(SEED + 1)
    if kind == "lm":
        ids = {"input_ids": torch.randint(0, VOCAB, (BATCH, SEQ), generator=g)}
        if exporter == "ts":
            # transformers' mask code for a model called without a mask uses `aten::diff`,
            # which the TorchScript exporter lacks; with a mask it does not. The last key of
            # the second sequence is padding, so the mask really takes part.
            mask = torch.ones(BATCH, SEQ, dtype=torch.int64)
            mask[1, -1] = 0
            ids["attention_mask"] = mask
        return ids
    if kind == "image":
        return {"x": torch.randn(1, 3, 32, 32, generator=g)}
    return {"x": torch.randn(4, 32, generator=g)}


def as_tuple(out):
    if isinstance(out, torch.Tensor):
        return (out,)
    return tuple(o for o in out if isinstance(o, torch.Tensor))


def export(model, inputs, path, dynamo, dynamic):
    args = tuple(inputs.values())
    names = list(inputs)
    if dynamo:
        prog = torch.onnx.export(
            model, args, input_names=names, dynamo=True, external_data=True, optimize=True
        )
        prog.save(path, external_data=True)
        return
    dynamic_axes = {n: {0: "batch", 1: "seq"} for n in names} if dynamic else None
    torch.onnx.export(
        model,
        args,
        path,
        input_names=names,
        dynamo=False,
        opset_version=17,
        dynamic_axes=dynamic_axes,
    )


def check_with_onnxruntime(path, inputs, expected):
    import onnx
    import onnxruntime as ort

    m = onnx.load(path, load_external_data=False)
    out_names = [o.name for o in m.graph.output]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {k: v.numpy() for k, v in inputs.items() if k in {i.name for i in sess.get_inputs()}}
    got = sess.run(None, feed)
    for name, g, e in zip(out_names, got, expected):
        err = np.abs(g - e).max() / max(np.abs(e).max(), 1e-30)
        if err > 1e-4:
            raise RuntimeError(f"onnxruntime differs from PyTorch on {name}: {err:.2e}")
    return out_names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/onnx")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    only = set(filter(None, a.only.split(",")))
    failures = []
    for name, (make, kind) in models().items():
        if only and name not in only:
            continue
        torch.manual_seed(SEED)
        model = make().eval()
        for exporter in ("dynamo", "ts"):
            inputs = example_inputs(kind, exporter)
            with torch.no_grad():
                expected = [t.numpy() for t in as_tuple(model(*inputs.values()))]
            path = os.path.join(a.out, f"{name}.{exporter}.onnx")
            try:
                with torch.no_grad():
                    export(model, inputs, path, exporter == "dynamo", name == "gpt2")
                out_names = check_with_onnxruntime(path, inputs, expected)
            except Exception as e:  # noqa: BLE001 - report every failing export, keep going
                failures.append(f"{name} ({exporter}): {type(e).__name__}: {e}")
                print(f"FAILED {name} ({exporter}): {e}", file=sys.stderr)
                for p in (path, path + ".data"):
                    if os.path.exists(p):
                        os.remove(p)
                continue
            np.savez(
                os.path.join(a.out, f"{name}.{exporter}.inputs.npz"),
                **{k: v.numpy() for k, v in inputs.items()},
            )
            np.savez(
                os.path.join(a.out, f"{name}.{exporter}.outputs.npz"),
                **dict(zip(out_names, expected)),
            )
            print(f"wrote {path}")
    for f in failures:
        print("export failed:", f, file=sys.stderr)


if __name__ == "__main__":
    main()
