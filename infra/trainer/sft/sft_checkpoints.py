"""Checkpoint dirs: a checkpoint counts only once its completion marker is written; incomplete ones and half-deleted
ones are removed at startup."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from typing import Any

from durable_files import fsync_dir
from sft_process import log

CKPT_RE = re.compile(r"^checkpoint-(\d+)$")
MARKER = "distillery-complete.json"  # written last: a checkpoint dir without it is never resumed from


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
