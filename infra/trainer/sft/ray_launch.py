"""A Ray job's entrypoint for the trl trainer: one torchrun per node, placed by Ray, running train_sft.py.

    python ray_launch.py --config C --nodes N --gpus-per-node G [--processes-per-node P] [--events-file F]

Reserves N bundles of {G GPUs, 1 CPU} (one per node: STRICT_SPREAD) in a placement group, then starts on each one
task that runs `torch.distributed.run --nnodes N --node_rank i` with bundle 0's node as the rendezvous; with one node
the task runs train_sft.py itself (which starts its own torchrun across the node's GPUs). The trainer's events go to
F (DISTILLERY_EVENTS_FILE) on the shared storage, where the activity follows them. Exit status: the first non-zero
exit of a node, else 0.

Stopping the job kills this driver; Ray then kills the tasks' workers, and each torchrun, started with a parent-death
signal, gets SIGTERM: the ranks finish their step and write a checkpoint, as under the local activity.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: SIGTERM when the Ray worker that started this process dies.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def node_command(args: argparse.Namespace, rank: int, master: tuple[str, int] | None) -> list[str]:
    train = [os.path.join(HERE, "train_sft.py"), "--config", args.config]
    if master is None:
        return [sys.executable, *train]
    return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={args.nodes}", f"--node_rank={rank}",
            f"--nproc_per_node={args.processes_per_node or max(1, args.gpus_per_node)}",
            f"--master_addr={master[0]}", f"--master_port={master[1]}", *train]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--gpus-per-node", type=int, default=0)
    ap.add_argument("--processes-per-node", type=int, default=0)
    ap.add_argument("--events-file")
    ap.add_argument("--placement-timeout-s", type=float, default=3600)
    args = ap.parse_args(argv)

    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    ray.init(log_to_driver=True)
    g = args.gpus_per_node
    bundle = {"CPU": 1, "GPU": g} if g else {"CPU": 1}
    pg = placement_group([bundle] * args.nodes, strategy="STRICT_SPREAD" if args.nodes > 1 else "PACK")
    print(f"[ray_launch] waiting for {args.nodes} node(s) of {bundle}", file=sys.stderr, flush=True)
    ray.get(pg.ready(), timeout=args.placement_timeout_s)

    def on(i: int) -> PlacementGroupSchedulingStrategy:
        return PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=i)

    @ray.remote(num_cpus=0)
    def rendezvous() -> tuple[str, int]:
        with socket.socket() as s:
            s.bind(("", 0))
            return ray.util.get_node_ip_address(), s.getsockname()[1]

    @ray.remote
    def run_node(cmd: list[str], env: dict[str, str]) -> int:
        p = subprocess.Popen(cmd, env={**os.environ, **env}, preexec_fn=_die_with_parent)
        try:
            return p.wait()
        except BaseException:
            p.terminate()
            raise

    master = ray.get(rendezvous.options(scheduling_strategy=on(0)).remote()) if args.nodes > 1 else None
    env = {"PYTHONUNBUFFERED": "1", **({"DISTILLERY_EVENTS_FILE": args.events_file} if args.events_file else {})}
    refs = [run_node.options(num_cpus=1, num_gpus=g, scheduling_strategy=on(i)).remote(node_command(args, i, master), env)
            for i in range(args.nodes)]
    codes = ray.get(refs)
    print(f"[ray_launch] node exit codes {codes}", file=sys.stderr, flush=True)
    return next((c for c in codes if c), 0)


if __name__ == "__main__":
    sys.exit(main())
