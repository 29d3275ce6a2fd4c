#!/usr/bin/env python3
"""math-verify's side of `npm run bench:verify`: the same labelled corpus, the same question per row.

    python mathverify_bench.py <corpus.jsonl> [--passes N] [--warmup N]

Each row {response, gold, label}: math-verify's verdict is verify(parse(gold), parse(response)) with the library's
default configuration (LaTeX and plain-expression extraction, float rounding 6, strict). Golds are bare LaTeX, so
they are given to parse() in math mode ("$gold$"), then as "\\boxed{gold}" and raw when that extracts nothing, as
its README does; a GSM8K-style gold ("… #### N") is cut to N first (the usual preprocessing; our verifier reads such
golds itself). A row counts as agreeing when (verdict is True) == label.

Prints one JSON object on stdout: rows, agree, accuracy, seconds (median timed pass), answers_per_second, versions.
The warm-up rows (default 20) are verified once untimed first, as the TypeScript side does.
"""
import json
import statistics
import sys
import time
from importlib.metadata import version

from math_verify import parse, verify


def parse_gold(gold: str):
    if "####" in gold:
        gold = gold.split("####")[-1].strip()
    for text in (f"${gold}$", f"\\boxed{{{gold}}}", gold):
        try:
            parsed = parse(text)
        except Exception:  # noqa: BLE001 - a crash of the grader is a non-answer
            parsed = []
        if parsed:
            return parsed
    return []


def judge(row) -> bool:
    try:
        gold = parse_gold(row["gold"])
        pred = parse(row["response"])
        return bool(verify(gold, pred))
    except Exception:  # noqa: BLE001
        return False


def main() -> None:
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    path = args[0]
    passes = int(args[args.index("--passes") + 1]) if "--passes" in args else 1
    warmup = int(args[args.index("--warmup") + 1]) if "--warmup" in args else 20
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    for row in rows[:warmup]:
        judge(row)
    times = []
    verdicts = []
    for p in range(passes):
        t0 = time.perf_counter()
        out = [judge(row) for row in rows]
        times.append(time.perf_counter() - t0)
        if p == 0:
            verdicts = out
    agree = sum(1 for row, v in zip(rows, verdicts) if v == bool(row["label"]))
    seconds = statistics.median(times)
    misses = [
        {"category": row.get("category"), "label": row["label"], "gold": row["gold"]}
        for row, v in zip(rows, verdicts)
        if v != bool(row["label"])
    ]
    print(
        json.dumps(
            {
                "rows": len(rows),
                "agree": agree,
                "accuracy": agree / len(rows),
                "seconds": seconds,
                "passes": passes,
                "answers_per_second": len(rows) / seconds,
                "versions": {k: version(k) for k in ("math-verify", "latex2sympy2_extended", "sympy", "antlr4-python3-runtime")},
                "misses_by_category": {c: sum(1 for m in misses if m["category"] == c) for c in sorted({m["category"] for m in misses})},
            }
        )
    )


if __name__ == "__main__":
    main()
