"""The trainer process's protocol: JSON events on stdout (rank 0 only), human logs on stderr, the errors that map to
exit code 2, and the SIGTERM/SIGINT flag that lets the current step finish before a checkpoint."""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any


class ConfigError(ValueError):
    pass


class DataError(ValueError):
    pass


class AlreadyTrained(Exception):
    pass


def log(msg: str) -> None:
    print(f"[train_sft] {msg}", file=sys.stderr, flush=True)


def is_rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def emit(obj: dict[str, Any]) -> None:
    if not is_rank0():
        return
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    sys.stdout.write(line)
    sys.stdout.flush()
    # On a cluster nobody reads this process's stdout as it runs: the activity follows the same events in a file on
    # the shared storage instead.
    events_file = os.environ.get("DISTILLERY_EVENTS_FILE")
    if events_file:
        with open(events_file, "a", encoding="utf-8") as f:
            f.write(line)



class StopFlag:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.training = False  # outside the training loop there is no step to finish: exit at once

    def __call__(self, signum: int, _frame: Any) -> None:
        if self.signum is None:
            log(f"received {signal.Signals(signum).name}: " +
                ("finishing the current step, then checkpoint and exit" if self.training else "exiting"))
        self.signum = signum
        if not self.training:
            raise SystemExit(128 + signum)

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)
