"""SFT of the foundation student (tiny byte-level GPT) on a chat JSONL, on CPU (or one GPU).

    python train_tiny.py --config config.json [--no-resume]

stdout: one JSON object per line (events start / step / checkpoint / done); stderr: human logs.
Exit codes: 0 done, 2 bad config or data, 4 the teacher's tokens do not map onto the student's (objective kd), 143 stopped by SIGTERM (after writing a checkpoint), 130 by SIGINT.
See README.md for the config keys, the checkpoint layout and the resume rule.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import time
from typing import Any

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import byte_tokenizer as tok  # noqa: E402
from training_rows import TrainingRows  # noqa: E402
import kd_targets  # noqa: E402
from kd_loss import kd_objective  # noqa: E402
from tiny_gpt import TinyGPT, fsync_dir, write_json  # noqa: E402
from train_config import ConfigError, TrainConfig, initial_model, load_config, pick_device, set_threads  # noqa: E402

CKPT_RE = re.compile(r"^step-(\d{6,})$")
STATE_FILE = "state.pt"
META_FILE = "meta.json"  # written last inside the temp dir; a checkpoint dir without it is never used


class DataError(ValueError):
    pass


def log(msg: str) -> None:
    print(f"[train_tiny] {msg}", file=sys.stderr, flush=True)


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------

def load_examples(path: str, max_len: int, meta: list[tuple[int, bytes]] | None = None
                  ) -> tuple[list[tuple[list[int], int]], dict[str, int], str]:
    """Reads the chat JSONL. Each example is (token ids, prompt length). Sequences longer than max_len tokens are
    cut to max_len (counted in `truncated`); rows whose prompt leaves no completion token inside max_len are
    skipped (counted in `skipped_too_long`). Returns (examples, stats, sha256 of the file)."""
    examples: list[tuple[list[int], int]] = []
    stats = {"rows": 0, "truncated": 0, "skipped_too_long": 0}
    lines = TrainingRows(path, DataError)
    for lineno, row in lines:
        stats["rows"] += 1
        try:
            if not isinstance(row, dict):
                raise tok.InvalidSample("row is not a JSON object")
            prompt, completion = tok.encode_chat(row.get("messages"))  # type: ignore[arg-type]
        except tok.InvalidSample as e:
            raise lines.invalid(lineno, e) from e
        ids = prompt + completion
        if len(prompt) >= max_len:
            stats["skipped_too_long"] += 1
            continue
        if len(ids) > max_len:
            stats["truncated"] += 1
            ids = ids[:max_len]
        examples.append((ids, len(prompt)))
        if meta is not None:  # (row number among the data rows, assistant text): to find the row's soft targets
            meta.append((stats["rows"] - 1, tok.split_messages(row["messages"])[2].encode("utf-8")))
    return examples, stats, lines.sha256


def load_kd_targets(cfg: TrainConfig, meta: list[tuple[int, bytes]], rows: int
                    ) -> tuple[list[kd_targets.Targets | None], dict[str, Any]]:
    """Each example's soft targets from the training sidecar (one record per data row), after the tokenizer check."""
    o = cfg.objective
    try:
        records = list(kd_targets.read_sidecar(o["logprobs"]))
    except OSError as e:
        raise DataError(f"invalid training data: cannot read the logprobs sidecar {o['logprobs']}: {e}") from e
    except kd_targets.SidecarError as e:
        raise DataError(f"invalid training data: {e}") from e
    if len(records) != rows:
        raise DataError(f"invalid training data: {o['logprobs']} has {len(records)} logprobs records for {rows} rows")
    out: list[kd_targets.Targets | None] = []
    sampled: list[tuple[bool, int, int]] = []
    for row, assistant in meta:
        t, mapped, unmapped = kd_targets.byte_targets(records[row], assistant, o["top_k"])
        out.append(t)
        if len(sampled) < 64:
            sampled.append((t is not None, mapped, unmapped))
    info = kd_targets.check_tokenizer(sampled, o["teacher"], f"byte-level (tiny GPT, {tok.VOCAB_SIZE} ids)")
    info.update({"rows_with_targets": sum(1 for t in out if t is not None), "rows": len(out),
                 "positions": sum(len(t.positions) for t in out if t is not None)})
    return out, info


def collate_kd(batch: list[tuple[list[int], int]], targets: list[kd_targets.Targets | None], top_k: int,
               t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher ids [B, t, K], logprobs [B, t, K] (−inf where absent) and mask [B, t], on collate's positions."""
    ids = torch.zeros((len(batch), t, top_k), dtype=torch.long)
    lps = torch.full((len(batch), t, top_k), float("-inf"))
    mask = torch.zeros((len(batch), t), dtype=torch.bool)
    for b, ((_, plen), tg) in enumerate(zip(batch, targets)):
        if tg is None:
            continue
        for j, row_ids, row_lp in zip(tg.positions, tg.ids, tg.logprobs):
            p = plen + j - 1  # this position predicts the completion's j-th token
            if p >= t:
                break
            k = min(top_k, len(row_ids))
            ids[b, p, :k] = torch.tensor(row_ids[:k])
            lps[b, p, :k] = torch.tensor(row_lp[:k])
            mask[b, p] = True
    return ids, lps, mask


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(n, generator=g).tolist()


def collate(batch: list[tuple[list[int], int]]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Right-padded (input, labels) for next-token prediction; labels are -100 on prompt and padding.
    Returns also the number of real (non-pad) input tokens."""
    t = max(len(ids) for ids, _ in batch) - 1
    x = torch.full((len(batch), t), tok.PAD_ID, dtype=torch.long)
    y = torch.full((len(batch), t), tok.IGNORE_INDEX, dtype=torch.long)
    real = 0
    for i, (ids, plen) in enumerate(batch):
        seq = torch.tensor(ids, dtype=torch.long)
        n = len(ids) - 1
        x[i, :n] = seq[:-1]
        # position j predicts ids[j+1]; train only where ids[j+1] is a completion token (j+1 >= plen)
        y[i, plen - 1:n] = seq[plen:]
        real += n
    return x, y, real


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------------------

def complete_checkpoints(root: str) -> list[tuple[int, str]]:
    """(step, path) of complete checkpoints, oldest first."""
    out = []
    if not os.path.isdir(root):
        return out
    for name in os.listdir(root):
        m = CKPT_RE.match(name)
        p = os.path.join(root, name)
        if m and os.path.isfile(os.path.join(p, META_FILE)) and os.path.isfile(os.path.join(p, STATE_FILE)):
            out.append((int(m.group(1)), p))
    return sorted(out)


def _remove_dir(root: str, path: str) -> None:
    """Rename out of the checkpoint namespace first, so a crash mid-delete never leaves a partial step-* dir."""
    trash = os.path.join(root, f".del-{os.path.basename(path)}-{os.getpid()}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def clean_stale(root: str) -> None:
    if not os.path.isdir(root):
        return
    for name in os.listdir(root):
        p = os.path.join(root, name)
        if name.startswith(".tmp-") or name.startswith(".del-"):
            shutil.rmtree(p, ignore_errors=True)
        elif CKPT_RE.match(name) and not os.path.isfile(os.path.join(p, META_FILE)):
            _remove_dir(root, p)  # cannot happen with atomic renames, but never trust an incomplete dir


def save_checkpoint(root: str, step: int, state: dict[str, Any], meta: dict[str, Any], keep: int) -> str:
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f"step-{step:06d}")
    tmp = os.path.join(root, f".tmp-step-{step:06d}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(os.path.join(tmp, STATE_FILE), "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    write_json(os.path.join(tmp, META_FILE), meta)  # fsyncs
    fsync_dir(tmp)
    if os.path.exists(final):  # same step saved before (e.g. resumed run re-saving): replace
        _remove_dir(root, final)
    os.rename(tmp, final)
    fsync_dir(root)
    for _, p in complete_checkpoints(root)[:-keep]:
        _remove_dir(root, p)
    return final


def load_checkpoint(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with open(os.path.join(path, META_FILE), encoding="utf-8") as f:
        meta = json.load(f)
    # Tensors and plain containers only: a checkpoint directory is a file on disk, and unpickling one runs its code.
    state = torch.load(os.path.join(path, STATE_FILE), map_location="cpu", weights_only=True)
    return state, meta


def rng_state() -> dict[str, Any]:
    st: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                          "python_version": random.getstate()[0], "python_gauss": random.getstate()[2]}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate((st["python_version"], tuple(st["python"]), st["python_gauss"]))
    if "cuda" in st and torch.cuda.is_available():
        with contextlib.suppress(Exception):  # a different number of visible GPUs: keep the fresh state
            torch.cuda.set_rng_state_all(st["cuda"])


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------

class StopFlag:
    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        if self.signum is None:
            log(f"received {signal.Signals(signum).name}: finishing the current step, then checkpoint and exit")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)


def lr_lambda_factory(total: int, warmup: int, min_ratio: float):
    def f(step: int) -> float:  # step = number of optimizer steps taken so far
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return f


def make_optimizer(model: TinyGPT, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")


def train(cfg: TrainConfig, resume: bool) -> int:
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    t_start = time.time()
    threads = set_threads(cfg.threads)
    device = pick_device(cfg.device)
    max_len = cfg.model.max_len

    kd = cfg.objective if cfg.objective.get("type") == "kd" else None
    meta: list[tuple[int, bytes]] | None = [] if kd else None
    examples, stats, data_sha = load_examples(cfg.data, max_len, meta)
    if not examples:
        raise DataError(f"No training examples in {cfg.data} ({stats['rows']} rows, {stats['skipped_too_long']} "
                        f"with prompts longer than max_len={max_len})")
    targets: list[kd_targets.Targets | None] = []
    kd_info: dict[str, Any] | None = None
    if kd:
        # before any step: a teacher of another tokenizer family must stop the run here, not after an epoch
        targets, kd_info = load_kd_targets(cfg, meta or [], stats["rows"])
        log(f"kd: T={kd['temperature']} alpha={kd['alpha']} top_k={kd['top_k']} tail={kd['tail']}; {kd_info}")
    n = len(examples)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    warmup = int(round(cfg.warmup_ratio * total_steps))
    fingerprint = hashlib.sha256(json.dumps({"data_sha256": data_sha, **cfg.fingerprint_fields()},
                                            sort_keys=True).encode()).hexdigest()
    log(f"{n} examples ({stats['truncated']} truncated to max_len={max_len}, {stats['skipped_too_long']} skipped), "
        f"{steps_per_epoch} steps/epoch, {total_steps} steps, {threads} threads, device {device}")

    os.makedirs(cfg.output_dir, exist_ok=True)
    ckpt_root = os.path.join(cfg.output_dir, "checkpoints")
    clean_stale(ckpt_root)
    if not resume:
        for _, p in complete_checkpoints(ckpt_root):
            _remove_dir(ckpt_root, p)
    existing = complete_checkpoints(ckpt_root)

    state: dict[str, Any] | None = None
    start_step = 0
    stale_dir = None
    if existing:
        _, path0 = existing[-1]
        state, meta = load_checkpoint(path0)
        if meta.get("fingerprint") != fingerprint:
            # Written for other data or settings: resuming would not be the run asked for. Keep them aside, start over.
            stale_dir = os.path.join(cfg.output_dir, f"checkpoints-stale-{str(meta.get('fingerprint'))[:12]}")
            shutil.rmtree(stale_dir, ignore_errors=True)
            os.rename(ckpt_root, stale_dir)
            fsync_dir(cfg.output_dir)
            log(f"WARNING: checkpoint {path0} was written for different data or settings; moved the checkpoints to "
                f"{stale_dir} and starting from step 0")
            state, existing = None, []
        else:
            start_step = int(meta["step"])
            log(f"resuming from {path0} (step {start_step}/{total_steps})")

    if state is not None:
        model = TinyGPT(cfg.model)
        model.load_state_dict(state["model"])
    else:
        model = initial_model(cfg)
    model.to(device).train()
    params = model.num_params()
    opt = make_optimizer(model, cfg, device)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda_factory(total_steps, warmup, cfg.min_lr_ratio))
    loss_curve: list[list[float]] = []
    tokens_total = 0
    loss_tokens_total = 0
    train_time = 0.0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        loss_curve = [list(x) for x in state["loss_curve"]]
        tokens_total = int(state["tokens"])
        loss_tokens_total = int(state["loss_tokens"])
        train_time = float(state["train_time_s"])
    else:
        torch.manual_seed(cfg.seed)  # dropout RNG; data order has its own generator
        random.seed(cfg.seed)

    emit({"event": "start", "total_steps": total_steps, "resumed_from_step": start_step, "params": params,
          "examples": n, "rows": stats["rows"], "truncated": stats["truncated"],
          "skipped_too_long": stats["skipped_too_long"], "steps_per_epoch": steps_per_epoch, "epochs": cfg.epochs,
          "batch_size": cfg.batch_size, "max_len": max_len, "threads": threads, "device": str(device),
          "stale_checkpoints": stale_dir, "objective": cfg.objective.get("type"), **({"kd": kd_info} if kd_info else {})})

    def checkpoint(step: int) -> str:
        epoch, pos = divmod(step, steps_per_epoch)
        st = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
              "rng": rng_state(), "loss_curve": loss_curve, "tokens": tokens_total, "loss_tokens": loss_tokens_total,
              "train_time_s": train_time}
        meta = {"step": step, "total_steps": total_steps, "epoch": epoch, "position_in_epoch": pos,
                "steps_per_epoch": steps_per_epoch, "examples": n, "fingerprint": fingerprint,
                "model": cfg.model.to_dict(), "time": time.time()}
        t = time.time()
        path = save_checkpoint(ckpt_root, step, st, meta, cfg.keep_checkpoints)
        log(f"checkpoint {path} ({time.time() - t:.2f}s)")
        emit({"event": "checkpoint", "step": step, "path": path})
        return path

    step = start_step
    last_ckpt_step = start_step if existing else -1
    window: collections.deque[tuple[float, int]] = collections.deque(maxlen=21)
    order_epoch, order = -1, []
    while step < total_steps:
        if stop.signum is not None:
            break
        epoch, pos = divmod(step, steps_per_epoch)
        if epoch != order_epoch:
            order_epoch, order = epoch, epoch_order(n, cfg.seed, epoch)
        picked = order[pos * cfg.batch_size:(pos + 1) * cfg.batch_size]
        batch = [examples[i] for i in picked]
        t0 = time.time()
        if not window:
            window.append((t0, 0))
        x, y, real = collate(batch)
        x, y = x.to(device), y.to(device)
        logits = model(x)
        if kd:
            t_ids, t_lp, t_mask = collate_kd(batch, [targets[i] for i in picked], kd["top_k"], x.size(1))
            loss, _ = kd_objective(logits, y, t_ids.to(device), t_lp.to(device), t_mask.to(device), kd["temperature"],
                                   kd["alpha"], kd["tail"], tok.IGNORE_INDEX)
        else:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=tok.IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        loss_v = float(loss.item())
        step += 1
        t1 = time.time()
        train_time += t1 - t0
        tokens_total += real
        loss_tokens_total += int((y != tok.IGNORE_INDEX).sum().item())
        window.append((t1, window[-1][1] + real))
        loss_curve.append([step, round(loss_v, 5), lr])
        if not math.isfinite(loss_v):
            log(f"loss is {loss_v} at step {step}; stopping")
            return 3
        if step % cfg.log_every == 0 or step == total_steps or step == start_step + 1:
            dt = window[-1][0] - window[0][0]
            tps = (window[-1][1] - window[0][1]) / dt if dt > 0 else 0.0
            emit({"event": "step", "step": step, "total_steps": total_steps, "epoch": round(step / steps_per_epoch, 4),
                  "loss": round(loss_v, 5), "lr": lr, "tokens_per_s": round(tps, 1), "tokens": tokens_total})
        if step % cfg.checkpoint_every == 0 or step == total_steps or stop.signum is not None:
            checkpoint(step)
            last_ckpt_step = step

    if stop.signum is not None:
        if step != last_ckpt_step and step > 0:
            checkpoint(step)
        log(f"stopped at step {step}/{total_steps}")
        return stop.exit_code

    # ---- final model, ONNX, report
    from export_onnx import write_model_dir

    model.eval().to("cpu")
    model_dir = os.path.join(cfg.output_dir, "model")
    info = write_model_dir(model, model_dir, {"trained_steps": step, "seed": cfg.seed, "init_from": cfg.init_from,
                                              "data_sha256": data_sha}, with_onnx=cfg.export_onnx)
    last = [l for _, l, _ in loss_curve[-10:]]
    final_loss = loss_curve[-1][1] if loss_curve else None
    report = {
        "steps": step, "total_steps": total_steps, "resumed_from_step": start_step, "epochs": cfg.epochs,
        "steps_per_epoch": steps_per_epoch, "examples": n, **stats, "params": params,
        "tokens": tokens_total, "loss_tokens": loss_tokens_total, "train_time_s": round(train_time, 2),
        "tokens_per_s": round(tokens_total / train_time, 1) if train_time > 0 else None,
        "wall_time_s_this_run": round(time.time() - t_start, 2), "threads": threads, "device": str(device),
        "final_loss": final_loss, "final_loss_avg10": round(sum(last) / len(last), 5) if last else None,
        "model_dir": info["model_dir"], "onnx": info["onnx"], "onnx_max_abs_diff": info.get("onnx_max_abs_diff"),
        "config": dict(cfg.raw), "model": cfg.model.to_dict(), "objective": cfg.objective.get("type"),
        **({"kd": {**{k: v for k, v in cfg.objective.items() if k != "type"}, **kd_info}} if kd_info else {}),
        "settings": {**cfg.fingerprint_fields(), "data": cfg.data, "checkpoint_every": cfg.checkpoint_every,
                     "warmup_steps": warmup, "data_sha256": data_sha},
        "loss_curve": [{"step": int(s), "loss": l, "lr": lr} for s, l, lr in loss_curve],
    }
    report_path = os.path.join(cfg.output_dir, "train_report.json")
    tmp = report_path + f".tmp-{os.getpid()}"
    write_json(tmp, report)
    os.replace(tmp, report_path)
    fsync_dir(cfg.output_dir)
    emit({"event": "done", "step": step, "total_steps": total_steps, "final_loss": final_loss,
          "final_loss_avg10": report["final_loss_avg10"], "model_dir": info["model_dir"], "onnx": info["onnx"],
          "onnx_max_abs_diff": info.get("onnx_max_abs_diff"), "tokens": tokens_total,
          "tokens_per_s": report["tokens_per_s"], "train_time_s": report["train_time_s"], "report": report_path})
    log(f"done: {step} steps, final loss {final_loss}, {report['tokens_per_s']} tokens/s, "
        f"{time.time() - t_start:.1f}s wall")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="training config JSON")
    ap.add_argument("--no-resume", action="store_true", help="ignore (and delete) existing checkpoints; start fresh")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        return train(cfg, resume=not args.no_resume)
    except ConfigError as e:
        log(f"invalid config: {e}")
        return 2
    except DataError as e:
        log(str(e))
        return 2
    except kd_targets.TokenizerMismatch as e:
        log(str(e))
        return 4


if __name__ == "__main__":
    sys.exit(main())
