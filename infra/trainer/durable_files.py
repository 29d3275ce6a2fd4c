"""Durable writes shared by the trainers and exporters: a checkpoint or an export is complete only once its bytes and
its directory entry are on disk (fsync file, then directory), so a crash never leaves a half-written one that looks
complete."""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
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


@contextlib.contextmanager
def atomic_file(final: str) -> Iterator[str]:
    """Yields a temp path beside `final` to write; once the block succeeds the file is fsynced, renamed over `final`
    and the directory fsynced. A failed block leaves no temp file behind, and `final` as it was."""
    d = os.path.dirname(os.path.abspath(final))
    tmp = os.path.join(d, f".{os.path.basename(final)}.tmp-{os.getpid()}")
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, final)
        fsync_dir(d)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
