"""The trainer's config: defaults merged with the JSON file, every problem reported at once (ConfigError)."""

from __future__ import annotations

import json
import os
from typing import Any

from sft_process import ConfigError, log


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
