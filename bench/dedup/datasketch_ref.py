"""Reference for `npm run bench:dedup`: the same dedup + decontamination with datasketch (MinHash + MinHashLSH).

Reads the bench's samples JSONL ({id, prompt, content}) and benchmark problems JSONL, and for every sample, in order:
  1. decontamination as open-r1's scripts/decontaminate.py does it: the prompt shares a word n-gram with a benchmark
     problem (problems shorter than n words match whole, as in activities/filter/decontaminate.ts);
  2. exact duplicate: sha1 of the lower-cased, whitespace-collapsed prompt and content seen before;
  3. near duplicate: datasketch MinHash (affine32, seed 1) of the word shingles of prompt + content (think tags
     removed); MinHashLSH.query for candidates with the same bands/rows as ours; candidates whose MinHash.jaccard
     estimate is within 0.15 of the threshold, best first and at most 8, are read back from the file (os.pread at
     their offset); one counts when the exact Jaccard of the two shingle sets is >= threshold. Otherwise the sample
     is inserted.
Only kept samples enter the indexes (query, then insert), as in ours. Tokens: lower-cased runs of letters/digits
(plus math operators for decontamination), the same as activities/filter/text.ts on ASCII text.

Writes `id<TAB>reason` per dropped sample to --out and prints one JSON line of stats (processing time excludes the
interpreter start and imports).
"""

import argparse
import hashlib
import json
import os
import re
import resource
import sys
import time

from datasketch import MinHash, MinHashLSH

WORD = re.compile(r"[^\W_]+")
WORD_OP = re.compile(r"[^\W_]+|[+\-*/=^<>×÷%±≤≥≠√∑∫!|]")
SPACE = re.compile(r"\s+")
THINK = re.compile(r"</?think>")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--benchmarks", required=True)
    ap.add_argument("--field", default="problem")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--bands", type=int, required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--shingle", type=int, default=5)
    ap.add_argument("--ngram", type=int, default=8)
    ap.add_argument("--min-item-tokens", type=int, default=3)
    a = ap.parse_args()

    t0 = time.perf_counter()
    # Decontamination index (open-r1: a set of n-grams over all benchmark problems).
    n = a.ngram
    ngrams = set()
    short = {}  # length -> set of whole problems
    with open(a.benchmarks, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            text = json.loads(line).get(a.field)
            if not isinstance(text, str) or not text.strip():
                continue
            toks = WORD_OP.findall(text.lower())
            if len(toks) >= n:
                for i in range(len(toks) - n + 1):
                    ngrams.add(" ".join(toks[i : i + n]))
            elif len(toks) >= a.min_item_tokens:
                short.setdefault(len(toks), set()).add(" ".join(toks))

    def contaminated(prompt: str) -> bool:
        toks = WORD_OP.findall(prompt.lower())
        for i in range(len(toks) - n + 1):
            if " ".join(toks[i : i + n]) in ngrams:
                return True
        for k, items in short.items():
            for i in range(len(toks) - k + 1):
                if " ".join(toks[i : i + k]) in items:
                    return True
        return False

    k = a.shingle

    def shingles(prompt: str, content: str) -> list:
        toks = WORD.findall((prompt + "\n" + THINK.sub(" ", content)).lower())
        if not toks:
            return []
        w = min(k, len(toks))
        return [" ".join(toks[i : i + w]) for i in range(len(toks) - w + 1)]

    lsh = MinHashLSH(threshold=a.threshold, num_perm=a.num_perm, params=(a.bands, a.rows))
    template = MinHash(num_perm=a.num_perm, seed=1)
    kept = {}  # id -> (MinHash, offset, length)
    exact = set()
    counts = {"docs": 0, "contaminated": 0, "duplicate": 0, "near_duplicate": 0, "confirmations": 0}
    fd = os.open(a.data, os.O_RDONLY)
    with open(a.data, "rb") as f, open(a.out, "w", encoding="utf-8") as out:
        offset = 0
        for raw in f:
            at, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            row = json.loads(raw)
            counts["docs"] += 1
            sid, prompt, content = row["id"], row["prompt"], row["content"]
            if contaminated(prompt):
                counts["contaminated"] += 1
                out.write(f"{sid}\tcontaminated\n")
                continue
            key = hashlib.sha1(
                (SPACE.sub(" ", prompt.lower()).strip() + "\0" + SPACE.sub(" ", content.lower()).strip()).encode("utf-8")
            ).digest()
            if key in exact:
                counts["duplicate"] += 1
                out.write(f"{sid}\tduplicate\n")
                continue
            exact.add(key)
            sh = shingles(prompt, content)
            if not sh:
                continue
            m = template.copy()
            m.update_batch([s.encode("utf-8") for s in sh])
            dup = False
            mine = None
            # As ours: candidates whose estimate is within 0.15 of the threshold, best first, at most 8 read back.
            cands = [(m.jaccard(kept[c][0]), c) for c in lsh.query(m)]
            cands = sorted((e, c) for e, c in cands if e >= a.threshold - 0.15)[::-1][:8]
            for _, c in cands:
                _, o_at, o_len = kept[c]
                counts["confirmations"] += 1
                mine = mine or set(sh)
                o = json.loads(os.pread(fd, o_len, o_at))
                theirs = set(shingles(o["prompt"], o["content"]))
                if len(mine & theirs) / len(mine | theirs) >= a.threshold:
                    dup = True
                    break
            if dup:
                counts["near_duplicate"] += 1
                out.write(f"{sid}\tnear_duplicate\n")
                continue
            lsh.insert(sid, m)
            kept[sid] = (m, at, len(raw))
    os.close(fd)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "maxRssMB": rss_mb, **counts}))


if __name__ == "__main__":
    sys.exit(main())
