"""Will this student train here? A per-device memory estimate for a trainer config, a strategy and a slot.

    python memory_estimate.py --config config.json [--nodes N --gpus-per-node G --gpu-memory-gib M]
                              [--host-memory-gib R]

Prints one JSON object (the estimate and its parts, in GiB) on stdout. Exit 0: it fits; 2: it does not (the reason,
and what would make it fit, on stderr as `student does not fit: ...`) or the config is bad. Without --gpus-per-node
the slot is this machine: the GPUs in CUDA_VISIBLE_DEVICES and their memory, or on a CPU-only slot the host's
memory shared by all the trainer's processes.

The arithmetic (bytes per parameter P, trainable parameters T, world size N = nodes x GPUs):

- model state: the trainer keeps fp32 weights and runs bf16 autocast, so a trainable parameter costs 4 (weight) + 4
  (gradient) + 8 (AdamW's two moments) = 16 bytes and a frozen one (LoRA's base) 4. ddp replicates that on every
  device; fsdp (FSDP2, full shard) and zero3 (DeepSpeed ZeRO-3) divide it by N and add the working set of one
  gathered unit (a decoder layer, or the embeddings and LM head) in bf16 with its fp32 gradient, twice for prefetch;
  cpuOffload moves the sharded state to host memory, which must then hold the share of every GPU on the node.
- activations per micro-batch of b sequences of s tokens: (8h + 4i) values per token and layer (hidden size h, MLP
  width i: inputs of the norms, attention and SwiGLU MLP kept for the backward pass; attention scores are not stored
  with SDPA), in bf16 on a GPU and fp32 on a CPU; with activation checkpointing only each layer's input (h values)
  plus one layer recomputed at a time; plus the fp32 logits and their gradient, 8 x b x s x vocab bytes.
- overhead: 2 GiB per GPU (CUDA context, NCCL buffers), then 10% on top for allocator fragmentation.

It is an estimate: it errs on the high side on purpose, and a config that passes can still run out of memory on
very long sequences or a fragmented allocator (use activationCheckpointing, a smaller batchSize or maxSeqLen).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_k, "1")

GIB = 1024 ** 3
GPU_OVERHEAD = 2 * GIB
FRAGMENTATION = 1.10
STRATEGIES = ("ddp", "fsdp", "zero3")


class DoesNotFit(Exception):
    pass


@dataclass
class Shape:
    params: int
    trainable: int
    layer_params: int
    root_params: int  # embeddings, LM head, final norm: FSDP's outermost unit
    hidden: int
    intermediate: int
    layers: int
    vocab: int


@dataclass
class Slot:
    nodes: int
    gpus_per_node: int  # 0: a CPU-only slot
    device_bytes: int  # per GPU; on a CPU slot the host memory all local processes share
    host_bytes: int  # per node
    processes_per_node: int


def model_shape(source_dir_or_gguf: str, lora: dict[str, Any] | None) -> Shape:
    """Counts the parameters exactly by building the model on the meta device: no weights are read."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    p = source_dir_or_gguf
    if p.endswith(".gguf"):
        cfg = AutoConfig.from_pretrained(os.path.dirname(p), gguf_file=os.path.basename(p))
    else:
        cfg = AutoConfig.from_pretrained(p)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    params = sum(t.numel() for t in model.parameters())
    layers = getattr(cfg, "num_hidden_layers", None) or 1
    layer_list = getattr(getattr(model, "model", model), "layers", None)
    layer_params = sum(t.numel() for t in layer_list[0].parameters()) if layer_list is not None else params // layers
    trainable = params
    if lora:
        trainable = lora_params(model, lora)
    hidden = int(getattr(cfg, "hidden_size", 0) or 0)
    return Shape(params=params, trainable=trainable, layer_params=layer_params,
                 root_params=max(0, params - layers * layer_params), hidden=hidden,
                 intermediate=int(getattr(cfg, "intermediate_size", 0) or 4 * hidden), layers=layers,
                 vocab=int(getattr(cfg, "vocab_size", 0) or 0))


def lora_params(model: Any, lora: dict[str, Any]) -> int:
    import torch

    targets = set(lora.get("target_modules") or [])
    r = int(lora.get("r", 16))
    n = 0
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            n += r * (mod.in_features + mod.out_features)
    return n


def estimate(shape: Shape, slot: Slot, strategy: str, batch: int, seq: int, cpu_offload: bool,
             activation_checkpointing: bool, bf16: bool) -> dict[str, Any]:
    """Bytes per device for each part; `fits` compares the total with the slot."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
    on_gpu = slot.gpus_per_node > 0
    world = slot.nodes * (slot.gpus_per_node if on_gpu else slot.processes_per_node)
    state = 16 * shape.trainable + 4 * (shape.params - shape.trainable)
    sharded = strategy in ("fsdp", "zero3")
    per_device_state = state / world if sharded else state
    working = 2 * 6 * max(shape.layer_params, shape.root_params) if sharded else 0
    act_bytes = 2 if (bf16 and on_gpu) else 4
    per_token_layer = (8 * shape.hidden + 4 * shape.intermediate) * act_bytes
    if activation_checkpointing:
        acts = batch * seq * (shape.layers * shape.hidden * act_bytes + per_token_layer)
    else:
        acts = batch * seq * shape.layers * per_token_layer
    logits = 8 * batch * seq * shape.vocab
    offloaded = per_device_state if (cpu_offload and sharded) else 0
    device = (per_device_state - offloaded + working + acts + logits + (GPU_OVERHEAD if on_gpu else 0)) * FRAGMENTATION
    local = slot.gpus_per_node if on_gpu else slot.processes_per_node
    # On a CPU slot every local process lives in the host's memory; on a GPU node the host holds what is offloaded.
    host_needed = device * local if not on_gpu else offloaded * local * FRAGMENTATION
    device_limit = slot.device_bytes if on_gpu else slot.host_bytes
    fits_device = (device if on_gpu else host_needed) <= device_limit
    fits_host = not on_gpu or host_needed <= slot.host_bytes
    return {
        "strategy": strategy, "world_size": world, "on_gpu": on_gpu,
        "params": shape.params, "trainable_params": shape.trainable,
        "state_gib": round(state / GIB, 2),
        "per_device": {"state_gib": round((per_device_state - offloaded) / GIB, 2),
                       "gathered_unit_gib": round(working / GIB, 2), "activations_gib": round(acts / GIB, 2),
                       "logits_gib": round(logits / GIB, 2), "total_gib": round(device / GIB, 2)},
        "host_needed_gib": round(host_needed / GIB, 2),
        "device_gib": round(slot.device_bytes / GIB, 2), "host_gib": round(slot.host_bytes / GIB, 2),
        "fits": fits_device and fits_host,
    }


def min_gpus_for(shape: Shape, slot: Slot, strategy: str, **kw: Any) -> int | None:
    """The fewest GPUs of this size that fit with full sharding (None: not even 1024)."""
    if slot.gpus_per_node == 0:
        return None
    for n in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        nodes = max(1, n // slot.gpus_per_node) if n >= slot.gpus_per_node else 1
        per = min(n, slot.gpus_per_node)
        trial = Slot(nodes, per, slot.device_bytes, slot.host_bytes, per)
        if estimate(shape, trial, strategy, **kw)["fits"]:
            return n
    return None


def explain(shape: Shape, slot: Slot, strategy: str, est: dict[str, Any], **kw: Any) -> str:
    pd = est["per_device"]
    what = f"{shape.params / 1e9:.2f}B-parameter student ({'LoRA' if shape.trainable < shape.params else 'full fine-tune'})"
    if est["on_gpu"]:
        head = (f"{what} with {strategy} on {est['world_size']} GPU(s) needs about {pd['total_gib']} GiB per GPU "
                f"(model state {pd['state_gib']}, gathered layer {pd['gathered_unit_gib']}, activations "
                f"{pd['activations_gib']}, logits {pd['logits_gib']}, with overhead) but each GPU has "
                f"{est['device_gib']} GiB")
        if est["host_needed_gib"] > est["host_gib"]:
            head = (f"{what} with {strategy} and cpuOffload needs about {est['host_needed_gib']} GiB of host memory "
                    f"per node but a node has {est['host_gib']} GiB")
    else:
        head = (f"{what} with {strategy} in {slot.processes_per_node} CPU process(es) needs about "
                f"{est['host_needed_gib']} GiB (model state {pd['state_gib']}, activations {pd['activations_gib']}, "
                f"logits {pd['logits_gib']} GiB per process) but this host has {est['host_gib']} GiB available")
    hints = []
    if est["on_gpu"]:
        need = min_gpus_for(shape, slot, "fsdp", **kw)
        if need:
            hints.append(f"fsdp or zero3 across at least {need} GPUs of this size")
        elif strategy != "ddp" and not kw.get("cpu_offload"):
            hints.append("cpuOffload")
    limit = est["device_gib"] if est["on_gpu"] else est["host_gib"] / max(1, slot.processes_per_node)
    # Activations only matter when the weights, gradients and optimizer states fit on their own.
    if pd["state_gib"] + pd["gathered_unit_gib"] < limit:
        if not kw.get("activation_checkpointing"):
            hints.append("activationCheckpointing")
        hints.append("a smaller batchSize or student.maxSeqLen")
    elif not est["on_gpu"]:
        hints.append("GPUs (fineTune.cluster, or a GPU worker slot)")
    if shape.trainable == shape.params:
        hints.append("LoRA")
    return head + "; it would fit with " + (", or ".join(hints) if hints else "a smaller student")


def host_available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def local_slot(processes_per_node: int | None) -> Slot:
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    host = host_available_bytes()
    if n == 0:
        return Slot(1, 0, host, host, processes_per_node or 1)
    mem = min(torch.cuda.get_device_properties(i).total_memory for i in range(n))
    return Slot(1, n, mem, host, n)


def check_config(cfg: dict[str, Any], source_path: str, slot: Slot) -> dict[str, Any]:
    """The estimate for a loaded trainer config (train_sft.load_config); raises DoesNotFit with the explanation."""
    dist = cfg.get("distributed") or {}
    strategy = dist.get("strategy", "ddp")
    shape = model_shape(source_path, cfg.get("lora"))
    kw = {"batch": int(cfg["batch_size"]), "seq": int(cfg["student"]["max_seq_len"]),
          "cpu_offload": bool(dist.get("cpu_offload")),
          "activation_checkpointing": bool(dist.get("activation_checkpointing") or cfg.get("gradient_checkpointing")),
          "bf16": cfg.get("precision", "auto") in ("auto", "bf16")}
    est = estimate(shape, slot, strategy, **kw)
    est["slot"] = asdict(slot)
    if not est["fits"]:
        raise DoesNotFit(explain(shape, slot, strategy, est, **kw))
    return est


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="the trainer's config JSON (train_sft.py --config)")
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--gpus-per-node", type=int, help="the slot is a cluster's: GPUs per node")
    ap.add_argument("--gpu-memory-gib", type=float, help="memory of one of those GPUs")
    ap.add_argument("--host-memory-gib", type=float, help="host memory per node (default: this machine's)")
    args = ap.parse_args(argv)
    from student import StudentError, resolve_init_from, resolve_source
    from train_sft import ConfigError, load_config

    try:
        cfg = load_config(args.config)
        st = cfg["student"]
        src = resolve_init_from(st["init_from"], cfg["_base"]) if st.get("init_from") else \
            resolve_source(st["source"], cfg["_base"])
    except (ConfigError, StudentError) as e:
        print(f"invalid config: {e}", file=sys.stderr, flush=True)
        return 2
    ppn = (cfg.get("distributed") or {}).get("processes_per_node")
    if args.gpus_per_node:
        if not args.gpu_memory_gib:
            print("invalid config: --gpu-memory-gib is required with --gpus-per-node", file=sys.stderr)
            return 2
        host = int(args.host_memory_gib * GIB) if args.host_memory_gib else host_available_bytes()
        slot = Slot(args.nodes, args.gpus_per_node, int(args.gpu_memory_gib * GIB), host, args.gpus_per_node)
    else:
        slot = local_slot(ppn)
        if args.host_memory_gib:
            slot.host_bytes = int(args.host_memory_gib * GIB)
            if slot.gpus_per_node == 0:
                slot.device_bytes = slot.host_bytes
    try:
        est = check_config(cfg, src.path, slot)
    except DoesNotFit as e:
        print(f"student does not fit: {e}", file=sys.stderr, flush=True)
        return 2
    print(json.dumps(est), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
