"""Generation with a saved tiny GPT (torch, no KV cache), for quick checks of a trained model.

    python sample_tiny.py --model-dir DIR --prompts prompts.jsonl [--temperature 0] [--max-new-tokens 128]

Each input line is {"prompt": "...", "system"?: "..."} or a chat row {"messages": [...]} (its last user message, and
system message if any, is the prompt); other fields (id, answer, ...) are passed through. Prints one JSON line per
prompt: the input fields + {"completion": text, "finished": bool (EOS seen), "new_tokens": n} and, when the input has
an "answer" and the completion contains \\boxed{...}, "boxed" and "correct". A summary line
{"event": "summary", ...} goes to stderr. Temperature 0 is greedy; >0 samples (optionally top-k), seeded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import byte_tokenizer as tok  # noqa: E402
from tiny_gpt import TinyGPT, load_model_dir  # noqa: E402

BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")


@torch.no_grad()
def generate(model: TinyGPT, prompts: list[list[int]], max_new_tokens: int, temperature: float = 0.0,
             top_k: int = 0, generator: torch.Generator | None = None) -> list[tuple[list[int], bool]]:
    """Batched generation. Rows are right-padded; each row's next token is read at its own last position (causal
    model: padding after a position does not change its logits). Returns (new ids without EOS, finished) per row."""
    max_len = model.cfg.max_len
    rows = [list(p[-max_len:]) for p in prompts]
    outs: list[list[int]] = [[] for _ in rows]
    done = [False] * len(rows)
    for _ in range(max_new_tokens):
        active = [i for i, d in enumerate(done) if not d and len(rows[i]) < max_len]
        if not active:
            break
        t = max(len(rows[i]) for i in active)
        x = torch.full((len(active), t), tok.PAD_ID, dtype=torch.long)
        for b, i in enumerate(active):
            x[b, : len(rows[i])] = torch.tensor(rows[i])
        logits = model(x)
        last = torch.stack([logits[b, len(rows[i]) - 1] for b, i in enumerate(active)]).float()
        if temperature <= 0:
            nxt = last.argmax(-1)
        else:
            last = last / temperature
            if top_k > 0:
                kth = torch.topk(last, min(top_k, last.size(-1)), dim=-1).values[:, -1:]
                last = last.masked_fill(last < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(last, -1), 1, generator=generator).squeeze(1)
        for b, i in enumerate(active):
            tid = int(nxt[b])
            if tid == tok.EOS_ID:
                done[i] = True
            else:
                rows[i].append(tid)
                outs[i].append(tid)
    return [(o, d) for o, d in zip(outs, done)]


def prompt_of(row: dict) -> list[int]:
    if isinstance(row.get("messages"), list):
        msgs = row["messages"]
        users = [m for m in msgs if m.get("role") == "user"]
        systems = [m for m in msgs if m.get("role") == "system"]
        if not users:
            raise ValueError("no user message")
        return tok.encode_prompt(users[-1]["content"], systems[-1]["content"] if systems else None)
    if isinstance(row.get("prompt"), str):
        return tok.encode_prompt(row["prompt"], row.get("system"))
    raise ValueError('row needs "prompt" or "messages"')


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--prompts", required=True, help="JSONL of prompts")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model_dir(args.model_dir)
    rows = []
    with open(args.prompts, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    if args.limit:
        rows = rows[: args.limit]
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    n_answer = n_correct = n_finished = 0
    for s in range(0, len(rows), args.batch_size):
        chunk = rows[s : s + args.batch_size]
        results = generate(model, [prompt_of(r) for r in chunk], args.max_new_tokens, args.temperature, args.top_k, g)
        for r, (ids, finished) in zip(chunk, results):
            text = tok.decode(ids)
            out = {**r, "completion": text, "finished": finished, "new_tokens": len(ids)}
            n_finished += finished
            if "answer" in r:
                boxed = BOXED_RE.findall(text)
                out["boxed"] = boxed[-1].strip() if boxed else None
                out["correct"] = out["boxed"] == str(r["answer"]).strip()
                n_answer += 1
                n_correct += out["correct"]
            print(json.dumps(out, ensure_ascii=False), flush=True)
    summary = {"event": "summary", "prompts": len(rows), "finished": n_finished, "seconds": round(time.time() - t0, 2)}
    if n_answer:
        summary.update({"with_answer": n_answer, "correct": n_correct, "accuracy": round(n_correct / n_answer, 4)})
    print(json.dumps(summary), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
