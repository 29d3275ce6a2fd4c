"""Training throughput of the trl backend on this machine: LoRA vs full fine-tune, fp32 vs bf16, a few steps each.

    python bench_cpu.py --data sft.jsonl [--steps 5] [--batch-size 8] [--threads 2] [--variants lora-fp32,full-fp32]
                        [--epoch-examples 300] [--work DIR]

Prints one line per variant and a JSON summary on stdout: tokens/s over the steps after the first (the first
carries one-off costs), seconds per step, tokens per example, and the time one epoch of --epoch-examples examples
would take. The student is loaded from its GGUF once; the other variants start from the saved baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {
    "lora-fp32": {"lora": {"r": 16, "alpha": 32, "dropout": 0.05}, "precision": "fp32", "lr": 2e-4},
    "full-fp32": {"lora": None, "precision": "fp32", "lr": 2e-5},
    "lora-bf16": {"lora": {"r": 16, "alpha": 32, "dropout": 0.05}, "precision": "bf16", "lr": 2e-4},
    "full-bf16": {"lora": None, "precision": "bf16", "lr": 2e-5},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument("--variants", default="lora-fp32,full-fp32,lora-bf16,full-bf16")
    ap.add_argument("--epoch-examples", type=int, default=300)
    ap.add_argument("--source", default="smollm2-135m-instruct")
    ap.add_argument("--work")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="bench-sft-")
    baseline = None
    results = []
    for name in args.variants.split(","):
        v = VARIANTS[name]
        out = os.path.join(work, name)
        os.makedirs(out, exist_ok=True)
        if baseline and not os.path.exists(os.path.join(out, "baseline-model")):
            os.symlink(baseline, os.path.join(out, "baseline-model"))
        cfg = {"data": os.path.abspath(args.data), "output_dir": out,
               "student": {"source": args.source, "max_seq_len": args.max_seq_len},
               "lora": v["lora"], "precision": v["precision"], "lr": v["lr"], "epochs": 1,
               "batch_size": args.batch_size, "max_steps": args.steps, "checkpoint_every": 10_000,
               "threads": args.threads, "seed": 0, "export": {"onnx": False, "gguf": False}}
        path = os.path.join(out, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        t0 = time.time()
        err_path = os.path.join(out, "stderr.log")
        events = []
        with open(err_path, "w") as err:
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "train_sft.py"), "--config", path, "--no-resume"],
                                 stdout=subprocess.PIPE, stderr=err, text=True)
            for line in p.stdout:
                if line.startswith("{"):
                    events.append({**json.loads(line), "_t": time.time()})
            rc = p.wait()
        wall = time.time() - t0
        if rc != 0:
            print(f"{name}: failed ({rc}); see {err_path}", file=sys.stderr)
            continue
        baseline = baseline or os.path.join(out, "baseline-model")
        with open(os.path.join(out, "train_report.json")) as f:
            report = json.load(f)
        steps = [e for e in events if e["event"] == "step"]
        # Throughput after the first step, from the trainer's running token count and its own per-step timing.
        first, last = steps[0], steps[-1]
        tokens_after_first = last["tokens"] - first["tokens"]
        per_example = last["tokens"] / (len(steps) * args.batch_size)
        start = next(e for e in events if e["event"] == "start")
        tps = round(tokens_after_first / (last["_t"] - first["_t"]), 1) if last["_t"] > first["_t"] else None
        r = {"variant": name, "trainable_params": start["trainable_params"], "params": start["params"],
             "steps": len(steps), "batch_size": args.batch_size, "tokens": last["tokens"],
             "tokens_per_example": round(per_example, 1), "tokens_per_s": tps,
             "tokens_per_s_incl_first_step": report["tokens_per_s"],
             "s_per_step": round(args.batch_size * per_example / tps, 2) if tps else None,
             "epoch_examples": args.epoch_examples,
             "epoch_minutes": round(args.epoch_examples * per_example / tps / 60, 1) if tps else None,
             "wall_s": round(wall, 1), "final_loss": report["final_loss"],
             "tokens_after_first_step": tokens_after_first}
        results.append(r)
        print(f"{name}: {tps} tokens/s, {r['s_per_step']} s/step (batch {args.batch_size}, "
              f"{r['tokens_per_example']} tokens/example), {args.epoch_examples}-example epoch ≈ {r['epoch_minutes']} min; "
              f"trainable {r['trainable_params']:,} of {r['params']:,}; wall {r['wall_s']} s", flush=True)
    print(json.dumps({"threads": args.threads, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
