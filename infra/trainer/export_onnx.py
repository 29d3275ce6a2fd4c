"""ONNX export of the tiny GPT, and atomic writing of a complete model dir.

    python export_onnx.py --model-dir DIR
        (Re-)exports DIR/model.onnx from DIR's config.json + weights.
    python export_onnx.py --init-only --output DIR --config config.json
        Writes the model training would start from (random init seeded by the config's `seed`, or `init_from`) as
        a complete model dir (weights, config.json, tokenizer.json, model.onnx) without training: the
        "before fine-tuning" baseline.

The graph: input `input_ids` int64 [batch, seq], output `logits` float32 [batch, seq, 259], both axes dynamic
(seq <= max_len), opset 18, weights embedded (single file). stdout carries one JSON line with the result; logs go
to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from typing import Any

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from tiny_gpt import TinyGPT, fsync_dir, load_model_dir, save_model_dir  # noqa: E402
from durable_files import atomic_file  # noqa: E402

ONNX_FILE = "model.onnx"
OPSET = 18


def _log(msg: str) -> None:
    print(f"[export_onnx] {msg}", file=sys.stderr, flush=True)


def _export_to(model: TinyGPT, path: str) -> str:
    """Exports with the torch.export-based exporter; falls back to the TorchScript one if that fails."""
    example = torch.randint(0, model.cfg.vocab_size, (2, min(8, model.cfg.max_len)), dtype=torch.long)
    # The exporters print progress on stdout, which is reserved for JSON events.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            batch = torch.export.Dim("batch", min=1, max=4096)
            seq = torch.export.Dim("seq", min=1, max=model.cfg.max_len)
            torch.onnx.export(
                model, (example,), path, input_names=["input_ids"], output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch, 1: seq}}, opset_version=OPSET, dynamo=True,
                external_data=False, verbose=False, optimize=True,
            )
            return "dynamo"
        except Exception as e:  # noqa: BLE001 - any exporter failure: try the other exporter
            _log(f"torch.export-based ONNX export failed ({type(e).__name__}: {e}); using the TorchScript exporter")
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            torch.onnx.export(
                model, (example,), path, input_names=["input_ids"], output_names=["logits"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}},
                opset_version=OPSET, dynamo=False,
            )
            return "torchscript"


def export_onnx(model: TinyGPT, onnx_path: str) -> dict[str, Any]:
    """Writes onnx_path atomically (temp file in the same dir, fsync, rename)."""
    model = model.to("cpu").eval()
    t0 = time.time()
    with atomic_file(onnx_path) as tmp:
        exporter = _export_to(model, tmp)
        if os.path.exists(tmp + ".data"):
            raise RuntimeError("exporter wrote external data; expected a single-file model")
    secs = time.time() - t0
    _log(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes, {exporter} exporter, {secs:.1f}s)")
    return {"onnx": onnx_path, "exporter": exporter, "opset": OPSET, "export_s": round(secs, 2)}


def onnx_max_abs_diff(model: TinyGPT, onnx_path: str, seed: int = 1234) -> float | None:
    """Max |torch - onnxruntime| over logits on fixed random inputs (None if onnxruntime is not installed)."""
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return None
    model = model.to("cpu").eval()
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, torch.get_num_threads())
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for b, t in ((1, 1), (2, 17), (3, min(64, model.cfg.max_len)), (2, model.cfg.max_len)):
        ids = torch.randint(0, model.cfg.vocab_size, (b, t), generator=g, dtype=torch.long)
        with torch.no_grad():
            ref = model(ids).numpy()
        out = sess.run(["logits"], {"input_ids": ids.numpy()})[0]
        if out.shape != ref.shape or out.dtype != np.float32:
            raise RuntimeError(f"ONNX output {out.shape} {out.dtype} != torch {ref.shape} float32")
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def write_model_dir(model: TinyGPT, out_dir: str, extra_config: dict[str, Any] | None = None,
                    with_onnx: bool = True, check: bool = True) -> dict[str, Any]:
    """Writes a complete model dir atomically: everything goes into a temp dir next to out_dir, which is then renamed
    into place (an existing out_dir is replaced). A model dir that exists is therefore always complete."""
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(out_dir)
    tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}")
    old = os.path.join(parent, f".{name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    info: dict[str, Any] = {"model_dir": out_dir, "onnx": None}
    try:
        save_model_dir(model, tmp, extra_config)
        if with_onnx:
            info.update(export_onnx(model, os.path.join(tmp, ONNX_FILE)))
            info["onnx"] = os.path.join(out_dir, ONNX_FILE)
            if check:
                diff = onnx_max_abs_diff(model, os.path.join(tmp, ONNX_FILE))
                info["onnx_max_abs_diff"] = diff
                if diff is not None:
                    _log(f"onnxruntime vs torch max_abs_diff={diff:.3g}")
                    if diff > 1e-2:
                        raise RuntimeError(f"ONNX logits differ from torch by {diff}")
        fsync_dir(tmp)
        if os.path.exists(out_dir):
            os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        fsync_dir(parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", help="model dir to (re-)export model.onnx for")
    ap.add_argument("--init-only", action="store_true", help="write the untrained initial model (needs --output, --config)")
    ap.add_argument("--output", help="with --init-only: the model dir to write")
    ap.add_argument("--config", help="with --init-only: the training config (model dims, seed, init_from)")
    ap.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-torch comparison")
    args = ap.parse_args(argv)

    from train_config import ConfigError, initial_model, load_config, set_threads

    if args.init_only:
        if not args.output or not args.config:
            ap.error("--init-only needs --output and --config")
        try:
            cfg = load_config(args.config)
        except ConfigError as e:
            print(f"invalid config: {e}", file=sys.stderr)
            return 2
        set_threads(cfg.threads)
        model = initial_model(cfg).eval()
        info = write_model_dir(model, args.output, {"trained_steps": 0, "seed": cfg.seed, "init_from": cfg.init_from},
                               check=not args.no_check)
        print(json.dumps({"event": "done", "params": model.num_params(), **info}), flush=True)
        return 0
    if not args.model_dir:
        ap.error("give --model-dir DIR, or --init-only --output DIR --config FILE")
    set_threads(None)
    model = load_model_dir(args.model_dir)
    path = os.path.join(args.model_dir, ONNX_FILE)
    info = export_onnx(model, path)
    if not args.no_check:
        info["onnx_max_abs_diff"] = onnx_max_abs_diff(model, path)
    print(json.dumps({"event": "done", **info}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
