"""Precision, device and the distributed strategies (ddp, FSDP2, ZeRO-3): the Trainer arguments for each, and the
gathering of a sharded model into one full model for the exports."""

from __future__ import annotations

from typing import Any

from sft_process import ConfigError, is_rank0


def pick_precision(want: str) -> tuple[str, str]:
    import torch

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if want == "auto":
        return ("bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"), device
    return want, device


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def layer_classes(model: Any) -> list[str]:
    """The decoder layer class: each layer is one FSDP unit (gathered for its forward, freed after)."""
    names = getattr(model, "_no_split_modules", None) or []
    present = {type(m).__name__ for m in model.modules()}
    found = [n for n in names if n in present]
    if not found:
        raise ConfigError(f"cannot shard {type(model).__name__}: it names no decoder layer class (_no_split_modules)")
    return found


def sharding_args(cfg: dict[str, Any], model: Any, device: str) -> dict[str, Any]:
    """TrainingArguments for the strategy. fsdp: PyTorch FSDP2 (fully_shard) through accelerate, full shard, one
    unit per decoder layer, sharded (DCP) checkpoints. zero3: DeepSpeed ZeRO stage 3 through accelerate; it needs
    the deepspeed package, which the pinned requirements do not install."""
    d = cfg["distributed"]
    if d["strategy"] == "fsdp":
        if device == "cpu":
            allow_fsdp_on_cpu()
        return {"fsdp": True, "fsdp_config": {
            "version": 2, "reshard_after_forward": True, "transformer_layer_cls_to_wrap": layer_classes(model),
            "state_dict_type": "SHARDED_STATE_DICT", "cpu_offload": bool(d["cpu_offload"]),
            "activation_checkpointing": bool(d["activation_checkpointing"] or cfg["gradient_checkpointing"]),
            "cpu_ram_efficient_loading": False}}
    if d["strategy"] == "zero3":
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("distributed.strategy zero3 needs DeepSpeed, which is not installed in this trainer's "
                              "environment (pip install deepspeed on the GPU workers), or use fsdp")
        offload = {"device": "cpu", "pin_memory": True} if d["cpu_offload"] else {"device": "none"}
        return {"deepspeed": {
            "zero_optimization": {"stage": 3, "offload_param": offload, "offload_optimizer": offload,
                                  "overlap_comm": True, "contiguous_gradients": True,
                                  "stage3_gather_16bit_weights_on_model_save": True},
            "bf16": {"enabled": "auto"}, "train_micro_batch_size_per_gpu": "auto",
            "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "train_batch_size": "auto"}}
    return {}


def allow_fsdp_on_cpu() -> None:
    """accelerate turns on FSDP only for accelerator devices and quietly falls back to DDP on CPU processes. FSDP2
    itself runs on CPU with gloo, and that is how the sharded path is tested on machines without a GPU: when the
    Trainer asks for FSDP on a multi-process CPU run, make its state FSDP as it would be on GPUs."""
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType

    original = AcceleratorState.__init__
    if getattr(original, "_distillery_cpu_fsdp", False):
        return

    def init(self: Any, *a: Any, **kw: Any) -> None:
        original(self, *a, **kw)
        plugin = kw.get("fsdp_plugin")
        if plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = plugin

    init._distillery_cpu_fsdp = True  # type: ignore[attr-defined]
    AcceleratorState.__init__ = init  # type: ignore[method-assign]


def gather_full_state(trainer: Any, strategy: str) -> dict[str, Any] | None:
    """The full weights of a sharded model, on rank 0 only (None elsewhere, and for ddp). Every rank must call it."""
    if strategy == "ddp":
        return None
    if strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(trainer.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = trainer.accelerator.get_state_dict(trainer.model)
    return state if is_rank0() else None


def consolidated_model(config: Any, state: dict[str, Any]) -> Any:
    """A plain (unsharded) model on CPU holding the gathered weights, for save_pretrained and the exports."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict({k: v.detach().to("cpu", torch.float32) for k, v in state.items()},
                                                strict=False)
    # A tied LM head is not in the gathered state under its own name.
    missing = [k for k in missing if not (k == "lm_head.weight" and getattr(config, "tie_word_embeddings", False))]
    if missing or unexpected:
        raise RuntimeError(f"the gathered state does not match the model: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    return model
