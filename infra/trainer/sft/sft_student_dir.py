"""The student's output dir: its model card and the atomic write of a complete model dir (temp dir, then rename)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from typing import Any

from durable_files import fsync_dir, fsync_tree

BASELINE_INFO = "baseline.json"


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
