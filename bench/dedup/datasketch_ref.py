"""Reference for `npm run bench:dedup`: dedup + decontamination the way datasketch's users write it.

Reads the bench's samples JSONL ({id, prompt, content}) and benchmark problems JSONL, and for every sample, in order:
  1. decontamination as open-r1's scripts/decontaminate.py does it: the prompt shares a word n-gram with a benchmark
     problem (problems shorter than n words match whole);
  2. near duplicate (exact duplicates included): a datasketch MinHash (its defaults: sha1 hash, seed 1) of the word
     shingles of prompt + content (think tags removed), then MinHashLSH.query; any candidate makes the sample a
     duplicate, otherwise MinHashLSH.insert. The LSH is MinHashLSH(threshold, num_perm) with datasketch's own choice
     of bands and rows for that threshold (no candidate re-check: that is not how its users write it).
Only kept samples enter the index, as in ours. Tokens: lower-cased runs of letters/digits (plus math operators for
decontamination), the same features as activities/filter/text.ts on ASCII text, so both sides hash the same sets.

Writes `id<TAB>reason` per dropped sample to --out and prints one JSON line of stats (processing time excludes the
interpreter start and imports).
"""

import argparse
import json
import re
import resource
import sys
import time

from datasketch import MinHash, MinHashLSH

WORD = re.compile(r"[^\W_]+")
WORD_OP = re.compile(r"[^\W_]+|[+\-*/=^<>×÷%±≤≥≠√∑∫!|]")
THINK = re.compile(r"</?think>")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--benchmarks", required=True)
    ap.add_argument("--field", default="problem")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--shingle", type=int, default=5)
    ap.add_argument("--ngram", type=int, default=8)
    ap.add_argument("--min-item-tokens", type=int, default=3)
    a = ap.parse_args()

    t0 = time.perf_counter()
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

    lsh = MinHashLSH(threshold=a.threshold, num_perm=a.num_perm)
    counts = {"docs": 0, "contaminated": 0, "near_duplicate": 0}
    with open(a.data, "rb") as f, open(a.out, "w", encoding="utf-8") as out:
        for raw in f:
            if not raw.strip():
                continue
            row = json.loads(raw)
            counts["docs"] += 1
            sid, prompt, content = row["id"], row["prompt"], row["content"]
            if contaminated(prompt):
                counts["contaminated"] += 1
                out.write(f"{sid}\tcontaminated\n")
                continue
            sh = shingles(prompt, content)
            if not sh:
                continue
            m = MinHash(num_perm=a.num_perm)
            m.update_batch([s.encode("utf-8") for s in sh])
            if lsh.query(m):
                counts["near_duplicate"] += 1
                out.write(f"{sid}\tnear_duplicate\n")
                continue
            lsh.insert(sid, m)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "maxRssMB": rss_mb, "bands": lsh.b, "rows": lsh.r, **counts}))


if __name__ == "__main__":
    sys.exit(main())
