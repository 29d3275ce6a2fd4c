#!/usr/bin/env python3
"""math-verify's side of `npm run bench:verify`: the same labelled corpus, the same question per row.

    python mathverify_bench.py <corpus.jsonl> [--warmup N]

Loads the corpus, verifies the first N rows (default 20) once untimed, prints {"ready": true, "versions": …} and then
answers one command per stdin line with one JSON line on stdout, so that the TypeScript side can interleave passes of
both verifiers in ABBA order:

    {"cmd": "pass", "regime": "cold" | "cached"}  ->  {"seconds": s, "verdicts": [true, false, …]}
    {"cmd": "quit"}

Each row {response, gold, label}: the verdict is verify(parse(gold), parse(response)) with the library's default
configuration (LaTeX and plain-expression extraction, float rounding 6, strict). Golds are bare LaTeX, so they are
given to parse() in math mode ("$gold$"), then as "\\boxed{gold}" and raw when that extracts nothing, as its README
does; a GSM8K-style gold ("… #### N") is cut to N first (the usual preprocessing; our verifier reads such golds
itself).

Regimes, the same as the TypeScript side's:
  cold    no cache keyed by a row's text survives from one row to the next: before each row math-verify's own
          parse caches (parse_latex_cached, parse_expr_cached) are cleared, as ours are. SymPy's internal cache is
          the CAS's own machinery and is left alone (ours has no counterpart we could clear either).
  cached  parsed golds are memoised per distinct gold string for the pass (rows share golds, as rejection sampling's
          k samples per prompt do), as ours are; every cache is emptied at the start of the pass.
Only the verification of each row is timed (never the clearing); `seconds` is their sum.
"""
import json
import sys
import time
from importlib.metadata import version

from math_verify import parse, verify
from math_verify import parser as mv_parser

INPUT_CACHES = [getattr(mv_parser, name) for name in ("parse_latex_cached", "parse_expr_cached") if hasattr(mv_parser, name)]


def clear_input_caches() -> None:
    for cached in INPUT_CACHES:
        cached.cache_clear()


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


def judge(row, gold_memo=None) -> bool:
    try:
        if gold_memo is None:
            gold = parse_gold(row["gold"])
        else:
            gold = gold_memo.get(row["gold"])
            if gold is None:
                gold = gold_memo[row["gold"]] = parse_gold(row["gold"])
        pred = parse(row["response"])
        return bool(verify(gold, pred))
    except Exception:  # noqa: BLE001
        return False


def run_pass(rows, regime: str):
    clear_input_caches()
    memo = {} if regime == "cached" else None
    verdicts = []
    seconds = 0.0
    for row in rows:
        if regime == "cold":
            clear_input_caches()
        t0 = time.perf_counter()
        verdicts.append(judge(row, memo))
        seconds += time.perf_counter() - t0
    return {"seconds": seconds, "verdicts": verdicts}


def main() -> None:
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    path = args[0]
    warmup = int(args[args.index("--warmup") + 1]) if "--warmup" in args else 20
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    for row in rows[:warmup]:
        judge(row)
    versions = {k: version(k) for k in ("math-verify", "latex2sympy2_extended", "sympy", "antlr4-python3-runtime")}
    print(json.dumps({"ready": True, "rows": len(rows), "versions": versions}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        if cmd.get("cmd") != "pass" or cmd.get("regime") not in ("cold", "cached"):
            print(json.dumps({"error": f"unknown command {line.strip()}"}), flush=True)
            continue
        print(json.dumps(run_pass(rows, cmd["regime"])), flush=True)


if __name__ == "__main__":
    main()
