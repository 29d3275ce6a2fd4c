"""Durable writes shared by the trainers and exporters: a checkpoint or an export is complete only once its bytes and
its directory entry are on disk (fsync file, then directory), so a crash never leaves a half-written one that looks
complete."""
from __future__ import annotations

import json
import os
from typing import Any


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Flushes a directory's entries (renames into it). Some file systems refuse fsync on a directory: ignored there."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: str) -> None:
    for d, _, files in os.walk(root):
        for name in files:
            fsync_file(os.path.join(d, name))
        fsync_dir(d)


def write_json(path: str, obj: Any) -> None:
    """Writes and fsyncs (not atomic: for files inside a temp dir that is renamed into place as a whole)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def write_json_atomic(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))
