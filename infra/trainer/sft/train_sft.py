"""SFT of a real small causal LM (SmolLM2-135M-Instruct by default) on the chat JSONL, with TRL's SFTTrainer.

    python train_sft.py --config config.json [--no-resume]

stdout: one JSON object per line (events start / step / checkpoint / done), the same protocol as train_tiny.py;
stderr: human logs. Exit codes: 0 done, 2 bad config, data or student (chat template), 3 loss not finite,
143 stopped by SIGTERM (after writing a checkpoint), 130 by SIGINT. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from typing import Any

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # infra/trainer: durable_files

# Everything comes from local files: a hub lookup would hang or fail on an offline worker.
for _k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_k, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from durable_files import fsync_dir, fsync_tree, write_json_atomic  # noqa: E402
from memory_estimate import DoesNotFit  # noqa: E402
from student import StudentError, StudentSource, check_chat_template, ensure_pad, resolve_init_from, resolve_source  # noqa: E402

CKPT_RE = re.compile(r"^checkpoint-(\d+)$")
MARKER = "distillery-complete.json"  # written last: a checkpoint dir without it is never resumed from
BASELINE_INFO = "baseline.json"
IGNORE = -100


class ConfigError(ValueError):
    pass


class DataError(ValueError):
    pass


class AlreadyTrained(Exception):
    pass


def log(msg: str) -> None:
    print(f"[train_sft] {msg}", file=sys.stderr, flush=True)


def is_rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def emit(obj: dict[str, Any]) -> None:
    if not is_rank0():
        return
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    sys.stdout.write(line)
    sys.stdout.flush()
    # On a cluster nobody reads this process's stdout as it runs: the activity follows the same events in a file on
    # the shared storage instead.
    events_file = os.environ.get("DISTILLERY_EVENTS_FILE")
    if events_file:
        with open(events_file, "a", encoding="utf-8") as f:
            f.write(line)


# ---------------------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "student": {"source": "smollm2-135m-instruct", "init_from": None, "max_seq_len": 512},
    "lora": None,
    "epochs": 1,
    "batch_size": 8,
    "gradient_accumulation": 1,
    "lr": 2e-5,
    "warmup_ratio": 0.03,
    "scheduler": "cosine",
    "weight_decay": 0.0,
    "grad_clip": 1.0,
    "packing": False,
    "gradient_checkpointing": False,
    "precision": "auto",
    "seed": 0,
    "checkpoint_every": 50,
    "keep_checkpoints": 2,
    "max_steps": None,
    "threads": None,
    "log_every": 1,
    "export": {"onnx": True, "gguf": True, "gguf_dtype": "f16", "onnx_tol": 2e-3},
    "model_card": {"spec": None, "dataset_card": None},
    "distributed": {"strategy": "ddp", "cpu_offload": False, "activation_checkpointing": False,
                    "processes_per_node": None},
    # {"type": "sft"} or {"type": "kd", temperature, alpha, top_k, tail, logprobs (sidecar, one record per row), teacher}
    "objective": {"type": "sft"},
}
STRATEGIES = ("ddp", "fsdp", "zero3")
# Settings that change the training trajectory: a checkpoint written under others is not resumed from.
FINGERPRINT_KEYS = ("student", "lora", "epochs", "batch_size", "gradient_accumulation", "lr", "warmup_ratio",
                    "scheduler", "weight_decay", "grad_clip", "packing", "precision", "seed", "max_steps")


def load_config(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a JSON object")
    base = os.path.dirname(os.path.abspath(path))
    cfg: dict[str, Any] = {}
    for k, v in DEFAULTS.items():
        got = raw.get(k, v)
        if isinstance(v, dict) and isinstance(got, dict):
            got = {**v, **got}
        cfg[k] = got
    for k in raw:
        if k not in DEFAULTS and k not in ("data", "output_dir"):
            log(f"warning: unknown config key {k!r} ignored")
    for k in ("data", "output_dir"):
        if not isinstance(raw.get(k), str) or not raw[k]:
            raise ConfigError(f"{k} is required")
        cfg[k] = raw[k] if os.path.isabs(raw[k]) else os.path.join(base, raw[k])
    cfg["_base"] = base
    problems = []
    for k in ("batch_size", "gradient_accumulation", "checkpoint_every", "keep_checkpoints", "log_every"):
        if not isinstance(cfg[k], int) or cfg[k] < 1:
            problems.append(f"{k} must be a positive integer")
    if not isinstance(cfg["epochs"], (int, float)) or cfg["epochs"] <= 0:
        problems.append("epochs must be positive")
    if not isinstance(cfg["lr"], (int, float)) or not 0 < cfg["lr"] < 1:
        problems.append("lr must be in (0, 1)")
    if cfg["max_steps"] is not None and (not isinstance(cfg["max_steps"], int) or cfg["max_steps"] < 1):
        problems.append("max_steps must be a positive integer")
    if cfg["scheduler"] not in ("cosine", "linear", "constant"):
        problems.append("scheduler must be cosine, linear or constant")
    if cfg["precision"] not in ("auto", "fp32", "bf16"):
        problems.append("precision must be auto, fp32 or bf16")
    if not 0 <= float(cfg["warmup_ratio"]) <= 1:
        problems.append("warmup_ratio must be in [0, 1]")
    st = cfg["student"]
    if not isinstance(st, dict) or not isinstance(st.get("source"), str):
        problems.append("student.source is required")
    elif not isinstance(st.get("max_seq_len"), int) or st["max_seq_len"] < 8:
        problems.append("student.max_seq_len must be an integer >= 8")
    lora = cfg["lora"]
    if lora is not None:
        lora = {"r": 16, "alpha": 32, "dropout": 0.05,
                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                **lora}
        cfg["lora"] = lora
        if not isinstance(lora["r"], int) or lora["r"] < 1:
            problems.append("lora.r must be a positive integer")
    o = cfg["objective"]
    if not isinstance(o, dict) or o.get("type") not in ("sft", "kd"):
        problems.append("objective must be {type: sft} or {type: kd, ...}")
    elif o["type"] == "kd":
        if not isinstance(o.get("logprobs"), str):
            problems.append("objective kd needs logprobs: the teacher's logprobs sidecar")
        if cfg["packing"]:
            problems.append("objective kd needs packing off (the soft targets are per row)")
        cfg["objective"] = {"temperature": 1.0, "alpha": 0.5, "top_k": 20, "tail": True, "teacher": "the teacher", **o}
    if cfg["export"].get("gguf_dtype") not in ("f16", "f32"):
        problems.append("export.gguf_dtype must be f16 or f32")
    dist = cfg["distributed"]
    if not isinstance(dist, dict) or dist.get("strategy") not in STRATEGIES:
        problems.append(f"distributed.strategy must be one of {', '.join(STRATEGIES)}")
    else:
        ppn = dist.get("processes_per_node")
        if ppn is not None and (not isinstance(ppn, int) or ppn < 1):
            problems.append("distributed.processes_per_node must be a positive integer")
        if dist["strategy"] != "ddp" and cfg["lora"]:
            problems.append(f"lora with distributed.strategy {dist['strategy']} is not supported: LoRA trains few "
                            "parameters, so use ddp, or a full fine-tune with fsdp/zero3")
        if dist.get("cpu_offload") and dist["strategy"] == "ddp":
            problems.append("distributed.cpu_offload needs strategy fsdp or zero3 (ddp keeps the whole state on "
                            "each GPU)")
    if problems:
        raise ConfigError("; ".join(problems))
    return cfg


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------

def read_rows(path: str) -> tuple[list[tuple[list[dict[str, str]], dict[str, str]]], int, str]:
    """(prompt messages, assistant message) per row: the completion is the last message, which must be the
    assistant's; everything before it (system, earlier turns, the user turn) is the prompt."""
    rows = []
    n = 0
    h = hashlib.sha256()
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DataError(f"cannot read training data {path}: {e}") from e
    with f:
        for lineno, raw in enumerate(f, 1):
            h.update(raw)
            if not raw.strip():
                continue
            n += 1
            where = f"invalid training data: {path} line {lineno}"
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise DataError(f"{where}: {e}") from e
            msgs = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(msgs, list) or len(msgs) < 2:
                raise DataError(f"{where}: expected `messages` with a user and an assistant turn")
            clean = []
            for m in msgs:
                if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                        or not isinstance(m.get("content"), str):
                    raise DataError(f"{where}: each message needs role system/user/assistant and string content")
                clean.append({"role": m["role"], "content": m["content"]})
            if clean[-1]["role"] != "assistant" or not any(m["role"] == "user" for m in clean[:-1]):
                raise DataError(f"{where}: the last message must be the assistant's answer to a user turn")
            rows.append((clean[:-1], clean[-1]))
    return rows, n, h.hexdigest()


def _ids(x: Any) -> list[int]:
    if hasattr(x, "keys"):
        x = x["input_ids"]
    return list(x)


def tokenize_rows(tok: Any, rows: list, max_len: int, kept: list[tuple[int, int]] | None = None
                  ) -> tuple[list[list[int]], list[list[int]], dict[str, int]]:
    """input_ids and labels (-100 on the prompt) per row, rendered by the student's own chat template: the loss
    covers the assistant's answer and the EOS that closes it, nothing else."""
    inputs, labels = [], []
    stats = {"truncated": 0, "skipped_too_long": 0, "prompt_not_prefix": 0}
    for row, (prompt, answer) in enumerate(rows):
        p = _ids(tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))
        full = _ids(tok.apply_chat_template(prompt + [answer], tokenize=True))
        plen = len(p)
        if full[:plen] != p:
            # Tokens merged across the boundary: start the completion where the two diverge.
            stats["prompt_not_prefix"] += 1
            plen = next(i for i, (a, b) in enumerate(zip(p, full)) if a != b)
        if plen >= max_len:
            stats["skipped_too_long"] += 1
            continue
        if len(full) > max_len:
            stats["truncated"] += 1
            full = full[:max_len]
        inputs.append(full)
        labels.append([IGNORE] * plen + full[plen:])
        if kept is not None:  # (row, prompt length) of each example: where its soft targets are
            kept.append((row, plen))
    return inputs, labels, stats


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------------------

def remove_dir(root: str, path: str) -> None:
    """Rename first, so a crash mid-delete leaves a `.del-*` dir (removed at startup), never a partial checkpoint."""
    gone = os.path.join(root, f".del-{os.path.basename(path)}-{os.getpid()}")
    os.rename(path, gone)
    fsync_dir(root)
    shutil.rmtree(gone, ignore_errors=True)


def checkpoints(root: str) -> list[tuple[int, str, dict[str, Any] | None]]:
    """(step, path, marker or None) of every checkpoint-N dir, oldest first."""
    out = []
    if not os.path.isdir(root):
        return out
    for name in os.listdir(root):
        m = CKPT_RE.match(name)
        if not m:
            continue
        p = os.path.join(root, name)
        marker = None
        with contextlib.suppress(OSError, json.JSONDecodeError):
            with open(os.path.join(p, MARKER), encoding="utf-8") as f:
                marker = json.load(f)
        out.append((int(m.group(1)), p, marker))
    return sorted(out)


def clean_incomplete(root: str) -> None:
    if not os.path.isdir(root):
        return
    for name in os.listdir(root):
        if name.startswith(".del-") or name.startswith("tmp-checkpoint-"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    for step, p, marker in checkpoints(root):
        if marker is None:
            log(f"removing incomplete checkpoint {p} (no {MARKER}: the save was interrupted)")
            remove_dir(root, p)


def clean_stale_tmp(parent: str, name: str) -> None:
    if not os.path.isdir(parent):
        return
    for entry in os.listdir(parent):
        if entry.startswith(f".{name}.tmp-") or entry.startswith(f".{name}.old-"):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Stop signals
# ---------------------------------------------------------------------------------------------------------------

class StopFlag:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.training = False  # outside the training loop there is no step to finish: exit at once

    def __call__(self, signum: int, _frame: Any) -> None:
        if self.signum is None:
            log(f"received {signal.Signals(signum).name}: " +
                ("finishing the current step, then checkpoint and exit" if self.training else "exiting"))
        self.signum = signum
        if not self.training:
            raise SystemExit(128 + signum)

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)


# ---------------------------------------------------------------------------------------------------------------
# Model card
# ---------------------------------------------------------------------------------------------------------------

def model_card(cfg: dict[str, Any], info: dict[str, Any]) -> str:
    card = cfg.get("model_card") or {}
    lora = cfg["lora"]
    src = info["source"]
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [distillery, sft, trl, reasoning-distillation]",
        "---",
        "",
        f"# {info.get('name') or 'Distilled student'}",
        "",
        "A student fine-tuned by supervised fine-tuning on a teacher's verified chains of thought "
        "(`<think>…</think>` then the answer), by Distillery's trl backend (TRL SFTTrainer).",
        "",
        "## Training",
        "",
        "| setting | value |",
        "| --- | --- |",
        f"| base | `{src['path']}` ({src['kind']}) |",
        f"| initialised from | `{cfg['student'].get('init_from') or 'base'}` |",
        f"| method | {'LoRA r=%s alpha=%s dropout=%s on %s, merged' % (lora['r'], lora['alpha'], lora['dropout'], ', '.join(lora['target_modules'])) if lora else 'full fine-tune'} |",
        "| loss | assistant answer + closing EOS only (prompt masked) |",
        f"| examples | {info['examples']} ({info['stats']['truncated']} truncated to {cfg['student']['max_seq_len']} tokens, {info['stats']['skipped_too_long']} skipped) |",
        f"| steps | {info['steps']} ({cfg['epochs']} epochs, batch {cfg['batch_size']} × accumulation {cfg['gradient_accumulation']}) |",
        f"| lr | {cfg['lr']} ({cfg['scheduler']}, warm-up {cfg['warmup_ratio']}) |",
        f"| precision | {info['precision']} on {info['device']} |",
        f"| seed | {cfg['seed']} |",
        f"| final loss | {info.get('final_loss')} |",
        f"| data sha256 | `{info['data_sha256']}` |",
        "",
        "## Files",
        "",
        "- `model.safetensors`, `config.json`, `generation_config.json`: the merged student (transformers)",
        "- `tokenizer.json`, `tokenizer_config.json`, `chat_template.jinja`: its tokenizer and chat template "
        f"(EOS `{info['eos_token']}`, pad `{info['pad_token']}`)",
    ]
    if cfg["export"].get("onnx"):
        lines.append("- `model.onnx`: logits of (`input_ids`, `attention_mask`), no KV cache (onnxruntime)")
    if cfg["export"].get("gguf"):
        lines.append(f"- `model.gguf`: {cfg['export'].get('gguf_dtype', 'f16').upper()} GGUF for llama.cpp, metadata "
                     "from the source GGUF")
    dc = card.get("dataset_card")
    if dc:
        lines += ["", "## Dataset card", ""]
        try:
            text = open(dc, encoding="utf-8").read()
        except OSError as e:
            text = f"(dataset card {dc} could not be read: {e})"
        if dc.endswith(".json"):
            lines += ["```json", text.strip(), "```"]
        else:
            # Demote its headings so they nest under this section.
            lines += [re.sub(r"^(#+)", r"##\1", ln) for ln in text.strip().splitlines()]
    if card.get("spec") is not None:
        lines += ["", "## Run spec", "", "```json", json.dumps(card["spec"], indent=2, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------

def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_student_dir(model: Any, tok: Any, out_dir: str, readme: str, extra: dict[str, str] | None = None,
                     build: Any = None) -> None:
    """Writes a complete model dir atomically: built in a temp dir beside it, then renamed into place."""
    parent, name = os.path.dirname(out_dir), os.path.basename(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme)
    for fname, text in (extra or {}).items():
        with open(os.path.join(tmp, fname), "w", encoding="utf-8") as f:
            f.write(text)
    if build is not None:
        build(tmp)
    fsync_tree(tmp)
    if os.path.exists(out_dir):
        old = os.path.join(parent, f".{name}.old-{os.getpid()}")
        os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out_dir)
    fsync_dir(parent)


def pick_precision(want: str) -> tuple[str, str]:
    import torch

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if want == "auto":
        return ("bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"), device
    return want, device


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def layer_classes(model: Any) -> list[str]:
    """The decoder layer class: each layer is one FSDP unit (gathered for its forward, freed after)."""
    names = getattr(model, "_no_split_modules", None) or []
    present = {type(m).__name__ for m in model.modules()}
    found = [n for n in names if n in present]
    if not found:
        raise ConfigError(f"cannot shard {type(model).__name__}: it names no decoder layer class (_no_split_modules)")
    return found


def sharding_args(cfg: dict[str, Any], model: Any, device: str) -> dict[str, Any]:
    """TrainingArguments for the strategy. fsdp: PyTorch FSDP2 (fully_shard) through accelerate, full shard, one
    unit per decoder layer, sharded (DCP) checkpoints. zero3: DeepSpeed ZeRO stage 3 through accelerate; it needs
    the deepspeed package, which the pinned requirements do not install."""
    d = cfg["distributed"]
    if d["strategy"] == "fsdp":
        if device == "cpu":
            allow_fsdp_on_cpu()
        return {"fsdp": True, "fsdp_config": {
            "version": 2, "reshard_after_forward": True, "transformer_layer_cls_to_wrap": layer_classes(model),
            "state_dict_type": "SHARDED_STATE_DICT", "cpu_offload": bool(d["cpu_offload"]),
            "activation_checkpointing": bool(d["activation_checkpointing"] or cfg["gradient_checkpointing"]),
            "cpu_ram_efficient_loading": False}}
    if d["strategy"] == "zero3":
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("distributed.strategy zero3 needs DeepSpeed, which is not installed in this trainer's "
                              "environment (pip install deepspeed on the GPU workers), or use fsdp")
        offload = {"device": "cpu", "pin_memory": True} if d["cpu_offload"] else {"device": "none"}
        return {"deepspeed": {
            "zero_optimization": {"stage": 3, "offload_param": offload, "offload_optimizer": offload,
                                  "overlap_comm": True, "contiguous_gradients": True,
                                  "stage3_gather_16bit_weights_on_model_save": True},
            "bf16": {"enabled": "auto"}, "train_micro_batch_size_per_gpu": "auto",
            "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "train_batch_size": "auto"}}
    return {}


def allow_fsdp_on_cpu() -> None:
    """accelerate turns on FSDP only for accelerator devices and quietly falls back to DDP on CPU processes. FSDP2
    itself runs on CPU with gloo, and that is how the sharded path is tested on machines without a GPU: when the
    Trainer asks for FSDP on a multi-process CPU run, make its state FSDP as it would be on GPUs."""
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType

    original = AcceleratorState.__init__
    if getattr(original, "_distillery_cpu_fsdp", False):
        return

    def init(self: Any, *a: Any, **kw: Any) -> None:
        original(self, *a, **kw)
        plugin = kw.get("fsdp_plugin")
        if plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = plugin

    init._distillery_cpu_fsdp = True  # type: ignore[attr-defined]
    AcceleratorState.__init__ = init  # type: ignore[method-assign]


def gather_full_state(trainer: Any, strategy: str) -> dict[str, Any] | None:
    """The full weights of a sharded model, on rank 0 only (None elsewhere, and for ddp). Every rank must call it."""
    if strategy == "ddp":
        return None
    if strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(trainer.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = trainer.accelerator.get_state_dict(trainer.model)
    return state if is_rank0() else None


def consolidated_model(config: Any, state: dict[str, Any]) -> Any:
    """A plain (unsharded) model on CPU holding the gathered weights, for save_pretrained and the exports."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict({k: v.detach().to("cpu", torch.float32) for k, v in state.items()},
                                                strict=False)
    # A tied LM head is not in the gathered state under its own name.
    missing = [k for k in missing if not (k == "lm_head.weight" and getattr(config, "tie_word_embeddings", False))]
    if missing or unexpected:
        raise RuntimeError(f"the gathered state does not match the model: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    return model


def train(cfg: dict[str, Any], resume: bool) -> int:
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    t_start = time.time()

    import torch

    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    threads = torch.get_num_threads()
    from transformers import PrinterCallback, TrainerCallback, set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_warning()
    # peft looks for a config.json beside a GGUF-loaded base to see whether the vocabulary changed; it didn't.
    warnings.filterwarnings("ignore", message="Could not find a config file")
    hf_logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_warning()
    from trl import SFTConfig, SFTTrainer

    out = os.path.abspath(cfg["output_dir"])
    os.makedirs(out, exist_ok=True)
    model_dir = os.path.join(out, "model")
    baseline_dir = os.path.join(out, "baseline-model")
    ckpt_root = os.path.join(out, "checkpoints")
    for name in ("model", "baseline-model"):
        clean_stale_tmp(out, name)
    precision, device = pick_precision(cfg["precision"])

    # ---- the student: source, optional init_from, and the baseline (the student before training)
    st = cfg["student"]
    source = resolve_source(st["source"], cfg["_base"])
    init = resolve_init_from(st["init_from"], cfg["_base"]) if st.get("init_from") else None
    start_from = init or source
    if init is None and source.kind == "hf":
        baseline: StudentSource = source
    elif init is not None:
        baseline = init
    else:
        baseline = StudentSource("hf", baseline_dir, source.gguf)
    export_gguf_from = (init.gguf if init and init.gguf else None) or source.gguf
    baseline_gguf = (init.gguf if init else source.gguf)

    rows, n_rows, data_sha = read_rows(cfg["data"])
    if not rows:
        raise DataError(f"No training examples in {cfg['data']}")
    fp_src = {"source": source.path, "init_from": init.path if init else None}
    if source.kind == "gguf":
        fp_src["source_sha256"] = file_sha256(source.path)
    strategy = cfg["distributed"]["strategy"]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    # A sharded checkpoint is only readable by the same strategy, and its data order is the world size's.
    fp_dist = {"strategy": strategy, "world_size": world} if strategy != "ddp" else {}
    fingerprint = hashlib.sha256(json.dumps({"data_sha256": data_sha, **fp_src, **fp_dist,
                                             **{k: cfg[k] for k in FINGERPRINT_KEYS},
                                             **({"objective": {k: v for k, v in cfg["objective"].items()
                                                               if k not in ("logprobs", "teacher")}}
                                                if cfg["objective"]["type"] == "kd" else {})},
                                            sort_keys=True, default=str).encode()).hexdigest()

    from student import load_generation_config, load_model, load_tokenizer

    load_src = baseline if (baseline.kind == "hf" and os.path.isdir(baseline.path)) else start_from
    t0 = time.time()
    tok = load_tokenizer(load_src)
    gen = load_generation_config(load_src)
    tmpl = check_chat_template(tok, gen.eos_token_id)
    pad = ensure_pad(tok)
    set_seed(int(cfg["seed"]))
    model = load_model(load_src, torch.float32)
    if pad["added"]:
        model.resize_token_embeddings(len(tok))
    model.config.pad_token_id = tok.pad_token_id
    model.config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    log(f"student {load_src.path} loaded in {time.time() - t0:.1f}s: EOS {tmpl['eos_token']!r}, pad "
        f"{pad['pad_token']!r} (id {pad['pad_token_id']}{', added' if pad['added'] else ''}), "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params")

    # The baseline is served at the student's precision: a GGUF written from the same de-quantized weights in the
    # same dtype as the student's export, not the quantized source file (else the comparison mixes in quantization).
    gguf_dtype = cfg["export"].get("gguf_dtype", "f16")
    baseline_export = os.path.join(baseline_dir, "model.gguf")
    if baseline.path == baseline_dir and not os.path.isdir(baseline_dir) and is_rank0():
        t0 = time.time()
        exported = bool(cfg["export"].get("gguf") and source.gguf)
        info = {"kind": "baseline", "gguf": baseline_export if exported else baseline_gguf,
                "gguf_dtype": gguf_dtype if exported else None, "source": source.describe()}

        def build_baseline(tmp: str) -> None:
            if exported:
                from export_gguf import export_gguf

                export_gguf(model.state_dict(), model.config, source.gguf, os.path.join(tmp, "model.gguf"), gguf_dtype,
                            tok.pad_token_id)

        save_student_dir(model, tok, baseline_dir,
                         f"# Baseline student\n\nThe untrained student `{source.path}` as loaded for training "
                         f"(de-quantized to float32), with pad `{pad['pad_token']}`. "
                         + (f"`model.gguf` is these weights in {gguf_dtype}, the dtype of the student's GGUF export.\n"
                            if exported else "Its GGUF is the source file.\n"),
                         {BASELINE_INFO: json.dumps(info, indent=1)}, build=build_baseline)
        log(f"baseline written to {baseline_dir} in {time.time() - t0:.1f}s")
    if baseline.path == baseline_dir and os.path.isfile(baseline_export):
        baseline_gguf = baseline_export

    kd = cfg["objective"] if cfg["objective"]["type"] == "kd" else None
    kept: list[tuple[int, int]] | None = [] if kd else None
    inputs, labels, stats = tokenize_rows(tok, rows, int(st["max_seq_len"]), kept)
    kd_rows: list[Any] = []
    kd_info: dict[str, Any] | None = None
    if kd:
        # before any step: a teacher of another tokenizer family must stop the run here
        from kd_trl import build_targets

        try:
            kd_rows, kd_info = build_targets(tok, kd["logprobs"], [r for r, _ in kept or []], inputs,
                                             [p for _, p in kept or []], len(rows), int(kd["top_k"]), kd["teacher"],
                                             os.path.basename(start_from.path.rstrip("/")))
        except OSError as e:
            raise DataError(f"invalid training data: cannot read the logprobs sidecar {kd['logprobs']}: {e}") from e
        log(f"kd: T={kd['temperature']} alpha={kd['alpha']} top_k={kd['top_k']} tail={kd['tail']}; {kd_info}")
    if not inputs:
        raise DataError(f"No training examples in {cfg['data']} ({n_rows} rows, {stats['skipped_too_long']} with "
                        f"prompts longer than max_seq_len={st['max_seq_len']})")
    n = len(inputs)
    per_step = cfg["batch_size"] * cfg["gradient_accumulation"] * world
    steps_per_epoch = math.ceil(n / per_step)
    total_steps = max(1, math.ceil(cfg["epochs"] * steps_per_epoch))
    if cfg["max_steps"] is not None:
        total_steps = min(total_steps, int(cfg["max_steps"]))

    # ---- checkpoints: resume from the last complete one written for this run
    if is_rank0():
        clean_incomplete(ckpt_root)
        if not resume:
            for _, p, _ in checkpoints(ckpt_root):
                remove_dir(ckpt_root, p)
    existing = [(s, p, m) for s, p, m in checkpoints(ckpt_root) if m is not None]
    resume_path, start_step, stale_dir, prior = None, 0, None, {}
    if existing:
        s, p, m = existing[-1]
        if m.get("fingerprint") != fingerprint:
            stale_dir = os.path.join(out, f"checkpoints-stale-{str(m.get('fingerprint'))[:12]}")
            if is_rank0():
                shutil.rmtree(stale_dir, ignore_errors=True)
                os.rename(ckpt_root, stale_dir)
                fsync_dir(out)
            log(f"WARNING: checkpoint {p} was written for different data or settings; moved the checkpoints to "
                f"{stale_dir} and starting from step 0")
        else:
            resume_path, start_step, prior = p, s, m
            log(f"resuming from {p} (step {s}/{total_steps})")

    peft_config = None
    if cfg["lora"]:
        from peft import LoraConfig

        lo = cfg["lora"]
        peft_config = LoraConfig(r=int(lo["r"]), lora_alpha=float(lo["alpha"]), lora_dropout=float(lo["dropout"]),
                                 target_modules=list(lo["target_modules"]), task_type="CAUSAL_LM", bias="none")

    ds = datasets.Dataset.from_dict({"input_ids": inputs, "labels": labels,
                                     **({"kd_row": list(range(len(inputs)))} if kd else {})})
    sharding = sharding_args(cfg, model, device)
    args = SFTConfig(
        output_dir=ckpt_root,
        per_device_train_batch_size=cfg["batch_size"],
        gradient_accumulation_steps=cfg["gradient_accumulation"],
        learning_rate=float(cfg["lr"]),
        lr_scheduler_type=cfg["scheduler"] if cfg["scheduler"] != "constant" else "constant_with_warmup",
        # transformers reads a float in [0, 1) as a ratio of the total steps.
        warmup_steps=min(float(cfg["warmup_ratio"]), 0.999),
        weight_decay=float(cfg["weight_decay"]),
        max_grad_norm=float(cfg["grad_clip"]) if cfg["grad_clip"] else 0.0,
        max_steps=total_steps,
        num_train_epochs=float(cfg["epochs"]),
        logging_steps=1,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=int(cfg["checkpoint_every"]),
        save_total_limit=None,  # rotation happens after the completion marker, in CheckpointEvents
        seed=int(cfg["seed"]),
        data_seed=int(cfg["seed"]),
        bf16=precision == "bf16",
        fp16=False,
        activation_checkpointing=bool(cfg["gradient_checkpointing"] or cfg["distributed"]["activation_checkpointing"])
        and strategy != "fsdp",  # FSDP checkpoints activations itself (fsdp_config), without an extra all-gather
        use_cpu=device == "cpu",
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        max_length=int(st["max_seq_len"]),
        packing=bool(cfg["packing"]),
        dataloader_num_workers=0,
        dataset_num_proc=None,
        save_only_model=False,
        log_level="warning",
        **sharding,
        # kd: the row index must reach the collator, which turns it into the row's soft targets
        remove_unused_columns=not kd,
    )

    class Events(TrainerCallback):
        """Turns the Trainer's hooks into the JSON protocol, marks checkpoints complete, honours SIGTERM."""

        def __init__(self) -> None:
            self.window: collections.deque[tuple[float, int]] = collections.deque(maxlen=21)
            self.train_time = float(prior.get("train_time_s", 0.0))
            self.t_step = time.time()
            self.nonfinite = False

        def on_train_begin(self, a, state, control, **kw):
            stop.training = True
            self.window.append((time.time(), int(state.num_input_tokens_seen)))
            emit({"event": "start", "total_steps": state.max_steps, "resumed_from_step": state.global_step,
                  "params": params, "trainable_params": trainable, "examples": n, "rows": n_rows, **stats,
                  "steps_per_epoch": steps_per_epoch, "epochs": cfg["epochs"], "batch_size": cfg["batch_size"],
                  "gradient_accumulation": cfg["gradient_accumulation"], "max_len": st["max_seq_len"],
                  "threads": threads, "device": device, "precision": precision, "world_size": world,
                  "lora": bool(cfg["lora"]), "stale_checkpoints": stale_dir})
            if stop.signum is not None:
                control.should_training_stop = True
            if state.global_step >= state.max_steps:
                # Resumed from the final checkpoint (a crash during the exports): the Trainer would train one step
                # past the end; the weights it has just loaded are the trained student.
                raise AlreadyTrained()

        def on_step_begin(self, a, state, control, **kw):
            self.t_step = time.time()

        def on_step_end(self, a, state, control, **kw):
            now = time.time()
            self.train_time += now - self.t_step
            self.window.append((now, int(state.num_input_tokens_seen)))
            if state.global_step >= state.max_steps:
                control.should_save = True  # a crash during the export then costs only the export
            if stop.signum is not None:
                control.should_save = True
                control.should_training_stop = True

        def on_log(self, a, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" not in logs:
                return
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                self.nonfinite = True
                control.should_training_stop = True
            step = state.global_step
            if step % cfg["log_every"] and step != state.max_steps and step != start_step + 1:
                return
            (t_a, k_a), (t_b, k_b) = self.window[0], self.window[-1]
            tps = (k_b - k_a) / (t_b - t_a) if t_b > t_a else 0.0
            emit({"event": "step", "step": step, "total_steps": state.max_steps,
                  "epoch": round(step / steps_per_epoch, 4), "loss": round(loss, 5),
                  "lr": float(logs.get("learning_rate", 0.0)), "grad_norm": logs.get("grad_norm"),
                  "tokens_per_s": round(tps, 1), "tokens": int(state.num_input_tokens_seen)})

        def on_save(self, a, state, control, **kw):
            # Every rank writes its own shard and RNG state: the checkpoint is complete only when all have.
            barrier()
            if not state.is_world_process_zero:
                return
            path = os.path.join(ckpt_root, f"checkpoint-{state.global_step}")
            t = time.time()
            fsync_tree(path)
            write_json_atomic(os.path.join(path, MARKER), {
                "step": state.global_step, "total_steps": state.max_steps, "fingerprint": fingerprint,
                "train_time_s": self.train_time, "time": time.time()})
            done = [(s, p) for s, p, m in checkpoints(ckpt_root) if m is not None]
            for s, p in done[:-int(cfg["keep_checkpoints"])]:
                remove_dir(ckpt_root, p)
            log(f"checkpoint {path} complete ({time.time() - t:.2f}s to sync)")
            emit({"event": "checkpoint", "step": state.global_step, "path": path})

    model.config.use_cache = False
    events = Events()
    trainer_cls = SFTTrainer
    if kd:
        from kd_loss import kd_objective
        from kd_trl import collate_targets

        class KdSFTTrainer(SFTTrainer):
            """α·T²·KL on the teacher's top k (+ tail) + (1−α)·CE, on the assistant tokens (labels != -100)."""

            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                t_ids, t_lp, t_mask = inputs.pop("kd_ids"), inputs.pop("kd_lp"), inputs.pop("kd_mask")
                labels = inputs.pop("labels")
                outputs = model(**inputs, use_cache=False)
                logits = outputs.logits[:, :-1]
                loss, _ = kd_objective(logits, labels[:, 1:], t_ids[:, :-1], t_lp[:, :-1], t_mask[:, :-1],
                                       float(kd["temperature"]), float(kd["alpha"]), bool(kd["tail"]))
                return (loss, outputs) if return_outputs else loss

        trainer_cls = KdSFTTrainer
    trainer = trainer_cls(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft_config,
                          callbacks=[events])
    if kd:
        base_collator = trainer.data_collator

        def kd_collator(examples: list[dict[str, Any]]) -> dict[str, Any]:
            rows = [kd_rows[int(e["kd_row"])] for e in examples]
            batch = base_collator([{k: v for k, v in e.items() if k != "kd_row"} for e in examples])
            batch["kd_ids"], batch["kd_lp"], batch["kd_mask"] = collate_targets(rows, batch["input_ids"].shape[1],
                                                                                int(kd["top_k"]))
            return batch

        trainer.data_collator = kd_collator
    # It prints each log dict on stdout, which is reserved for the JSON events.
    trainer.remove_callback(PrinterCallback)
    if cfg["packing"]:
        # Packing turns the rows into fewer, longer sequences: an epoch is counted in those.
        steps_per_epoch = math.ceil(len(trainer.train_dataset) / per_step)
        total_steps = max(1, math.ceil(cfg["epochs"] * steps_per_epoch))
        if cfg["max_steps"] is not None:
            total_steps = min(total_steps, int(cfg["max_steps"]))
        trainer.args.max_steps = total_steps
        log(f"packing: {n} rows in {len(trainer.train_dataset)} sequences of up to {st['max_seq_len']} tokens")
    params = sum(p.numel() for p in trainer.model.parameters())
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    if stop.signum is not None:
        return stop.exit_code
    try:
        trainer.train(resume_from_checkpoint=resume_path)
    except AlreadyTrained:
        log(f"checkpoint {resume_path} is the last step: nothing left to train")
    stop.training = False
    if events.nonfinite:
        log("the loss is not finite; stopping")
        return 3
    if stop.signum is not None:
        log(f"stopped at step {trainer.state.global_step}/{total_steps}")
        return stop.exit_code
    # A sharded model is gathered into one full state dict on rank 0 (a collective: every rank takes part).
    full_state = gather_full_state(trainer, strategy)
    if not is_rank0():
        return 0

    # ---- the trained student: merged, saved with its tokenizer, model card, ONNX and GGUF exports
    step = int(trainer.state.global_step)
    history = [h for h in trainer.state.log_history if "loss" in h]
    loss_curve = [{"step": int(h["step"]), "loss": round(float(h["loss"]), 5), "lr": float(h.get("learning_rate", 0.0))}
                  for h in history]
    final_loss = loss_curve[-1]["loss"] if loss_curve else None
    last = [p["loss"] for p in loss_curve[-10:]]
    final_avg10 = round(sum(last) / len(last), 5) if last else None
    trained = trainer.model
    if full_state is not None:
        trained = consolidated_model(model.config, full_state)
        del full_state
    if cfg["lora"]:
        trained = trained.merge_and_unload()
    trained = trained.to("cpu", dtype=torch.float32).eval()
    trained.config.use_cache = True
    tokens_total = int(trainer.state.num_input_tokens_seen)
    info = {"source": start_from.describe(), "examples": n, "stats": stats, "steps": step, "final_loss": final_loss,
            "data_sha256": data_sha, "precision": precision, "device": device, "eos_token": tok.eos_token,
            "pad_token": tok.pad_token, "name": cfg.get("model_card", {}).get("name")}
    readme = model_card(cfg, info)
    exports: dict[str, Any] = {"onnx": None, "gguf": None}

    def build(tmp: str) -> None:
        if cfg["export"].get("onnx"):
            from export_onnx_hf import export_onnx, onnx_max_abs_diff

            r = export_onnx(trained, os.path.join(tmp, "model.onnx"))
            diff = onnx_max_abs_diff(trained, os.path.join(tmp, "model.onnx"))
            tol = float(cfg["export"].get("onnx_tol", 2e-3))
            log(f"onnxruntime vs torch max_abs_diff={diff} (tolerance {tol})")
            if diff is not None and diff > tol:
                raise RuntimeError(f"ONNX export differs from torch by {diff} > {tol}")
            exports.update({**r, "onnx": os.path.join(model_dir, "model.onnx"), "onnx_max_abs_diff": diff})
        if cfg["export"].get("gguf"):
            if not export_gguf_from:
                log("GGUF export skipped: no source GGUF to take the tokenizer metadata from")
                exports["gguf_skipped"] = "no source GGUF"
            else:
                from export_gguf import export_gguf

                r = export_gguf(trained.state_dict(), trained.config, export_gguf_from,
                                os.path.join(tmp, "model.gguf"), gguf_dtype,
                                tok.pad_token_id, info["name"])
                exports.update({**r, "gguf": os.path.join(model_dir, "model.gguf")})

    t0 = time.time()
    save_student_dir(trained, tok, model_dir, readme, build=build)
    log(f"student written to {model_dir} in {time.time() - t0:.1f}s")
    train_time = events.train_time
    report = {
        "backend": "trl", "steps": step, "total_steps": total_steps, "resumed_from_step": start_step,
        "epochs": cfg["epochs"], "steps_per_epoch": steps_per_epoch, "examples": n, "rows": n_rows, **stats,
        "params": params, "trainable_params": trainable, "tokens": tokens_total,
        "train_time_s": round(train_time, 2),
        "tokens_per_s": round(tokens_total / train_time, 1) if train_time > 0 else None,
        "wall_time_s_this_run": round(time.time() - t_start, 2), "threads": threads, "device": device,
        "precision": precision, "final_loss": final_loss, "final_loss_avg10": final_avg10,
        "objective": cfg["objective"]["type"],
        **({"kd": {**{k: v for k, v in cfg["objective"].items() if k != "type"}, **(kd_info or {})}} if kd else {}),
        "model_dir": model_dir, "baseline_model_dir": baseline.path, "baseline_gguf": baseline_gguf,
        "model_card": os.path.join(model_dir, "README.md"), **exports,
        "model": {"source": start_from.describe(), "params": params, "lora": cfg["lora"]},
        "student": {"eos_token": tok.eos_token, "eos_token_id": tok.eos_token_id, "pad_token": tok.pad_token,
                    "pad_token_id": tok.pad_token_id},
        "config": {k: v for k, v in cfg.items() if k not in ("_base", "model_card")},
        "settings": {"fingerprint": fingerprint, "data": cfg["data"], "data_sha256": data_sha},
        "loss_curve": loss_curve,
    }
    report_path = os.path.join(out, "train_report.json")
    write_json_atomic(report_path, report)
    emit({"event": "done", "step": step, "total_steps": total_steps, "final_loss": final_loss,
          "final_loss_avg10": final_avg10, "model_dir": model_dir, "baseline_model_dir": baseline.path,
          "baseline_gguf": baseline_gguf, "model_card": report["model_card"], "onnx": exports.get("onnx"),
          "onnx_max_abs_diff": exports.get("onnx_max_abs_diff"), "gguf": exports.get("gguf"),
          "tokens": tokens_total, "tokens_per_s": report["tokens_per_s"], "train_time_s": report["train_time_s"],
          "report": report_path})
    log(f"done: {step} steps, final loss {final_loss}, {report['tokens_per_s']} tokens/s, "
        f"{time.time() - t_start:.1f}s wall")
    return 0


def visible_gpus() -> int:
    v = os.environ.get("CUDA_VISIBLE_DEVICES")
    if v is None or v.strip() in ("", "-1"):
        return 0
    return len([d for d in v.split(",") if d.strip()])


def local_processes(cfg: dict[str, Any]) -> int:
    """One process per visible GPU; on a CPU-only slot distributed.processes_per_node (default 1)."""
    ppn = cfg["distributed"].get("processes_per_node")
    gpus = visible_gpus()
    if gpus and ppn and ppn > gpus:
        raise ConfigError(f"distributed.processes_per_node {ppn} is more than the {gpus} GPU(s) of this slot")
    return ppn or gpus or 1


def check_memory(cfg: dict[str, Any], nproc: int) -> None:
    from memory_estimate import check_config, local_slot

    st = cfg["student"]
    src = resolve_init_from(st["init_from"], cfg["_base"]) if st.get("init_from") else \
        resolve_source(st["source"], cfg["_base"])
    slot = local_slot(nproc)
    try:
        est = check_config(cfg, src.path, slot)
    except DoesNotFit:
        raise
    except Exception as e:  # an architecture the estimate cannot build on the meta device: train and see
        log(f"warning: no memory estimate for {src.path}: {e}")
        return
    pd = est["per_device"]
    log(f"memory estimate: {pd['total_gib']} GiB per {'GPU' if est['on_gpu'] else 'process'} "
        f"({est['strategy']}, {est['world_size']} process(es)); available {est['device_gib']} GiB per device, "
        f"{est['host_gib']} GiB host")


def launch_distributed(n: int, argv: list[str]) -> int:
    """One process per visible GPU (or per distributed.processes_per_node on a CPU slot) under torchrun. The activity
    signals the whole process group, so every rank gets SIGTERM itself; this parent only waits and reports 143 when
    it was stopped."""
    stop = {"sig": 0}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           os.path.abspath(__file__), *argv]
    log(f"{n} processes: launching {' '.join(cmd)}")
    children: list[subprocess.Popen] = []

    def on_signal(signum: int, _f: Any) -> None:
        stop["sig"] = signum
        # Under the activity the whole process group gets the signal; under a cluster engine only this process
        # does: pass it on (torchrun hands it to every rank, which checkpoints and exits).
        for c in children:
            with contextlib.suppress(ProcessLookupError):
                c.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    children.append(subprocess.Popen(cmd))
    if stop["sig"]:
        children[0].send_signal(stop["sig"])
    rc = children[0].wait()
    return 128 + stop["sig"] if stop["sig"] else rc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="training config JSON")
    ap.add_argument("--no-resume", action="store_true", help="ignore (and delete) existing checkpoints; start fresh")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if "LOCAL_RANK" not in os.environ:
            # The launching process: refuse a student that cannot fit before any rank loads it.
            nproc = local_processes(cfg)
            check_memory(cfg, nproc)
            if nproc > 1 and os.environ.get("DISTILLERY_NO_TORCHRUN") != "1":
                return launch_distributed(nproc, argv)
        return train(cfg, resume=not args.no_resume)
    except DoesNotFit as e:
        log(f"student does not fit: {e}")
        return 2
    except ConfigError as e:
        log(f"invalid config: {e}")
        return 2
    except DataError as e:
        log(str(e))
        return 2
    except StudentError as e:
        log(f"invalid student: {e}")
        return 2
    except Exception as e:  # noqa: BLE001 - only the tokenizer check's own error is turned into exit code 4
        if type(e).__name__ == "TokenizerMismatch":
            log(str(e))
            return 4
        if type(e).__name__ == "SidecarError":
            log(f"invalid training data: {e}")
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
