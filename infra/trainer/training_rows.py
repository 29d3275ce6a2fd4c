"""The training JSONL as both trainers read it: each non-blank line parsed, with its line number, and the sha256 of
the file's bytes (the resume fingerprint). A line that does not parse, or that the caller rejects, is an error naming
the file and the line."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Iterator


class TrainingRows:
    def __init__(self, path: str, error: Callable[[str], Exception]):
        self.path = path
        self.error = error
        self._sha = hashlib.sha256()

    def invalid(self, lineno: int, why: object) -> Exception:
        return self.error(f"invalid training data: {self.path} line {lineno}: {why}")

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise self.error(f"cannot read training data {self.path}: {e}") from e
        with f:
            for lineno, raw in enumerate(f, 1):
                self._sha.update(raw)
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise self.invalid(lineno, e) from e
                yield lineno, row

    @property
    def sha256(self) -> str:
        """Of every byte read so far: the whole file once the rows have been read to the end."""
        return self._sha.hexdigest()
