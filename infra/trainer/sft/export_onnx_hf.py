"""ONNX export of a trained transformers student, for onnxruntime-node.

    python export_onnx_hf.py --model-dir DIR [--out DIR/model.onnx] [--check] [--tol 2e-3]
    python export_onnx_hf.py --model-dir DIR --dump-logits INPUTS.json OUT.bin

`--dump-logits` writes torch's float32 logits (row-major [batch, seq, vocab], little-endian) for
{"input_ids": [[...]], "attention_mask": [[...]]}, for a parity check from another runtime (onnxruntime-node).

The graph: inputs `input_ids` int64 [batch, seq] and `attention_mask` int64 [batch, seq], output `logits` float32
[batch, seq, vocab]; no KV cache (each call recomputes the prefix, which is fine for short answers and the
evaluator's batch of prompts). Weights go to one external-data file beside the graph when the model is over
protobuf's 2 GB; below that, a single file. stdout carries one JSON line; logs go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Any

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # infra/trainer: durable_files

import torch  # noqa: E402

from durable_files import fsync_file  # noqa: E402

OPSET = 18


def _log(msg: str) -> None:
    print(f"[export_onnx_hf] {msg}", file=sys.stderr, flush=True)


class LogitsOnly(torch.nn.Module):
    """The exported signature: (input_ids, attention_mask) -> logits, with the cache turned off."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def _export_to(model: torch.nn.Module, path: str, external: bool) -> str:
    wrapped = LogitsOnly(model).eval()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 0, 0]], dtype=torch.long)
    mask = torch.tensor([[1] * 8, [1] * 6 + [0, 0]], dtype=torch.long)
    # The exporters print progress on stdout, which is reserved for JSON events.
    with contextlib.redirect_stdout(sys.stderr), torch.no_grad():
        try:
            batch = torch.export.Dim("batch", min=1, max=1024)
            seq = torch.export.Dim("seq", min=2, max=int(getattr(model.config, "max_position_embeddings", 8192)))
            torch.onnx.export(
                wrapped, (ids, mask), path, input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                opset_version=OPSET, dynamo=True, external_data=external, verbose=False,
                # onnxscript's optimizer doubles the export time (about 35 s → 70 s for 135M on 2 cores);
                # onnxruntime applies its own graph optimizations when it loads the model.
                optimize=False,
            )
            return "dynamo"
        except Exception as e:  # noqa: BLE001 - any exporter failure: try the other exporter
            _log(f"torch.export-based ONNX export failed ({type(e).__name__}: {str(e)[:500]}); using the TorchScript exporter")
            for p in (path, path + ".data"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(p)
            torch.onnx.export(
                wrapped, (ids, mask), path, input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                              "logits": {0: "batch", 1: "seq"}},
                opset_version=OPSET, dynamo=False,
            )
            return "torchscript"


def export_onnx(model: torch.nn.Module, onnx_path: str) -> dict[str, Any]:
    """Writes onnx_path (plus onnx_path.data when external) via a temp name in the same dir, then renames."""
    model = model.to("cpu", dtype=torch.float32).eval()
    n_bytes = sum(p.numel() * 4 for p in model.parameters())
    external = n_bytes > 1_800_000_000
    d = os.path.dirname(os.path.abspath(onnx_path))
    tmp = os.path.join(d, f".{os.path.basename(onnx_path)}.tmp-{os.getpid()}")
    t0 = time.time()
    try:
        exporter = _export_to(model, tmp, external)
        if os.path.exists(tmp + ".data"):
            # The graph names its data file; re-save it so the name matches the final one.
            import onnx

            m = onnx.load(tmp, load_external_data=True, base_dir=d)
            os.remove(tmp + ".data")
            onnx.save(m, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                      location=os.path.basename(onnx_path) + ".data")
            os.replace(os.path.join(d, os.path.basename(onnx_path) + ".data"), onnx_path + ".data")
        fsync_file(tmp)
        os.replace(tmp, onnx_path)
    finally:
        for p in (tmp, tmp + ".data"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(p)
    secs = time.time() - t0
    _log(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes, {exporter} exporter, {secs:.1f}s)")
    return {"onnx": onnx_path, "onnx_exporter": exporter, "onnx_opset": OPSET, "onnx_export_s": round(secs, 2)}


def onnx_max_abs_diff(model: torch.nn.Module, onnx_path: str, seed: int = 1234,
                      shapes: tuple[tuple[int, int], ...] = ((1, 5), (2, 23))) -> float | None:
    """Max |torch - onnxruntime| over logits at the unpadded positions of fixed random inputs, the second row of each
    batch right-padded (None when onnxruntime is not installed)."""
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return None
    model = model.to("cpu", dtype=torch.float32).eval()
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, torch.get_num_threads())
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    vocab = int(model.config.vocab_size)
    worst = 0.0
    for b, t in shapes:
        ids = torch.randint(3, vocab, (b, t), generator=g, dtype=torch.long)
        mask = torch.ones_like(ids)
        if b > 1:
            mask[1, t - t // 3:] = 0
        with torch.no_grad():
            ref = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float().numpy()
        out = sess.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        if out.shape != ref.shape:
            raise RuntimeError(f"ONNX output {out.shape} != torch {ref.shape}")
        keep = mask.numpy().astype(bool)
        worst = max(worst, float(np.abs(out[keep] - ref[keep]).max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--out")
    ap.add_argument("--check", action="store_true", help="compare onnxruntime with torch after the export")
    ap.add_argument("--check-only", action="store_true", help="compare an existing export, don't export")
    ap.add_argument("--tol", type=float, default=2e-3)
    ap.add_argument("--dump-logits", nargs=2, metavar=("INPUTS_JSON", "OUT_BIN"))
    args = ap.parse_args(argv)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    if args.dump_logits:
        with open(args.dump_logits[0], encoding="utf-8") as f:
            inp = json.load(f)
        ids = torch.tensor(inp["input_ids"], dtype=torch.long)
        mask = torch.tensor(inp["attention_mask"], dtype=torch.long)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float().contiguous()
        logits.numpy().astype("<f4").tofile(args.dump_logits[1])
        print(json.dumps({"shape": list(logits.shape), "out": args.dump_logits[1]}), flush=True)
        return 0
    out = args.out or os.path.join(args.model_dir, "model.onnx")
    info: dict[str, Any] = {"onnx": out}
    if not args.check_only:
        info = export_onnx(model, out)
    if args.check or args.check_only:
        diff = onnx_max_abs_diff(model, out)
        info.update({"onnx_max_abs_diff": diff, "tol": args.tol, "ok": diff is not None and diff <= args.tol})
    print(json.dumps(info), flush=True)
    return 0 if info.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
