/**
 * `npm run bench:dedup`: deduplication + decontamination of the filter stage against datasketch (MinHash +
 * MinHashLSH, Python, from PyPI) in one run, on the same synthetic data. The last line is exactly
 *
 *   speedup=<datasketch seconds / ours> overlap=<|dups both found| / |dups either found|>
 *
 *   node dist/bench/dedup/bench-dedup.js [--samples 200000] [--seed 1] [--python PY] [--keep DIR]
 *
 * The bench writes, deterministically from the seed, a samples JSONL (SampleRow rows with <think> answers) and a
 * benchmark-problems JSONL, with planted cases: exact duplicates (case and whitespace changed), near duplicates
 * (1–3 words replaced, inserted or deleted), hard negatives (40% of the answer rewritten: must stay), prompts holding
 * an 8–15-word span of a benchmark problem (contaminated), prompts with only a 7-word span (must stay), held-out
 * arithmetic problems from activities/dataset/arithmetic-task.ts (contaminated) and train-split ones (must stay).
 *
 * Ours: the real `formatFilter` activity in a child process (its own peak RSS), with the pipeline's default dedup
 * and decontamination settings and the other content filters off. Theirs: bench/dedup/datasketch_ref.py with the
 * same bands/rows, threshold, shingles and n-grams. Each side reports processing time (no interpreter start) and
 * peak RSS; the parent compares what each dropped, and each against the planted truth.
 * Exit 1 when the targets (≥ 3× and ≥ 98% overlap) are missed.
 * Python: DISTILLERY_BENCH_DEDUP_PYTHON, else ~/.cache/distillery/bench-venv-dedup (made by bench/dedup/setup.sh).
 */
import { mulberry32 } from '../../activities/dataset/arithmetic-task';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateArithmeticProblems } from '../../activities/dataset/arithmetic-task';
import { readJsonl, refOfFile } from '../../activities/artifacts/store';
import { resolveFilters } from '../../activities/filter/config';
import { formatFilter } from '../../activities/filter/format-filter';
import { lshParams } from '../../activities/filter/minhash';
import { cacheDir, projectRoot } from '../../infra/paths';

function arg(name: string, fallback?: string): string | undefined {
  const k = process.argv.indexOf(name);
  return k >= 0 ? process.argv[k + 1] : fallback;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Deterministic synthetic data                                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */


class Words {
  readonly vocab: string[] = [];
  private readonly cdf: Float64Array;
  constructor(
    private readonly rnd: () => number,
    size = 20_000,
  ) {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const seen = new Set<string>();
    while (this.vocab.length < size) {
      const len = 2 + Math.floor(rnd() * 9);
      let w = '';
      for (let i = 0; i < len; i++) w += letters[Math.floor(rnd() * 26)];
      if (!seen.has(w)) {
        seen.add(w);
        this.vocab.push(w);
      }
    }
    // Zipf(1): a few words are very common, as in text.
    this.cdf = new Float64Array(size);
    let s = 0;
    for (let i = 0; i < size; i++) this.cdf[i] = s += 1 / (i + 1);
    for (let i = 0; i < size; i++) this.cdf[i]! /= s;
  }
  word(): string {
    const u = this.rnd();
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return this.vocab[lo]!;
  }
  words(n: number): string[] {
    return Array.from({ length: n }, () => this.word());
  }
}

type Kind = 'original' | 'exact' | 'near' | 'hard_negative' | 'contaminated' | 'near_miss_7' | 'arith_heldout' | 'arith_train';

interface Truth {
  kind: Kind;
  /** For near duplicates: true Jaccard of word 5-shingles with the source. */
  jaccard?: number;
}

function shingles(text: string, k: number): Set<string> {
  const t = text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
  const w = Math.min(k, t.length);
  const s = new Set<string>();
  for (let i = 0; i + w <= t.length; i++) s.add(t.slice(i, i + w).join(' '));
  return s;
}

function jaccard(a: Set<string>, b: Set<string>): number {
  let i = 0;
  for (const x of a) if (b.has(x)) i++;
  return i / (a.size + b.size - i);
}

function answerText(reasoning: string[], summary: string[]): string {
  return `<think>\n${reasoning.join(' ')}\n</think>\n${summary.join(' ')}`;
}

async function generate(dir: string, samples: number, seed: number, shingleSize: number): Promise<{ data: string; bench: string; truth: Map<string, Truth> }> {
  const rnd = mulberry32(seed);
  const W = new Words(rnd);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));

  // Benchmark problems: 3,000 synthetic word problems plus 200 held-out arithmetic problems.
  const problems: string[][] = [];
  const benchFile = path.join(dir, 'benchmarks.jsonl');
  const bench = fs.createWriteStream(benchFile);
  for (let i = 0; i < 3000; i++) {
    const p = W.words(int(30, 80));
    problems.push(p);
    bench.write(JSON.stringify({ id: `syn-${i}`, problem: `${p.join(' ')}?` }) + '\n');
  }
  const heldout = generateArithmeticProblems({ split: 'heldout', count: 200, seed: 2, digits: 2, ops: ['+'] });
  for (const h of heldout) bench.write(JSON.stringify({ id: h.id, problem: h.prompt }) + '\n');
  const train = generateArithmeticProblems({ split: 'train', count: 500, seed: 3, digits: 2, ops: ['+'] });
  await new Promise<void>((r) => bench.end(r));

  const truth = new Map<string, Truth>();
  const recent: { prompt: string[]; reasoning: string[]; summary: string[] }[] = [];
  const dataFile = path.join(dir, 'samples.jsonl');
  const out = fs.createWriteStream(dataFile);
  let buffered = '';
  const base = { sampleIndex: 0, configHash: 'bench', answer: '1', finishReason: 'stop', usage: { promptTokens: 40, completionTokens: 200 }, teacher: { model: 'synthetic' }, sampling: { temperature: 0.6, top_p: 0.95, max_tokens: 4096, seed: 0 }, latencyMs: 0 };
  for (let i = 0; i < samples; i++) {
    const id = `s${i}`;
    const u = rnd();
    let kind: Kind = 'original';
    if (recent.length >= 100) {
      if (u < 0.01) kind = 'exact';
      else if (u < 0.05) kind = 'near';
      else if (u < 0.06) kind = 'hard_negative';
      else if (u < 0.07) kind = 'contaminated';
      else if (u < 0.075) kind = 'near_miss_7';
      else if (u < 0.077) kind = 'arith_heldout';
      else if (u < 0.079) kind = 'arith_train';
    }
    let prompt: string;
    let content: string;
    const t: Truth = { kind };
    if (kind === 'exact' || kind === 'near' || kind === 'hard_negative') {
      const src = pick(recent);
      if (kind === 'exact') {
        // Same text once lower-cased and whitespace collapsed.
        prompt = `  ${src.prompt.join('  ').toUpperCase()}`;
        content = answerText(src.reasoning, src.summary).replace(/ /g, '\t ');
      } else {
        const r = [...src.reasoning];
        const edits = kind === 'near' ? int(1, 3) : Math.floor(r.length * 0.4);
        for (let e = 0; e < edits; e++) {
          const at = int(0, r.length - 1);
          const op = kind === 'near' ? int(0, 2) : 0;
          if (op === 0) r[at] = W.word();
          else if (op === 1) r.splice(at, 0, W.word());
          else r.splice(at, 1);
        }
        prompt = src.prompt.join(' ');
        content = answerText(r, src.summary);
        if (kind === 'near') t.jaccard = jaccard(shingles(`${prompt}\n${r.join(' ')} ${src.summary.join(' ')}`, shingleSize), shingles(`${prompt}\n${src.reasoning.join(' ')} ${src.summary.join(' ')}`, shingleSize));
      }
    } else {
      const reasoning = W.words(int(80, 200));
      const summary = W.words(int(8, 20));
      let p = W.words(int(15, 40));
      if (kind === 'contaminated' || kind === 'near_miss_7') {
        const prob = pick(problems);
        const span = kind === 'contaminated' ? int(8, 15) : 7;
        const at = int(0, prob.length - span);
        const cut = int(0, p.length);
        p = [...p.slice(0, cut), ...prob.slice(at, at + span), ...p.slice(cut)];
        if (kind === 'near_miss_7') {
          // The neighbours must not extend the span to 8 shared words by chance (common words often would).
          const before = cut - 1;
          const after = cut + span;
          while (before >= 0 && at > 0 && p[before] === prob[at - 1]) p[before] = W.word();
          while (after < p.length && at + span < prob.length && p[after] === prob[at + span]) p[after] = W.word();
        }
      }
      prompt = p.join(' ');
      if (kind === 'arith_heldout') prompt = `${prompt}. ${pick(heldout).prompt}`;
      if (kind === 'arith_train') prompt = `${prompt}. ${pick(train).prompt}`;
      content = answerText(reasoning, summary);
      if (kind === 'original') {
        recent.push({ prompt: p, reasoning, summary });
        if (recent.length > 2000) recent.splice(0, recent.length - 2000);
      }
    }
    truth.set(id, t);
    buffered += JSON.stringify({ ...base, id, promptId: id, prompt, content }) + '\n';
    if (buffered.length > 1 << 20) {
      if (!out.write(buffered)) await new Promise<void>((r) => out.once('drain', r));
      buffered = '';
    }
  }
  out.write(buffered);
  await new Promise<void>((r) => out.end(r));
  return { data: dataFile, bench: benchFile, truth };
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Ours: the formatFilter activity in a child process                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

function oursFilters(benchFile: string) {
  return {
    language: { enabled: false },
    repetition: { enabled: false },
    decontaminate: { evaluationBenchmark: false, benchmarks: [{ path: benchFile, field: 'problem' }] },
  };
}

async function worker(): Promise<void> {
  const data = arg('--data')!;
  const benchFile = arg('--benchmarks')!;
  const runDir = arg('--run-dir')!;
  const accepted = JSON.parse(arg('--ref')!) as { uri: string; sha256: string; count: number };
  const t0 = performance.now();
  const r = await formatFilter({ runDir, accepted, filters: oursFilters(benchFile) });
  const seconds = (performance.now() - t0) / 1000;
  const drops: string[] = [];
  for await (const row of readJsonl<{ id: string; reason: string }>(r.rejectsRef)) drops.push(`${row.id}\t${row.reason}`);
  fs.writeFileSync(arg('--out')!, drops.join('\n') + '\n');
  const card = JSON.parse(fs.readFileSync(path.join(runDir, 'filter', 'dataset-card.json'), 'utf8')) as { steps: { name: string; ms: number }[]; dedup: { indexBytes: number } };
  const ms = Object.fromEntries(card.steps.map((s) => [s.name, Math.round(s.ms)]));
  console.log(JSON.stringify({ seconds, maxRssMB: process.resourceUsage().maxRSS / 1024, docs: r.samplesIn, reasons: r.reasons, stepMs: ms, indexMB: card.dedup.indexBytes / 2 ** 20, data }));
}

/* ------------------------------------------------------------------------------------------------------------ */

interface SideStats {
  seconds: number;
  maxRssMB: number;
  docs: number;
}

function readDrops(file: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const [id, reason] = line.split('\t') as [string, string];
    m.set(id, reason);
  }
  return m;
}

function lastJsonLine(stdout: string): unknown {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!);
}

async function main(): Promise<void> {
  if (process.argv.includes('--worker')) return worker();
  const samples = Number(arg('--samples', '200000'));
  const seed = Number(arg('--seed', '1'));
  const python = arg('--python', process.env.DISTILLERY_BENCH_DEDUP_PYTHON ?? path.join(cacheDir(), 'bench-venv-dedup', 'bin', 'python'))!;
  if (!fs.existsSync(python)) {
    console.error(`no Python with datasketch at ${python}: run \`bash bench/dedup/setup.sh\` (or pass --python)`);
    process.exit(2);
  }
  const f = resolveFilters({});
  const { bands, rows } = lshParams(f.nearDedup.threshold, f.nearDedup.numPerm);
  const dir = arg('--keep') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-bench-dedup-'));
  fs.mkdirSync(dir, { recursive: true });
  try {
    let t = performance.now();
    const g = await generate(dir, samples, seed, f.nearDedup.shingleSize);
    const ref = await refOfFile(g.data);
    const mb = fs.statSync(g.data).size / 2 ** 20;
    console.log(`data: ${samples} samples (${mb.toFixed(0)} MB), ${dir}; generated in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    console.log(`settings (pipeline defaults): threshold ${f.nearDedup.threshold}, ${f.nearDedup.numPerm} perms = ${bands} bands × ${rows} rows, ${f.nearDedup.shingleSize}-word shingles, decontamination ${f.decontaminate.ngram}-grams`);

    // Ours.
    const oursOut = path.join(dir, 'ours.drops.tsv');
    t = performance.now();
    const o = spawnSync(
      process.execPath,
      [__filename, '--worker', '--data', g.data, '--benchmarks', g.bench, '--run-dir', path.join(dir, 'run'), '--ref', JSON.stringify(ref), '--out', oursOut],
      { encoding: 'utf8', maxBuffer: 1 << 26, cwd: projectRoot },
    );
    if (o.status !== 0) throw new Error(`ours failed (${o.status}): ${o.stderr}`);
    const ours = lastJsonLine(o.stdout) as SideStats & { reasons: Record<string, number>; stepMs: Record<string, number>; indexMB: number };
    console.log(`ours:       ${ours.seconds.toFixed(2)} s (${Math.round(ours.docs / ours.seconds)} samples/s), peak RSS ${ours.maxRssMB.toFixed(0)} MB (dedup index ${ours.indexMB.toFixed(1)} MB); ${JSON.stringify(ours.reasons)}; step ms ${JSON.stringify(ours.stepMs)}`);

    // datasketch.
    const theirsOut = path.join(dir, 'datasketch.drops.tsv');
    const p = spawnSync(
      python,
      [
        path.join(projectRoot, 'bench', 'dedup', 'datasketch_ref.py'),
        '--data', g.data, '--benchmarks', g.bench, '--out', theirsOut,
        '--threshold', String(f.nearDedup.threshold), '--num-perm', String(f.nearDedup.numPerm), '--bands', String(bands), '--rows', String(rows),
        '--shingle', String(f.nearDedup.shingleSize), '--ngram', String(f.decontaminate.ngram), '--min-item-tokens', String(f.decontaminate.minItemTokens),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 26 },
    );
    if (p.status !== 0) throw new Error(`datasketch failed (${p.status}): ${p.stderr}`);
    const theirs = lastJsonLine(p.stdout) as SideStats & Record<string, number>;
    console.log(`datasketch: ${theirs.seconds.toFixed(2)} s (${Math.round(theirs.docs / theirs.seconds)} samples/s), peak RSS ${theirs.maxRssMB.toFixed(0)} MB; ${JSON.stringify({ contaminated: theirs.contaminated, duplicate: theirs.duplicate, near_duplicate: theirs.near_duplicate })}`);

    // Compare.
    const od = readDrops(oursOut);
    const td = readDrops(theirsOut);
    const isDup = (r: string | undefined) => r === 'duplicate' || r === 'near_duplicate';
    const oursDups = new Set([...od].filter(([, r]) => isDup(r)).map(([id]) => id));
    const theirDups = new Set([...td].filter(([, r]) => isDup(r)).map(([id]) => id));
    const both = [...oursDups].filter((id) => theirDups.has(id)).length;
    const union = oursDups.size + theirDups.size - both;
    const overlap = union ? both / union : 1;
    const oursCont = new Set([...od].filter(([, r]) => r === 'contaminated').map(([id]) => id));
    const theirCont = new Set([...td].filter(([, r]) => r === 'contaminated').map(([id]) => id));
    const contBoth = [...oursCont].filter((id) => theirCont.has(id)).length;
    const contOverlap = oursCont.size + theirCont.size - contBoth ? contBoth / (oursCont.size + theirCont.size - contBoth) : 1;
    console.log(`duplicates: ours ${oursDups.size}, datasketch ${theirDups.size}, both ${both}, overlap ${(overlap * 100).toFixed(2)}%; contaminated: ours ${oursCont.size}, datasketch ${theirCont.size}, overlap ${(contOverlap * 100).toFixed(2)}%`);

    // Against the planted truth.
    const planted = (k: Kind) => [...g.truth].filter(([, t]) => t.kind === k).map(([id]) => id);
    const rate = (ids: string[], drops: Map<string, string>, want: (r: string | undefined) => boolean) => (ids.length ? ids.filter((id) => want(drops.get(id))).length / ids.length : 1);
    const near = planted('near');
    const js = near.map((id) => g.truth.get(id)!.jaccard!).sort((a, b) => a - b);
    const nearAbove = near.filter((id) => g.truth.get(id)!.jaccard! >= f.nearDedup.threshold);
    const lines: [string, string[], (r: string | undefined) => boolean][] = [
      ['exact duplicates dropped', planted('exact'), isDup],
      [`near duplicates (true J ≥ ${f.nearDedup.threshold}) dropped`, nearAbove, isDup],
      ['near duplicates (all) dropped', near, isDup],
      ['hard negatives kept', planted('hard_negative'), (r) => r === undefined],
      ['originals kept', planted('original'), (r) => r === undefined],
      ['contaminated (8–15-word span) dropped', planted('contaminated'), (r) => r === 'contaminated'],
      ['held-out arithmetic dropped', planted('arith_heldout'), (r) => r === 'contaminated'],
      ['7-word span kept', planted('near_miss_7'), (r) => r === undefined],
      ['train arithmetic kept', planted('arith_train'), (r) => r === undefined],
    ];
    console.log(`planted near duplicates: ${near.length}, true Jaccard min ${js[0]?.toFixed(3)}, median ${js[js.length >> 1]?.toFixed(3)}`);
    for (const [label, ids, want] of lines) {
      console.log(`  ${label.padEnd(44)} n=${String(ids.length).padStart(6)}  ours ${(rate(ids, od, want) * 100).toFixed(2).padStart(6)}%  datasketch ${(rate(ids, td, want) * 100).toFixed(2).padStart(6)}%`);
    }
    const speedup = theirs.seconds / ours.seconds;
    const ok = speedup >= 3 && overlap >= 0.98;
    console.log(`targets: ≥ 3× (${speedup.toFixed(2)}×) and ≥ 98% overlap (${(overlap * 100).toFixed(2)}%): ${ok ? 'met' : 'MISSED'}`);
    console.log(`speedup=${speedup.toFixed(2)} overlap=${overlap.toFixed(4)}`);
    if (!ok) process.exitCode = 1;
  } finally {
    if (!arg('--keep')) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
