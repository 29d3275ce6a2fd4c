"""A minimal decoder-only transformer (the foundation student) and its model-dir format.

Token + learned position embeddings, pre-LN blocks (causal self-attention via scaled_dot_product_attention, GELU
MLP), final LayerNorm and an output head tied to the token embedding. forward(input_ids[B,T]) -> logits[B,T,V].
No KV cache: it is small enough to re-run on the whole prefix, and that keeps the ONNX graph trivial.

Model dir (written by save_model_dir, read by load_model_dir):
    config.json        {"architecture": "tiny_gpt", "vocab_size", "d_model", "n_layer", "n_head", "max_len", ...}
    model.safetensors  weights (the tied head is not stored separately)
    tokenizer.json     byte_tokenizer.tokenizer_spec()
    model.onnx         written by export_onnx.py
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

import byte_tokenizer as tok
from durable_files import fsync_dir, fsync_file, write_json  # noqa: F401  (fsync_dir, write_json: re-exported for the trainer)

ARCHITECTURE = "tiny_gpt"


@dataclass
class TinyGPTConfig:
    vocab_size: int = tok.VOCAB_SIZE
    d_model: int = 128
    n_layer: int = 4
    n_head: int = 4
    max_len: int = 256
    mlp_ratio: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layer", "n_head", "max_len", "mlp_ratio"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"model.{name} must be a positive integer, got {v!r}")
        if self.d_model % self.n_head:
            raise ValueError(f"model.d_model ({self.d_model}) must be divisible by model.n_head ({self.n_head})")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TinyGPTConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.head_dim = cfg.d_model // cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q = q.view(b, t, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.n_head, self.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(b, t, c)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        x = x + self.mlp(self.ln2(x))
        return x


class TinyGPT(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style init; residual output projections scaled by 1/sqrt(2*n_layer)."""
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * self.cfg.n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, mean=0.0, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:  # LayerNorm weight
                nn.init.ones_(p)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        pos = torch.arange(t, device=input_ids.device)
        x = self.drop(self.tok_emb(input_ids) + self.pos_emb(pos)[None, :, :])
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        return F.linear(x, self.tok_emb.weight)  # tied head

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------------------------------------------------------
# Model dir I/O
# ---------------------------------------------------------------------------------------------------------------

WEIGHTS_SAFETENSORS = "model.safetensors"
WEIGHTS_PT = "model.pt"


def save_weights(model: TinyGPT, path_dir: str) -> str:
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    try:
        from safetensors.torch import save_file
    except ImportError:  # pragma: no cover - safetensors is pinned in requirements.txt
        path = os.path.join(path_dir, WEIGHTS_PT)
        torch.save(state, path)
    else:
        path = os.path.join(path_dir, WEIGHTS_SAFETENSORS)
        save_file(state, path, metadata={"format": "pt", "architecture": ARCHITECTURE})
    os.chmod(path, 0o644)
    fsync_file(path)
    return path


def save_model_dir(model: TinyGPT, out_dir: str, extra_config: dict[str, Any] | None = None) -> None:
    """Writes config.json, weights and tokenizer.json into out_dir (which must exist)."""
    save_weights(model, out_dir)
    cfg = {"architecture": ARCHITECTURE, **model.cfg.to_dict(), "num_params": model.num_params(), **(extra_config or {})}
    write_json(os.path.join(out_dir, "config.json"), cfg)
    write_json(os.path.join(out_dir, "tokenizer.json"), tok.tokenizer_spec())
    fsync_dir(out_dir)


def read_model_config(model_dir: str) -> TinyGPTConfig:
    path = os.path.join(model_dir, "config.json")
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    if d.get("architecture", ARCHITECTURE) != ARCHITECTURE:
        raise ValueError(f"{path}: architecture {d.get('architecture')!r} is not {ARCHITECTURE!r}")
    return TinyGPTConfig.from_dict(d)


def load_weights(model_dir: str) -> dict[str, torch.Tensor]:
    st = os.path.join(model_dir, WEIGHTS_SAFETENSORS)
    if os.path.exists(st):
        from safetensors.torch import load_file

        return load_file(st, device="cpu")
    pt = os.path.join(model_dir, WEIGHTS_PT)
    if os.path.exists(pt):
        return torch.load(pt, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"no {WEIGHTS_SAFETENSORS} or {WEIGHTS_PT} in {model_dir}")


def load_model_dir(model_dir: str) -> TinyGPT:
    cfg = read_model_config(model_dir)
    model = TinyGPT(cfg)
    model.load_state_dict(load_weights(model_dir))
    model.eval()
    return model
