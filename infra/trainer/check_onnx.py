"""Checks that a model dir's model.onnx computes the same logits as its torch weights.

    python check_onnx.py --model-dir DIR [--onnx PATH] [--tol 1e-3]

Runs both on fixed (seeded) random inputs of several shapes, plus a real templated prompt, in onnxruntime (CPU) and
torch, and prints {"max_abs_diff": x, ...} on stdout. Exit code 1 when x > tol, or when the graph's input/output
names, dtypes or shapes are not input_ids int64 [batch, seq] -> logits float32 [batch, seq, vocab].
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

import byte_tokenizer as tok  # noqa: E402
from tiny_gpt import load_model_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--onnx", help="default: MODEL_DIR/model.onnx")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    model = load_model_dir(args.model_dir)
    cfg = model.cfg
    onnx_path = args.onnx or os.path.join(args.model_dir, "model.onnx")
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    problems = []
    ins, outs = sess.get_inputs(), sess.get_outputs()
    if [i.name for i in ins] != ["input_ids"] or ins[0].type != "tensor(int64)" or len(ins[0].shape) != 2:
        problems.append(f"unexpected inputs {[(i.name, i.type, i.shape) for i in ins]}")
    if outs[0].name != "logits" or outs[0].type != "tensor(float)" or len(outs[0].shape) != 3 or outs[0].shape[2] != cfg.vocab_size:
        problems.append(f"unexpected outputs {[(o.name, o.type, o.shape) for o in outs]}")

    g = torch.Generator().manual_seed(args.seed)
    inputs = [torch.randint(0, cfg.vocab_size, (b, t), generator=g) for b, t in ((1, 1), (2, 7), (4, 33), (2, cfg.max_len))]
    prompt = tok.encode_prompt("Compute 47+85.")[: cfg.max_len]
    inputs.append(torch.tensor([prompt]))
    worst = 0.0
    shapes = []
    for ids in inputs:
        with torch.no_grad():
            ref = model(ids).numpy()
        got = sess.run(["logits"], {"input_ids": ids.numpy().astype(np.int64)})[0]
        if got.shape != ref.shape or got.dtype != np.float32:
            problems.append(f"shape/dtype {got.shape} {got.dtype} != {ref.shape} float32")
            continue
        worst = max(worst, float(np.abs(got - ref).max()))
        shapes.append(list(ids.shape))
    ok = not problems and worst <= args.tol
    print(json.dumps({"max_abs_diff": worst, "ok": ok, "tol": args.tol, "shapes": shapes, "onnx": onnx_path,
                      "onnxruntime": ort.__version__, "problems": problems}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
