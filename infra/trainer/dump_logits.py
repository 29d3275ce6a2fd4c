"""Prints the torch student's logits for given token ids, so another runtime (onnxruntime-node) can be checked
against the weights it was exported from.

    python dump_logits.py --model-dir DIR --inputs inputs.json --out logits.json

inputs.json: {"input_ids": [[...], ...]} (rows of equal length); logits.json: {"shape": [b, t, v], "data": [...]}
(row-major float32 values).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from tiny_gpt import load_model_dir  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model = load_model_dir(args.model_dir)
    model.eval()
    with open(args.inputs, encoding="utf-8") as f:
        ids = torch.tensor(json.load(f)["input_ids"], dtype=torch.long)
    with torch.no_grad():
        logits = model(ids).float()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"shape": list(logits.shape), "data": logits.flatten().tolist()}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
