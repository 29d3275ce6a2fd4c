/**
 * Decontamination as open-r1 does it (scripts/decontaminate.py): a prompt is contaminated when it shares a word
 * n-gram (default 8) with any evaluation benchmark problem. Words are lower-cased letter/digit runs, with math
 * operators kept as tokens so "47+85" and "47-85" stay apart. Benchmark problems shorter than n words (the project's
 * "Compute 47+85.") match when the whole problem occurs in the prompt; open-r1 would never flag those.
 *
 * The index holds 53-bit n-gram hashes; a hit is confirmed word by word, so a hash collision never drops a sample.
 */
import { generateArithmeticProblems, type ArithOp } from '../dataset/arithmetic-task';
import { readJsonl } from '../artifacts/store';
import { ngramHash, Tokenizer } from './text';
import type { Verdict } from './types';

interface Item {
  benchmark: string;
  id: string;
  text: string;
}

export interface BenchmarkStats {
  name: string;
  source: string;
  items: number;
  ngrams: number;
  /** Problems with fewer words than the n-gram, matched whole. */
  short: number;
  /** Problems too short to match safely (below minItemTokens), ignored. */
  skipped: number;
  hits: number;
}

const SEED_A = 0x3c6ef372;
const SEED_B = 0x0a54ff53;

function key(tokens: Int32Array, i: number, n: number): number {
  return keyFrom(ngramHash(tokens, i, n, SEED_A), tokens, i, n);
}

/** The 53-bit key, given its low half (the bitset's hash) already computed. */
function keyFrom(low: number, tokens: Int32Array, i: number, n: number): number {
  return 4294967296 * (ngramHash(tokens, i, n, SEED_B) & 0x1fffff) + (low >>> 0);
}

/** A bit per 2^22 values of the low hash: most n-grams of a clean prompt stop here, before any Map lookup. */
const BITS_MASK = (1 << 22) - 1;

export class Decontaminator {
  private readonly items: Item[] = [];
  /** n-gram key → item index (the first item holding it). */
  private readonly ngrams = new Map<number, number>();
  /** For short problems: word count → (whole-problem key → item index). */
  private readonly short = new Map<number, Map<number, number>>();
  private readonly bits = new Uint32Array((BITS_MASK + 1) >>> 5);
  private readonly tok = new Tokenizer({ operators: true });
  private readonly itemTok = new Tokenizer({ operators: true });
  readonly benchmarks: BenchmarkStats[] = [];

  constructor(
    readonly n: number,
    private readonly minItemTokens = 3,
  ) {}

  /** Adds one benchmark problem. */
  add(stats: BenchmarkStats, id: string, text: string): void {
    const idx = this.items.length;
    this.items.push({ benchmark: stats.name, id, text });
    stats.items += 1;
    const t = this.tok.run(text);
    const len = t.length;
    if (len >= this.n) {
      for (let i = 0; i + this.n <= len; i++) {
        const low = ngramHash(t.hashes, i, this.n, SEED_A);
        const k = keyFrom(low, t.hashes, i, this.n);
        if (!this.ngrams.has(k)) this.ngrams.set(k, idx);
        this.bits[(low & BITS_MASK) >>> 5]! |= 1 << (low & 31);
        stats.ngrams += 1;
      }
    } else if (len >= this.minItemTokens) {
      let m = this.short.get(len);
      if (!m) this.short.set(len, (m = new Map()));
      m.set(key(t.hashes, 0, len), idx);
      stats.short += 1;
    } else {
      stats.skipped += 1;
    }
  }

  newBenchmark(name: string, source: string): BenchmarkStats {
    const s: BenchmarkStats = { name, source, items: 0, ngrams: 0, short: 0, skipped: 0, hits: 0 };
    this.benchmarks.push(s);
    return s;
  }

  get size(): number {
    return this.items.length;
  }

  /** Whether item `idx` really contains the words tokens[from..from+len) of the last checked text. */
  private confirm(idx: number, from: number, len: number): boolean {
    this.tok.run(this.tok.lastText, true); // spans, for the token strings (rare: only on a hash hit)
    const want = this.tok.tokenStrings(from, from + len).join(' ');
    const it = this.itemTok.run(this.items[idx]!.text, true);
    const words = it.tokenStrings();
    for (let i = 0; i + len <= words.length; i++) {
      if (words.slice(i, i + len).join(' ') === want) return true;
    }
    return false;
  }

  /** The benchmark problem `text` overlaps, or null. */
  check(text: string): Verdict {
    if (!this.items.length) return null;
    const t = this.tok.run(text);
    const len = t.length;
    const hit = (idx: number, from: number, n: number): Verdict => {
      const item = this.items[idx]!;
      this.benchmarks.find((b) => b.name === item.benchmark)!.hits += 1;
      const ngram = this.tok.tokenStrings(from, from + n).join(' '); // spans: `confirm` re-ran the tokenizer with them
      return { reason: 'contaminated', detail: `shares "${ngram}" with ${item.benchmark} problem ${item.id}` };
    };
    if (this.ngrams.size) {
      for (let i = 0; i + this.n <= len; i++) {
        const low = ngramHash(t.hashes, i, this.n, SEED_A);
        if ((this.bits[(low & BITS_MASK) >>> 5]! & (1 << (low & 31))) === 0) continue;
        const idx = this.ngrams.get(keyFrom(low, t.hashes, i, this.n));
        if (idx !== undefined && this.confirm(idx, i, this.n)) return hit(idx, i, this.n);
      }
    }
    for (const [n, m] of this.short) {
      for (let i = 0; i + n <= len; i++) {
        const idx = m.get(key(t.hashes, i, n));
        if (idx !== undefined && this.confirm(idx, i, n)) return hit(idx, i, n);
      }
    }
    return null;
  }
}

function field(row: Record<string, unknown>, path: string): unknown {
  let v: unknown = row;
  for (const part of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

export interface ArithmeticBenchmark {
  count: number;
  seed: number;
  digits: number;
  ops: ArithOp[];
}

/**
 * The decontamination index of a run: its own evaluation benchmark (the builtin arithmetic held-out problems it will
 * be scored on) and any benchmark files named in the config (`{path, field, name}`; rows without the field are
 * counted as skipped).
 */
export async function buildDecontaminator(opts: {
  ngram: number;
  minItemTokens: number;
  benchmarks: { path: string; field: string; name?: string }[];
  arithmetic?: ArithmeticBenchmark;
}): Promise<Decontaminator> {
  const d = new Decontaminator(opts.ngram, opts.minItemTokens);
  if (opts.arithmetic) {
    const a = opts.arithmetic;
    const stats = d.newBenchmark(
      'arithmetic-heldout',
      `builtin arithmetic held-out split (count ${a.count}, seed ${a.seed}, digits ${a.digits}, ops ${a.ops.join('')})`,
    );
    for (const p of generateArithmeticProblems({
      split: 'heldout',
      count: a.count,
      seed: a.seed,
      digits: a.digits,
      ops: a.ops,
    }))
      d.add(stats, p.id, p.prompt);
  }
  for (const b of opts.benchmarks) {
    const name = b.name ?? b.path.replace(/^.*\//, '').replace(/\.jsonl$/, '');
    const stats = d.newBenchmark(name, `${b.path} (field ${b.field})`);
    let row = 0;
    for await (const r of readJsonl<Record<string, unknown>>(b.path)) {
      row += 1;
      const v = field(r, b.field);
      if (typeof v !== 'string' || !v.trim()) {
        stats.skipped += 1;
        continue;
      }
      const id = r.id ?? r.unique_id ?? r.task_id ?? row;
      d.add(stats, String(id), v);
    }
  }
  return d;
}
