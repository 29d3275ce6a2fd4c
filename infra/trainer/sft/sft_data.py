"""The chat JSONL: read and checked row by row (DataError names the line), then tokenised by the student's own chat
template with the prompt masked out of the loss."""

from __future__ import annotations

from typing import Any

from sft_process import DataError
from training_rows import TrainingRows

IGNORE = -100


def read_rows(path: str) -> tuple[list[tuple[list[dict[str, str]], dict[str, str]]], int, str]:
    """(prompt messages, assistant message) per row: the completion is the last message, which must be the
    assistant's; everything before it (system, earlier turns, the user turn) is the prompt."""
    rows = []
    n = 0
    lines = TrainingRows(path, DataError)
    for lineno, row in lines:
        n += 1
        where = f"invalid training data: {path} line {lineno}"
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
    return rows, n, lines.sha256


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
