"""Soft targets for the trl backend: the teacher's top-k logprobs (the run's sidecar) on a Hugging Face student.

The teacher's tokens come as bytes; `vocab_id` maps them onto the student's vocabulary (byte-level BPE as GPT-2 /
SmolLM2 / Qwen / Llama 3 spell it, SentencePiece's "▁", special tokens by name). Alignment is by byte spans: a
teacher token gets its targets on the student position that predicts the student token with the same span in the
assistant text; where the two tokenizations differ (or the filters rewrote the text) a position trains on CE only.
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kd_targets  # noqa: E402


def _byte_maps() -> tuple[dict[int, str], dict[str, int]]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    enc = {b: chr(c) for b, c in zip(bs, cs)}
    return enc, {v: k for k, v in enc.items()}


BYTE_ENC, BYTE_DEC = _byte_maps()


class StudentVocab:
    def __init__(self, tok: Any) -> None:
        self.tok = tok
        self.vocab: dict[str, int] = tok.get_vocab()
        self.name = getattr(tok, "name_or_path", None) or type(tok).__name__
        self._bytes: dict[int, bytes] = {}

    def vocab_id(self, t: kd_targets.Token) -> int | None:
        if t.special:
            return self.vocab.get(t.data.decode("utf-8", "replace"))
        for key in ("".join(BYTE_ENC[b] for b in t.data), t.data.decode("utf-8", "replace").replace(" ", "▁")):
            if key in self.vocab:
                return self.vocab[key]
        if len(t.data) == 1:
            return self.vocab.get(f"<0x{t.data[0]:02X}>")
        return None

    def token_bytes(self, i: int) -> bytes:
        b = self._bytes.get(i)
        if b is None:
            piece = self.tok.convert_ids_to_tokens(int(i))
            if piece and all(c in BYTE_DEC for c in piece):
                b = bytes(BYTE_DEC[c] for c in piece)
            else:
                b = self.tok.decode([int(i)]).encode("utf-8")
            self._bytes[i] = b
        return b


def row_targets(vocab: StudentVocab, record: kd_targets.Record, ids: list[int], plen: int, top_k: int
                ) -> tuple[dict[int, tuple[list[int], list[float]]] | None, int, int]:
    """{logits position: (student ids, teacher logprobs)} for one row, with mapped/unmapped token counts; None when
    the teacher's text is not in the row's completion."""
    comp = [vocab.token_bytes(i) for i in ids[plen:]]
    comp_bytes = b"".join(comp)
    text = b"".join(t.data for t, _, _ in record.tokens if not t.special)
    at = comp_bytes.find(text) if text else -1
    starts: dict[tuple[int, int], int] = {}
    o = 0
    for s, b in enumerate(comp):
        starts[(o, o + len(b))] = s
        o += len(b)
    mapped = unmapped = 0
    out: dict[int, tuple[list[int], list[float]]] = {}
    pos = at
    for chosen, clp, alts in record.tokens:
        row_ids: list[int] = []
        row_lp: list[float] = []
        for a, alp in (alts or [(chosen, clp)])[:top_k]:
            aid = vocab.vocab_id(a)
            if aid is None:
                unmapped += 1
            else:
                mapped += 1
                if aid not in row_ids:
                    row_ids.append(aid)
                    row_lp.append(alp)
        if vocab.vocab_id(chosen) is None:
            unmapped += 1
        else:
            mapped += 1
        if at >= 0 and not chosen.special:
            s = starts.get((pos, pos + len(chosen.data)))
            if s is not None and row_ids and plen + s - 1 >= 0:
                out[plen + s - 1] = (row_ids, row_lp)
            pos += len(chosen.data)
    return (out if at >= 0 else None), mapped, unmapped


def build_targets(tok: Any, sidecar: str, kept: list[int], inputs: list[list[int]], prompt_lens: list[int],
                  n_rows: int, top_k: int, teacher: str, student: str | None = None) -> tuple[list[dict[int, tuple[list[int], list[float]]] | None], dict[str, Any]]:
    records = list(kd_targets.read_sidecar(sidecar))
    if len(records) != n_rows:
        raise kd_targets.SidecarError(f"{sidecar} has {len(records)} logprobs records for {n_rows} rows")
    vocab = StudentVocab(tok)
    if student:
        vocab.name = student
    out, sampled = [], []
    placed = [0, 0]
    for row, ids, plen in zip(kept, inputs, prompt_lens):
        t, m, u = row_targets(vocab, records[row], ids, plen, top_k)
        out.append(t)
        if len(sampled) < 64:
            sampled.append((t is not None, m, u))
            if t is not None:
                placed[0] += len(t)
                placed[1] += sum(1 for c, _, _ in records[row].tokens if not c.special)
    info = kd_targets.check_tokenizer(sampled, teacher, f"{vocab.name} ({len(vocab.vocab)} ids)",
                                      placed=(placed[0], placed[1]))
    info.update({"rows_with_targets": sum(1 for t in out if t is not None), "rows": len(out),
                 "positions": sum(len(t) for t in out if t is not None)})
    return out, info


def collate_targets(targets: list[dict[int, tuple[list[int], list[float]]] | None], seq_len: int, top_k: int):
    import torch

    ids = torch.zeros((len(targets), seq_len, top_k), dtype=torch.long)
    lps = torch.full((len(targets), seq_len, top_k), float("-inf"))
    mask = torch.zeros((len(targets), seq_len), dtype=torch.bool)
    for b, t in enumerate(targets):
        for p, (row_ids, row_lp) in (t or {}).items():
            if p >= seq_len:
                continue
            k = min(top_k, len(row_ids))
            ids[b, p, :k] = torch.tensor(row_ids[:k])
            lps[b, p, :k] = torch.tensor(row_lp[:k])
            mask[b, p] = True
    return ids, lps, mask
