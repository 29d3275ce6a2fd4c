"""SFT of a real small causal LM (SmolLM2-135M-Instruct by default) on the chat JSONL, with TRL's SFTTrainer.

    python train_sft.py --config config.json [--no-resume]

stdout: one JSON object per line (events start / step / checkpoint / done), the same protocol as train_tiny.py;
stderr: human logs. Exit codes: 0 done, 2 bad config, data or student (chat template), 3 loss not finite,
143 stopped by SIGTERM (after writing a checkpoint), 130 by SIGINT. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # infra/trainer: durable_files

# Everything comes from local files: a hub lookup would hang or fail on an offline worker.
for _k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_k, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from memory_estimate import DoesNotFit  # noqa: E402
from sft_config import load_config  # noqa: E402
from sft_loop import train  # noqa: E402
from sft_process import ConfigError, DataError, log  # noqa: E402
from student import StudentError, resolve_init_from, resolve_source  # noqa: E402


def visible_gpus() -> int:
    v = os.environ.get("CUDA_VISIBLE_DEVICES")
    if v is None or v.strip() in ("", "-1"):
        return 0
    return len([d for d in v.split(",") if d.strip()])


def local_processes(cfg: dict[str, Any]) -> int:
    """One process per visible GPU; on a CPU-only slot distributed.processes_per_node (default 1)."""
    ppn = cfg["distributed"].get("processes_per_node")
    gpus = visible_gpus()
    if gpus and ppn and ppn > gpus:
        raise ConfigError(f"distributed.processes_per_node {ppn} is more than the {gpus} GPU(s) of this slot")
    return ppn or gpus or 1


def check_memory(cfg: dict[str, Any], nproc: int) -> None:
    from memory_estimate import check_config, local_slot

    st = cfg["student"]
    src = resolve_init_from(st["init_from"], cfg["_base"]) if st.get("init_from") else \
        resolve_source(st["source"], cfg["_base"])
    slot = local_slot(nproc)
    try:
        est = check_config(cfg, src.path, slot)
    except DoesNotFit:
        raise
    except Exception as e:  # an architecture the estimate cannot build on the meta device: train and see
        log(f"warning: no memory estimate for {src.path}: {e}")
        return
    pd = est["per_device"]
    log(f"memory estimate: {pd['total_gib']} GiB per {'GPU' if est['on_gpu'] else 'process'} "
        f"({est['strategy']}, {est['world_size']} process(es)); available {est['device_gib']} GiB per device, "
        f"{est['host_gib']} GiB host")


def launch_distributed(n: int, argv: list[str]) -> int:
    """One process per visible GPU (or per distributed.processes_per_node on a CPU slot) under torchrun. The activity
    signals the whole process group, so every rank gets SIGTERM itself; this parent only waits and reports 143 when
    it was stopped."""
    stop = {"sig": 0}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           os.path.abspath(__file__), *argv]
    log(f"{n} processes: launching {' '.join(cmd)}")
    children: list[subprocess.Popen] = []

    def on_signal(signum: int, _f: Any) -> None:
        stop["sig"] = signum
        # Under the activity the whole process group gets the signal; under a cluster engine only this process
        # does: pass it on (torchrun hands it to every rank, which checkpoints and exits).
        for c in children:
            with contextlib.suppress(ProcessLookupError):
                c.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    children.append(subprocess.Popen(cmd))
    if stop["sig"]:
        children[0].send_signal(stop["sig"])
    rc = children[0].wait()
    return 128 + stop["sig"] if stop["sig"] else rc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="training config JSON")
    ap.add_argument("--no-resume", action="store_true", help="ignore (and delete) existing checkpoints; start fresh")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if "LOCAL_RANK" not in os.environ:
            # The launching process: refuse a student that cannot fit before any rank loads it.
            nproc = local_processes(cfg)
            check_memory(cfg, nproc)
            if nproc > 1 and os.environ.get("DISTILLERY_NO_TORCHRUN") != "1":
                return launch_distributed(nproc, argv)
        return train(cfg, resume=not args.no_resume)
    except DoesNotFit as e:
        log(f"student does not fit: {e}")
        return 2
    except ConfigError as e:
        log(f"invalid config: {e}")
        return 2
    except DataError as e:
        log(str(e))
        return 2
    except StudentError as e:
        log(f"invalid student: {e}")
        return 2
    except Exception as e:  # noqa: BLE001 - only the tokenizer check's own error is turned into exit code 4
        if type(e).__name__ == "TokenizerMismatch":
            log(str(e))
            return 4
        if type(e).__name__ == "SidecarError":
            log(f"invalid training data: {e}")
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
