"""GGUF export of a trained student (llama.cpp / node-llama-cpp can load it).

    python export_gguf.py --model-dir DIR --source-gguf SRC.gguf [--out DIR/model.gguf] [--dtype f16|f32]

The source GGUF (the file the student was loaded from, or a previous run's export) supplies every metadata key:
architecture hyper-parameters, tokenizer, chat template. Only the tensors are replaced, by the trained ones under
their GGUF names. transformers' GGUF loader un-permutes llama's q/k projections (llama.cpp stores them in its own
rotary layout), so the same permutation is applied again here. stdout carries one JSON line; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

sys.dont_write_bytecode = True  # keep the checkout free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # infra/trainer: durable_files

import numpy as np  # noqa: E402

from durable_files import atomic_file  # noqa: E402

# Keys the writer sets itself or that describe the source's quantization, not the export.
_SKIP_KEYS = {"general.file_type", "general.quantization_version", "general.alignment"}


def _log(msg: str) -> None:
    print(f"[export_gguf] {msg}", file=sys.stderr, flush=True)


def llama_permute(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of q/k rows (the inverse of transformers' reverse_permute)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _field_value(field: Any) -> Any:
    return field.contents()


def copy_metadata(reader: Any, writer: Any, overrides: dict[str, Any]) -> list[str]:
    import gguf

    copied = []
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in _SKIP_KEYS or key == "general.architecture":
            continue
        vtype = field.types[0]
        value = overrides.get(key, _field_value(field))
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = field.types[-1] if len(field.types) > 1 else None
            writer.add_key_value(key, value, vtype, sub_type=sub)
        else:
            writer.add_key_value(key, value, vtype)
        copied.append(key)
    for key, value in overrides.items():
        if key not in reader.fields and value is not None:
            if isinstance(value, int):
                writer.add_uint32(key, value)
            elif isinstance(value, str):
                writer.add_string(key, value)
            copied.append(key)
    return copied


def export_gguf(state: dict[str, Any], config: Any, source_gguf: str, out_path: str, dtype: str = "f16",
                pad_token_id: int | None = None, name: str | None = None) -> dict[str, Any]:
    """Writes out_path atomically from a (merged, plain) llama-family state dict."""
    import gguf

    t0 = time.time()
    reader = gguf.GGUFReader(source_gguf)
    arch_field = reader.fields.get("general.architecture")
    arch = _field_value(arch_field) if arch_field else None
    if arch != "llama":
        raise ValueError(f"GGUF export supports llama-architecture students (SmolLM2, Llama); {source_gguf} is {arch}")
    vocab = len(_field_value(reader.fields["tokenizer.ggml.tokens"]))
    n_vocab = int(config.vocab_size)
    if vocab != n_vocab:
        raise ValueError(f"the student's vocabulary ({n_vocab}) differs from the source GGUF's ({vocab}); a GGUF "
                         f"export would need a new tokenizer section")
    n_layer, n_head, n_kv = int(config.num_hidden_layers), int(config.num_attention_heads), int(config.num_key_value_heads)
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    out_type = gguf.GGMLQuantizationType.F16 if dtype == "f16" else gguf.GGMLQuantizationType.F32

    with atomic_file(out_path) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        overrides: dict[str, Any] = {}
        if pad_token_id is not None:
            overrides["tokenizer.ggml.padding_token_id"] = int(pad_token_id)
        if name:
            overrides["general.name"] = name
        copy_metadata(reader, writer, overrides)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

        tied = bool(getattr(config, "tie_word_embeddings", False))
        written = 0
        for hf_name, tensor in state.items():
            if tied and hf_name == "lm_head.weight":
                continue  # llama.cpp reuses token_embd for the output when output.weight is absent
            if hf_name.endswith("rotary_emb.inv_freq"):
                continue
            gguf_name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise ValueError(f"no GGUF name for tensor {hf_name}")
            w = tensor.detach().to("cpu").float().numpy()
            if hf_name.endswith("self_attn.q_proj.weight"):
                w = llama_permute(w, n_head, n_head)
            elif hf_name.endswith("self_attn.k_proj.weight"):
                w = llama_permute(w, n_head, n_kv)
            # 1-D tensors (norms) stay F32, as llama.cpp's converter writes them.
            if w.ndim >= 2 and out_type == gguf.GGMLQuantizationType.F16:
                writer.add_tensor(gguf_name, w.astype(np.float16), raw_dtype=gguf.GGMLQuantizationType.F16)
            else:
                writer.add_tensor(gguf_name, np.ascontiguousarray(w, dtype=np.float32))
            written += 1
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=False)
        writer.close()
    secs = time.time() - t0
    _log(f"wrote {out_path} ({os.path.getsize(out_path)} bytes, {written} tensors, {dtype}, {secs:.1f}s)")
    return {"gguf": out_path, "gguf_dtype": dtype, "gguf_tensors": written, "gguf_export_s": round(secs, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--source-gguf", required=True)
    ap.add_argument("--out")
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    args = ap.parse_args(argv)
    from transformers import AutoModelForCausalLM
    import torch

    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
    pad = model.generation_config.pad_token_id
    info = export_gguf(model.state_dict(), model.config, args.source_gguf,
                       args.out or os.path.join(args.model_dir, "model.gguf"), args.dtype, pad)
    print(json.dumps(info), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
