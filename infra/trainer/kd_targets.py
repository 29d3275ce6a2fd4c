"""The teacher's top-k logprobs (the run's sidecar, activities/generate/logprobs-sidecar.ts) as training targets.

Reading: one frame per training row, in the SFT file's order (the fine-tune activity aligns it), each checksummed.
Mapping: the sidecar keeps tokens as bytes (or a special token's name); `token_id` maps them onto the student's
vocabulary. Alignment: the teacher's sampled tokens spell the sample's completion; their bytes are found in the
assistant text the student trains on (the filters may have wrapped it), and each teacher token is put on the student
position that predicts it. Rows whose text no longer contains the teacher's tokens train on cross-entropy only.

`check_tokenizer` runs before the first step: when the teacher's tokens do not map onto the student's vocabulary
(another model family), training would be meaningless, and it stops with TokenizerMismatch naming both tokenizers.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator

MAGIC = b"LPS1"


class SidecarError(ValueError):
    pass


class TokenizerMismatch(ValueError):
    pass


@dataclass
class Token:
    data: bytes
    special: bool


@dataclass
class Record:
    id: str
    # per generated token: (chosen token, its logprob, [(alternative, logprob), ...])
    tokens: list[tuple[Token, float, list[tuple[Token, float]]]]


def read_sidecar(path: str) -> Iterator[Record]:
    with open(path, "rb") as f:
        buf = f.read()
    o = 0
    while o < len(buf):
        if buf[o:o + 4] != MAGIC or o + 12 > len(buf):
            raise SidecarError(f"{path}: not a logprobs sidecar frame at byte {o}")
        length, crc = struct.unpack_from("<II", buf, o + 4)
        payload = buf[o + 12:o + 12 + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise SidecarError(f"{path}: checksum mismatch in the frame at byte {o}")
        yield _decode(payload)
        o += 12 + length


def _decode(p: bytes) -> Record:
    (id_len,) = struct.unpack_from("<H", p, 0)
    o = 2
    rid = p[o:o + id_len].decode("utf-8")
    o += id_len
    n, table_size = struct.unpack_from("<II", p, o)
    o += 8
    table: list[Token] = []
    for _ in range(table_size):
        flags, ln = struct.unpack_from("<BH", p, o)
        table.append(Token(p[o + 3:o + 3 + ln], flags == 1))
        o += 3 + ln
    width = p[o]
    o += 1
    fmt = "<H" if width == 2 else "<I"
    tokens = []
    for _ in range(n):
        k = p[o]
        o += 1
        (ci,) = struct.unpack_from(fmt, p, o)
        (clp,) = struct.unpack_from("<f", p, o + width)
        o += width + 4
        alts = []
        for _ in range(k):
            (ai,) = struct.unpack_from(fmt, p, o)
            (alp,) = struct.unpack_from("<f", p, o + width)
            o += width + 4
            alts.append((table[ai], alp))
        tokens.append((table[ci], clp, alts))
    return Record(rid, tokens)


@dataclass
class Targets:
    """For one training row: completion-relative token positions j (the j-th student token of the assistant text is
    predicted by the position before it), each with up to K (student id, teacher logprob) pairs."""
    positions: list[int]
    ids: list[list[int]]
    logprobs: list[list[float]]


def byte_token_id(tok: Token) -> int | None:
    """The tiny student's id of a teacher token: one byte, or its end-of-text token by name."""
    if tok.special:
        return {"<eos>": 257, "<|endoftext|>": 257, "</s>": 257}.get(tok.data.decode("utf-8", "replace"))
    return tok.data[0] if len(tok.data) == 1 else None


def byte_targets(record: Record, assistant: bytes, top_k: int,
                 token_id: Callable[[Token], int | None] = byte_token_id) -> tuple[Targets | None, int, int]:
    """Targets of a byte-level student (one token per byte). Returns (targets or None when the teacher's text is not
    in the assistant text, mapped token count, unmapped token count)."""
    text = b"".join(t.data for t, _, _ in record.tokens if not t.special)
    at = assistant.find(text) if text else -1
    mapped = unmapped = 0
    positions: list[int] = []
    ids: list[list[int]] = []
    lps: list[list[float]] = []
    pos = at
    for chosen, clp, alts in record.tokens:
        cid = token_id(chosen)
        if cid is None:
            unmapped += 1
        else:
            mapped += 1
        row_ids, row_lp = [], []
        for a, alp in (alts or [(chosen, clp)])[:top_k]:
            aid = token_id(a)
            if aid is None:
                unmapped += 1
                continue
            mapped += 1
            if aid not in row_ids:
                row_ids.append(aid)
                row_lp.append(alp)
        if at >= 0 and not chosen.special:
            if row_ids:
                positions.append(pos)
                ids.append(row_ids)
                lps.append(row_lp)
            pos += len(chosen.data)
    if at < 0:
        return None, mapped, unmapped
    return Targets(positions, ids, lps), mapped, unmapped


def check_tokenizer(stats: list[tuple[bool, int, int]], teacher: str, student: str, min_mapped: float = 0.99,
                    min_aligned: float = 0.5, placed: tuple[int, int] | None = None, min_placed: float = 0.8
                    ) -> dict[str, float]:
    """stats: per sampled record (aligned, mapped tokens, unmapped tokens); placed: (teacher tokens that fell on a
    student token of the same span, teacher tokens) over the aligned records. Raises TokenizerMismatch naming both
    tokenizers when the teacher's tokens do not map onto the student's vocabulary, do not spell the training text, or
    cut it elsewhere than the student does (e.g. a byte-level teacher and a BPE student: every byte maps, few align)."""
    mapped = sum(m for _, m, _ in stats)
    unmapped = sum(u for _, _, u in stats)
    aligned = sum(1 for a, _, _ in stats if a)
    frac = mapped / max(1, mapped + unmapped)
    frac_aligned = aligned / max(1, len(stats))
    frac_placed = placed[0] / max(1, placed[1]) if placed else 1.0
    if frac < min_mapped or frac_aligned < min_aligned or frac_placed < min_placed:
        raise TokenizerMismatch(
            f"TokenizerMismatch: the teacher's tokens ({teacher}) do not map onto the student's tokenizer ({student}): "
            f"{frac:.1%} of the sampled tokens map to one student token (need {min_mapped:.0%}), {frac_aligned:.1%} of "
            f"{len(stats)} sampled records spell their training text (need {min_aligned:.0%}), {frac_placed:.1%} of their "
            f"tokens fall on the student's token boundaries (need {min_placed:.0%}). Soft targets need a "
            f"teacher and a student of one tokenizer family; cross-tokenizer distillation is not supported.")
    return {"mapped_fraction": round(frac, 4), "aligned_fraction": round(frac_aligned, 4),
            "placed_fraction": round(frac_placed, 4), "sampled_records": len(stats)}
