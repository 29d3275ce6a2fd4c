"""The config file of the tiny trainer (train_tiny.py, export_onnx.py --init-only) and the initial model.

Relative paths in the config (data, output_dir, init_from) are resolved against the config file's directory.
Unknown keys are ignored with a warning on stderr, so callers may carry extra fields.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import torch

from tiny_gpt import TinyGPT, TinyGPTConfig, load_weights, read_model_config

MODEL_DEFAULTS = {"d_model": 128, "n_layer": 4, "n_head": 4, "max_len": 256}


class ConfigError(ValueError):
    pass


@dataclass
class TrainConfig:
    data: str
    output_dir: str
    model: TinyGPTConfig
    init_from: str | None = None
    epochs: int = 3
    batch_size: int = 16
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    max_steps: int | None = None
    threads: int | None = None
    log_every: int = 1
    device: str = "cpu"
    export_onnx: bool = True
    # {"type": "sft"} or {"type": "kd", "temperature", "alpha", "top_k", "tail", "logprobs": sidecar path, "teacher"}
    objective: dict[str, Any] = field(default_factory=lambda: {"type": "sft"})
    raw: dict[str, Any] = field(default_factory=dict)

    def fingerprint_fields(self) -> dict[str, Any]:
        """Everything that changes the trajectory of a run: a checkpoint is only resumed under the same values."""
        return {
            "model": self.model.to_dict(),
            "init_from": self.init_from,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "min_lr_ratio": self.min_lr_ratio,
            "warmup_ratio": self.warmup_ratio,
            "weight_decay": self.weight_decay,
            "grad_clip": self.grad_clip,
            "seed": self.seed,
            "max_steps": self.max_steps,
            # sft runs keep their old fingerprint (and so resume their old checkpoints)
            **({"objective": {k: v for k, v in self.objective.items() if k not in ("logprobs", "teacher")}}
               if self.objective.get("type") != "sft" else {}),
        }


_KNOWN = {
    "data", "output_dir", "model", "init_from", "epochs", "batch_size", "lr", "min_lr_ratio", "warmup_ratio",
    "weight_decay", "grad_clip", "seed", "checkpoint_every", "keep_checkpoints", "max_steps", "threads", "log_every",
    "device", "export_onnx", "objective",
}


def _num(d: dict[str, Any], key: str, default: Any, kind: type, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False, optional: bool = False) -> Any:
    v = d.get(key, default)
    if v is None:
        if optional:
            return None
        raise ConfigError(f"{key} is required")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
        raise ConfigError(f"{key} must be {'an integer' if kind is int else 'a number'}, got {v!r}")
    v = kind(v)
    if kind is float and not math.isfinite(v):
        raise ConfigError(f"{key} must be finite, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ConfigError(f"{key} must be {'>' if lo_open else '>='} {lo}, got {v!r}")
    if hi is not None and v > hi:
        raise ConfigError(f"{key} must be <= {hi}, got {v!r}")
    return v


def parse_config(d: dict[str, Any], base_dir: str = ".") -> TrainConfig:
    if not isinstance(d, dict):
        raise ConfigError("config must be a JSON object")
    unknown = sorted(set(d) - _KNOWN)
    if unknown:
        print(f"config: ignoring unknown keys {unknown}", file=sys.stderr)

    def path_of(key: str, required: bool) -> str | None:
        v = d.get(key)
        if v is None:
            if required:
                raise ConfigError(f"{key} is required")
            return None
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{key} must be a non-empty string path")
        return os.path.abspath(os.path.join(base_dir, os.path.expanduser(v)))

    model_d = d.get("model") or {}
    if not isinstance(model_d, dict):
        raise ConfigError("model must be an object")
    try:
        model = TinyGPTConfig.from_dict({**MODEL_DEFAULTS, **{k: v for k, v in model_d.items() if v is not None}})
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from e

    device = d.get("device", "cpu")
    if device not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"device must be cpu, cuda or auto, got {device!r}")
    threads = _num(d, "threads", None, int, lo=1, optional=True)
    return TrainConfig(
        data=path_of("data", True),  # type: ignore[arg-type]
        output_dir=path_of("output_dir", True),  # type: ignore[arg-type]
        init_from=path_of("init_from", False),
        model=model,
        epochs=_num(d, "epochs", 3, int, lo=1),
        batch_size=_num(d, "batch_size", 16, int, lo=1),
        lr=_num(d, "lr", 2e-3, float, lo=0, lo_open=True),
        min_lr_ratio=_num(d, "min_lr_ratio", 0.1, float, lo=0, hi=1),
        warmup_ratio=_num(d, "warmup_ratio", 0.05, float, lo=0, hi=1),
        weight_decay=_num(d, "weight_decay", 0.01, float, lo=0),
        grad_clip=_num(d, "grad_clip", 1.0, float, lo=0),
        seed=_num(d, "seed", 0, int),
        checkpoint_every=_num(d, "checkpoint_every", 50, int, lo=1),
        keep_checkpoints=_num(d, "keep_checkpoints", 2, int, lo=1),
        max_steps=_num(d, "max_steps", None, int, lo=1, optional=True),
        threads=threads,
        log_every=_num(d, "log_every", 1, int, lo=1),
        device=device,
        export_onnx=bool(d.get("export_onnx", True)),
        objective=parse_objective(d.get("objective"), path_of),
        raw=d,
    )


def parse_objective(o: Any, path_of) -> dict[str, Any]:
    """sft (default) or kd with its settings and the training sidecar (one record per data row, in order)."""
    if o is None:
        return {"type": "sft"}
    if not isinstance(o, dict) or o.get("type") not in ("sft", "kd"):
        raise ConfigError(f"objective must be {{type: sft}} or {{type: kd, ...}}, got {o!r}")
    if o["type"] == "sft":
        return {"type": "sft"}
    logprobs = o.get("logprobs")
    if not isinstance(logprobs, str) or not logprobs:
        raise ConfigError("objective kd needs logprobs: the path of the teacher's logprobs sidecar")
    base = os.path.dirname(path_of("data", True))
    return {
        "type": "kd",
        "temperature": _num(o, "temperature", 1.0, float, lo=0, lo_open=True),
        "alpha": _num(o, "alpha", 0.5, float, lo=0, hi=1),
        "top_k": _num(o, "top_k", 100, int, lo=1),
        "tail": bool(o.get("tail", True)),
        "logprobs": os.path.abspath(os.path.join(base, logprobs)),
        "teacher": str(o.get("teacher") or "the teacher"),
    }


def load_config(path: str) -> TrainConfig:
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read config {path}: {e}") from e
    cfg = parse_config(d, os.path.dirname(os.path.abspath(path)))
    resolve_init_from(cfg)
    return cfg


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device is cuda but CUDA is not available")
    return torch.device(name)


def set_threads(threads: int | None) -> int:
    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (inter-op pool started)
        pass
    return n


def _is_checkpoint_dir(path: str) -> bool:
    return os.path.exists(os.path.join(path, "state.pt")) and os.path.exists(os.path.join(path, "meta.json"))


def resolve_init_from(cfg: TrainConfig) -> None:
    """With init_from, the architecture comes from that model (only dropout, a training setting, from the config)."""
    if not cfg.init_from:
        return
    src = cfg.init_from
    try:
        if _is_checkpoint_dir(src):
            with open(os.path.join(src, "meta.json"), encoding="utf-8") as f:
                src_cfg = TinyGPTConfig.from_dict(json.load(f)["model"])
        else:
            src_cfg = read_model_config(src)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"init_from {src} is not a tiny_gpt model dir or checkpoint: {e}") from e
    differing = {k: {"config": getattr(cfg.model, k), "init_from": getattr(src_cfg, k)}
                 for k in MODEL_DEFAULTS if getattr(cfg.model, k) != getattr(src_cfg, k)}
    if differing and cfg.raw.get("model"):
        print(f"config: model dims differ from init_from's, using init_from's: {differing}", file=sys.stderr)
    src_cfg.dropout = cfg.model.dropout
    cfg.model = src_cfg


def initial_model(cfg: TrainConfig) -> TinyGPT:
    """The model training starts from: init_from's weights if given, else a random init seeded by cfg.seed.
    export_onnx.py --init-only writes exactly this model (the "before fine-tuning" baseline)."""
    if cfg.init_from:
        resolve_init_from(cfg)
        model = TinyGPT(cfg.model)
        if _is_checkpoint_dir(cfg.init_from):
            state = torch.load(os.path.join(cfg.init_from, "state.pt"), map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
        else:
            model.load_state_dict(load_weights(cfg.init_from))
        return model
    torch.manual_seed(cfg.seed)
    return TinyGPT(cfg.model)


__all__ = ["TrainConfig", "ConfigError", "parse_config", "load_config", "initial_model", "pick_device", "set_threads"]
