"""One training run: load the student (and write the baseline), tokenise, resume from the last complete checkpoint
of the same fingerprint, train with TRL's SFTTrainer (or the kd loss), then write the merged student and its
exports and the report."""

from __future__ import annotations

import collections
import hashlib
import json
import math
import os
import shutil
import signal
import time
import warnings
from typing import Any

from durable_files import fsync_dir, fsync_tree, write_json_atomic
from sft_checkpoints import MARKER, checkpoints, clean_incomplete, clean_stale_tmp, remove_dir
from sft_config import FINGERPRINT_KEYS
from sft_data import read_rows, tokenize_rows
from sft_devices import barrier, consolidated_model, gather_full_state, pick_precision, sharding_args
from sft_process import AlreadyTrained, DataError, StopFlag, emit, is_rank0, log
from sft_student_dir import BASELINE_INFO, file_sha256, model_card, save_student_dir
from student import StudentSource, check_chat_template, ensure_pad, resolve_init_from, resolve_source


def train(cfg: dict[str, Any], resume: bool) -> int:
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    t_start = time.time()

    import torch

    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    threads = torch.get_num_threads()
    from transformers import PrinterCallback, TrainerCallback, set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_warning()
    # peft looks for a config.json beside a GGUF-loaded base to see whether the vocabulary changed; it didn't.
    warnings.filterwarnings("ignore", message="Could not find a config file")
    hf_logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_warning()
    from trl import SFTConfig, SFTTrainer

    out = os.path.abspath(cfg["output_dir"])
    os.makedirs(out, exist_ok=True)
    model_dir = os.path.join(out, "model")
    baseline_dir = os.path.join(out, "baseline-model")
    ckpt_root = os.path.join(out, "checkpoints")
    for name in ("model", "baseline-model"):
        clean_stale_tmp(out, name)
    precision, device = pick_precision(cfg["precision"])

    # ---- the student: source, optional init_from, and the baseline (the student before training)
    st = cfg["student"]
    source = resolve_source(st["source"], cfg["_base"])
    init = resolve_init_from(st["init_from"], cfg["_base"]) if st.get("init_from") else None
    start_from = init or source
    if init is None and source.kind == "hf":
        baseline: StudentSource = source
    elif init is not None:
        baseline = init
    else:
        baseline = StudentSource("hf", baseline_dir, source.gguf)
    export_gguf_from = (init.gguf if init and init.gguf else None) or source.gguf
    baseline_gguf = (init.gguf if init else source.gguf)

    rows, n_rows, data_sha = read_rows(cfg["data"])
    if not rows:
        raise DataError(f"No training examples in {cfg['data']}")
    fp_src = {"source": source.path, "init_from": init.path if init else None}
    if source.kind == "gguf":
        fp_src["source_sha256"] = file_sha256(source.path)
    strategy = cfg["distributed"]["strategy"]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    # A sharded checkpoint is only readable by the same strategy, and its data order is the world size's.
    fp_dist = {"strategy": strategy, "world_size": world} if strategy != "ddp" else {}
    fingerprint = hashlib.sha256(json.dumps({"data_sha256": data_sha, **fp_src, **fp_dist,
                                             **{k: cfg[k] for k in FINGERPRINT_KEYS},
                                             **({"objective": {k: v for k, v in cfg["objective"].items()
                                                               if k not in ("logprobs", "teacher")}}
                                                if cfg["objective"]["type"] == "kd" else {})},
                                            sort_keys=True, default=str).encode()).hexdigest()

    from student import load_generation_config, load_model, load_tokenizer

    load_src = baseline if (baseline.kind == "hf" and os.path.isdir(baseline.path)) else start_from
    t0 = time.time()
    tok = load_tokenizer(load_src)
    gen = load_generation_config(load_src)
    tmpl = check_chat_template(tok, gen.eos_token_id)
    pad = ensure_pad(tok)
    set_seed(int(cfg["seed"]))
    model = load_model(load_src, torch.float32)
    if pad["added"]:
        model.resize_token_embeddings(len(tok))
    model.config.pad_token_id = tok.pad_token_id
    model.config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    log(f"student {load_src.path} loaded in {time.time() - t0:.1f}s: EOS {tmpl['eos_token']!r}, pad "
        f"{pad['pad_token']!r} (id {pad['pad_token_id']}{', added' if pad['added'] else ''}), "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params")

    # The baseline is served at the student's precision: a GGUF written from the same de-quantized weights in the
    # same dtype as the student's export, not the quantized source file (else the comparison mixes in quantization).
    gguf_dtype = cfg["export"].get("gguf_dtype", "f16")
    baseline_export = os.path.join(baseline_dir, "model.gguf")
    if baseline.path == baseline_dir and not os.path.isdir(baseline_dir) and is_rank0():
        t0 = time.time()
        exported = bool(cfg["export"].get("gguf") and source.gguf)
        info = {"kind": "baseline", "gguf": baseline_export if exported else baseline_gguf,
                "gguf_dtype": gguf_dtype if exported else None, "source": source.describe()}

        def build_baseline(tmp: str) -> None:
            if exported:
                from export_gguf import export_gguf

                export_gguf(model.state_dict(), model.config, source.gguf, os.path.join(tmp, "model.gguf"), gguf_dtype,
                            tok.pad_token_id)

        save_student_dir(model, tok, baseline_dir,
                         f"# Baseline student\n\nThe untrained student `{source.path}` as loaded for training "
                         f"(de-quantized to float32), with pad `{pad['pad_token']}`. "
                         + (f"`model.gguf` is these weights in {gguf_dtype}, the dtype of the student's GGUF export.\n"
                            if exported else "Its GGUF is the source file.\n"),
                         {BASELINE_INFO: json.dumps(info, indent=1)}, build=build_baseline)
        log(f"baseline written to {baseline_dir} in {time.time() - t0:.1f}s")
    if baseline.path == baseline_dir and os.path.isfile(baseline_export):
        baseline_gguf = baseline_export

    kd = cfg["objective"] if cfg["objective"]["type"] == "kd" else None
    kept: list[tuple[int, int]] | None = [] if kd else None
    inputs, labels, stats = tokenize_rows(tok, rows, int(st["max_seq_len"]), kept)
    kd_rows: list[Any] = []
    kd_info: dict[str, Any] | None = None
    if kd:
        # before any step: a teacher of another tokenizer family must stop the run here
        from kd_trl import build_targets

        try:
            kd_rows, kd_info = build_targets(tok, kd["logprobs"], [r for r, _ in kept or []], inputs,
                                             [p for _, p in kept or []], len(rows), int(kd["top_k"]), kd["teacher"],
                                             os.path.basename(start_from.path.rstrip("/")))
        except OSError as e:
            raise DataError(f"invalid training data: cannot read the logprobs sidecar {kd['logprobs']}: {e}") from e
        log(f"kd: T={kd['temperature']} alpha={kd['alpha']} top_k={kd['top_k']} tail={kd['tail']}; {kd_info}")
    if not inputs:
        raise DataError(f"No training examples in {cfg['data']} ({n_rows} rows, {stats['skipped_too_long']} with "
                        f"prompts longer than max_seq_len={st['max_seq_len']})")
    n = len(inputs)
    per_step = cfg["batch_size"] * cfg["gradient_accumulation"] * world
    steps_per_epoch = math.ceil(n / per_step)
    total_steps = max(1, math.ceil(cfg["epochs"] * steps_per_epoch))
    if cfg["max_steps"] is not None:
        total_steps = min(total_steps, int(cfg["max_steps"]))

    # ---- checkpoints: resume from the last complete one written for this run
    if is_rank0():
        clean_incomplete(ckpt_root)
        if not resume:
            for _, p, _ in checkpoints(ckpt_root):
                remove_dir(ckpt_root, p)
    existing = [(s, p, m) for s, p, m in checkpoints(ckpt_root) if m is not None]
    resume_path, start_step, stale_dir, prior = None, 0, None, {}
    if existing:
        s, p, m = existing[-1]
        if m.get("fingerprint") != fingerprint:
            stale_dir = os.path.join(out, f"checkpoints-stale-{str(m.get('fingerprint'))[:12]}")
            if is_rank0():
                shutil.rmtree(stale_dir, ignore_errors=True)
                os.rename(ckpt_root, stale_dir)
                fsync_dir(out)
            log(f"WARNING: checkpoint {p} was written for different data or settings; moved the checkpoints to "
                f"{stale_dir} and starting from step 0")
        else:
            resume_path, start_step, prior = p, s, m
            log(f"resuming from {p} (step {s}/{total_steps})")

    peft_config = None
    if cfg["lora"]:
        from peft import LoraConfig

        lo = cfg["lora"]
        peft_config = LoraConfig(r=int(lo["r"]), lora_alpha=float(lo["alpha"]), lora_dropout=float(lo["dropout"]),
                                 target_modules=list(lo["target_modules"]), task_type="CAUSAL_LM", bias="none")

    ds = datasets.Dataset.from_dict({"input_ids": inputs, "labels": labels,
                                     **({"kd_row": list(range(len(inputs)))} if kd else {})})
    sharding = sharding_args(cfg, model, device)
    args = SFTConfig(
        output_dir=ckpt_root,
        per_device_train_batch_size=cfg["batch_size"],
        gradient_accumulation_steps=cfg["gradient_accumulation"],
        learning_rate=float(cfg["lr"]),
        lr_scheduler_type=cfg["scheduler"] if cfg["scheduler"] != "constant" else "constant_with_warmup",
        # transformers reads a float in [0, 1) as a ratio of the total steps.
        warmup_steps=min(float(cfg["warmup_ratio"]), 0.999),
        weight_decay=float(cfg["weight_decay"]),
        max_grad_norm=float(cfg["grad_clip"]) if cfg["grad_clip"] else 0.0,
        max_steps=total_steps,
        num_train_epochs=float(cfg["epochs"]),
        logging_steps=1,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=int(cfg["checkpoint_every"]),
        save_total_limit=None,  # rotation happens after the completion marker, in CheckpointEvents
        seed=int(cfg["seed"]),
        data_seed=int(cfg["seed"]),
        bf16=precision == "bf16",
        fp16=False,
        activation_checkpointing=bool(cfg["gradient_checkpointing"] or cfg["distributed"]["activation_checkpointing"])
        and strategy != "fsdp",  # FSDP checkpoints activations itself (fsdp_config), without an extra all-gather
        use_cpu=device == "cpu",
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        max_length=int(st["max_seq_len"]),
        packing=bool(cfg["packing"]),
        dataloader_num_workers=0,
        dataset_num_proc=None,
        save_only_model=False,
        log_level="warning",
        **sharding,
        # kd: the row index must reach the collator, which turns it into the row's soft targets
        remove_unused_columns=not kd,
    )

    class Events(TrainerCallback):
        """Turns the Trainer's hooks into the JSON protocol, marks checkpoints complete, honours SIGTERM."""

        def __init__(self) -> None:
            self.window: collections.deque[tuple[float, int]] = collections.deque(maxlen=21)
            self.train_time = float(prior.get("train_time_s", 0.0))
            self.t_step = time.time()
            self.nonfinite = False

        def on_train_begin(self, a, state, control, **kw):
            stop.training = True
            self.window.append((time.time(), int(state.num_input_tokens_seen)))
            emit({"event": "start", "total_steps": state.max_steps, "resumed_from_step": state.global_step,
                  "params": params, "trainable_params": trainable, "examples": n, "rows": n_rows, **stats,
                  "steps_per_epoch": steps_per_epoch, "epochs": cfg["epochs"], "batch_size": cfg["batch_size"],
                  "gradient_accumulation": cfg["gradient_accumulation"], "max_len": st["max_seq_len"],
                  "threads": threads, "device": device, "precision": precision, "world_size": world,
                  "lora": bool(cfg["lora"]), "stale_checkpoints": stale_dir})
            if stop.signum is not None:
                control.should_training_stop = True
            if state.global_step >= state.max_steps:
                # Resumed from the final checkpoint (a crash during the exports): the Trainer would train one step
                # past the end; the weights it has just loaded are the trained student.
                raise AlreadyTrained()

        def on_step_begin(self, a, state, control, **kw):
            self.t_step = time.time()

        def on_step_end(self, a, state, control, **kw):
            now = time.time()
            self.train_time += now - self.t_step
            self.window.append((now, int(state.num_input_tokens_seen)))
            if state.global_step >= state.max_steps:
                control.should_save = True  # a crash during the export then costs only the export
            if stop.signum is not None:
                control.should_save = True
                control.should_training_stop = True

        def on_log(self, a, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" not in logs:
                return
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                self.nonfinite = True
                control.should_training_stop = True
            step = state.global_step
            if step % cfg["log_every"] and step != state.max_steps and step != start_step + 1:
                return
            (t_a, k_a), (t_b, k_b) = self.window[0], self.window[-1]
            tps = (k_b - k_a) / (t_b - t_a) if t_b > t_a else 0.0
            emit({"event": "step", "step": step, "total_steps": state.max_steps,
                  "epoch": round(step / steps_per_epoch, 4), "loss": round(loss, 5),
                  "lr": float(logs.get("learning_rate", 0.0)), "grad_norm": logs.get("grad_norm"),
                  "tokens_per_s": round(tps, 1), "tokens": int(state.num_input_tokens_seen)})

        def on_save(self, a, state, control, **kw):
            # Every rank writes its own shard and RNG state: the checkpoint is complete only when all have.
            barrier()
            if not state.is_world_process_zero:
                return
            path = os.path.join(ckpt_root, f"checkpoint-{state.global_step}")
            t = time.time()
            fsync_tree(path)
            write_json_atomic(os.path.join(path, MARKER), {
                "step": state.global_step, "total_steps": state.max_steps, "fingerprint": fingerprint,
                "train_time_s": self.train_time, "time": time.time()})
            done = [(s, p) for s, p, m in checkpoints(ckpt_root) if m is not None]
            for s, p in done[:-int(cfg["keep_checkpoints"])]:
                remove_dir(ckpt_root, p)
            log(f"checkpoint {path} complete ({time.time() - t:.2f}s to sync)")
            emit({"event": "checkpoint", "step": state.global_step, "path": path})

    model.config.use_cache = False
    events = Events()
    trainer_cls = SFTTrainer
    if kd:
        from kd_loss import kd_objective
        from kd_trl import collate_targets

        class KdSFTTrainer(SFTTrainer):
            """α·T²·KL on the teacher's top k (+ tail) + (1−α)·CE, on the assistant tokens (labels != -100)."""

            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                t_ids, t_lp, t_mask = inputs.pop("kd_ids"), inputs.pop("kd_lp"), inputs.pop("kd_mask")
                labels = inputs.pop("labels")
                outputs = model(**inputs, use_cache=False)
                logits = outputs.logits[:, :-1]
                loss, _ = kd_objective(logits, labels[:, 1:], t_ids[:, :-1], t_lp[:, :-1], t_mask[:, :-1],
                                       float(kd["temperature"]), float(kd["alpha"]), bool(kd["tail"]))
                return (loss, outputs) if return_outputs else loss

        trainer_cls = KdSFTTrainer
    trainer = trainer_cls(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft_config,
                          callbacks=[events])
    if kd:
        base_collator = trainer.data_collator

        def kd_collator(examples: list[dict[str, Any]]) -> dict[str, Any]:
            rows = [kd_rows[int(e["kd_row"])] for e in examples]
            batch = base_collator([{k: v for k, v in e.items() if k != "kd_row"} for e in examples])
            batch["kd_ids"], batch["kd_lp"], batch["kd_mask"] = collate_targets(rows, batch["input_ids"].shape[1],
                                                                                int(kd["top_k"]))
            return batch

        trainer.data_collator = kd_collator
    # It prints each log dict on stdout, which is reserved for the JSON events.
    trainer.remove_callback(PrinterCallback)
    if cfg["packing"]:
        # Packing turns the rows into fewer, longer sequences: an epoch is counted in those.
        steps_per_epoch = math.ceil(len(trainer.train_dataset) / per_step)
        total_steps = max(1, math.ceil(cfg["epochs"] * steps_per_epoch))
        if cfg["max_steps"] is not None:
            total_steps = min(total_steps, int(cfg["max_steps"]))
        trainer.args.max_steps = total_steps
        log(f"packing: {n} rows in {len(trainer.train_dataset)} sequences of up to {st['max_seq_len']} tokens")
    params = sum(p.numel() for p in trainer.model.parameters())
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    if stop.signum is not None:
        return stop.exit_code
    try:
        trainer.train(resume_from_checkpoint=resume_path)
    except AlreadyTrained:
        log(f"checkpoint {resume_path} is the last step: nothing left to train")
    stop.training = False
    if events.nonfinite:
        log("the loss is not finite; stopping")
        return 3
    if stop.signum is not None:
        log(f"stopped at step {trainer.state.global_step}/{total_steps}")
        return stop.exit_code
    # A sharded model is gathered into one full state dict on rank 0 (a collective: every rank takes part).
    full_state = gather_full_state(trainer, strategy)
    if not is_rank0():
        return 0

    # ---- the trained student: merged, saved with its tokenizer, model card, ONNX and GGUF exports
    step = int(trainer.state.global_step)
    history = [h for h in trainer.state.log_history if "loss" in h]
    loss_curve = [{"step": int(h["step"]), "loss": round(float(h["loss"]), 5), "lr": float(h.get("learning_rate", 0.0))}
                  for h in history]
    final_loss = loss_curve[-1]["loss"] if loss_curve else None
    last = [p["loss"] for p in loss_curve[-10:]]
    final_avg10 = round(sum(last) / len(last), 5) if last else None
    trained = trainer.model
    if full_state is not None:
        trained = consolidated_model(model.config, full_state)
        del full_state
    if cfg["lora"]:
        trained = trained.merge_and_unload()
    trained = trained.to("cpu", dtype=torch.float32).eval()
    trained.config.use_cache = True
    tokens_total = int(trainer.state.num_input_tokens_seen)
    info = {"source": start_from.describe(), "examples": n, "stats": stats, "steps": step, "final_loss": final_loss,
            "data_sha256": data_sha, "precision": precision, "device": device, "eos_token": tok.eos_token,
            "pad_token": tok.pad_token, "name": cfg.get("model_card", {}).get("name")}
    readme = model_card(cfg, info)
    exports: dict[str, Any] = {"onnx": None, "gguf": None}

    def build(tmp: str) -> None:
        if cfg["export"].get("onnx"):
            from export_onnx_hf import export_onnx, onnx_max_abs_diff

            r = export_onnx(trained, os.path.join(tmp, "model.onnx"))
            diff = onnx_max_abs_diff(trained, os.path.join(tmp, "model.onnx"))
            tol = float(cfg["export"].get("onnx_tol", 2e-3))
            log(f"onnxruntime vs torch max_abs_diff={diff} (tolerance {tol})")
            if diff is not None and diff > tol:
                raise RuntimeError(f"ONNX export differs from torch by {diff} > {tol}")
            exports.update({**r, "onnx": os.path.join(model_dir, "model.onnx"), "onnx_max_abs_diff": diff})
        if cfg["export"].get("gguf"):
            if not export_gguf_from:
                log("GGUF export skipped: no source GGUF to take the tokenizer metadata from")
                exports["gguf_skipped"] = "no source GGUF"
            else:
                from export_gguf import export_gguf

                r = export_gguf(trained.state_dict(), trained.config, export_gguf_from,
                                os.path.join(tmp, "model.gguf"), gguf_dtype,
                                tok.pad_token_id, info["name"])
                exports.update({**r, "gguf": os.path.join(model_dir, "model.gguf")})

    t0 = time.time()
    save_student_dir(trained, tok, model_dir, readme, build=build)
    log(f"student written to {model_dir} in {time.time() - t0:.1f}s")
    train_time = events.train_time
    report = {
        "backend": "trl", "steps": step, "total_steps": total_steps, "resumed_from_step": start_step,
        "epochs": cfg["epochs"], "steps_per_epoch": steps_per_epoch, "examples": n, "rows": n_rows, **stats,
        "params": params, "trainable_params": trainable, "tokens": tokens_total,
        "train_time_s": round(train_time, 2),
        "tokens_per_s": round(tokens_total / train_time, 1) if train_time > 0 else None,
        "wall_time_s_this_run": round(time.time() - t_start, 2), "threads": threads, "device": device,
        "precision": precision, "final_loss": final_loss, "final_loss_avg10": final_avg10,
        "objective": cfg["objective"]["type"],
        **({"kd": {**{k: v for k, v in cfg["objective"].items() if k != "type"}, **(kd_info or {})}} if kd else {}),
        "model_dir": model_dir, "baseline_model_dir": baseline.path, "baseline_gguf": baseline_gguf,
        "model_card": os.path.join(model_dir, "README.md"), **exports,
        "model": {"source": start_from.describe(), "params": params, "lora": cfg["lora"]},
        "student": {"eos_token": tok.eos_token, "eos_token_id": tok.eos_token_id, "pad_token": tok.pad_token,
                    "pad_token_id": tok.pad_token_id},
        "config": {k: v for k, v in cfg.items() if k not in ("_base", "model_card")},
        "settings": {"fingerprint": fingerprint, "data": cfg["data"], "data_sha256": data_sha},
        "loss_curve": loss_curve,
    }
    report_path = os.path.join(out, "train_report.json")
    write_json_atomic(report_path, report)
    emit({"event": "done", "step": step, "total_steps": total_steps, "final_loss": final_loss,
          "final_loss_avg10": final_avg10, "model_dir": model_dir, "baseline_model_dir": baseline.path,
          "baseline_gguf": baseline_gguf, "model_card": report["model_card"], "onnx": exports.get("onnx"),
          "onnx_max_abs_diff": exports.get("onnx_max_abs_diff"), "gguf": exports.get("gguf"),
          "tokens": tokens_total, "tokens_per_s": report["tokens_per_s"], "train_time_s": report["train_time_s"],
          "report": report_path})
    log(f"done: {step} steps, final loss {final_loss}, {report['tokens_per_s']} tokens/s, "
        f"{time.time() - t_start:.1f}s wall")
    return 0
