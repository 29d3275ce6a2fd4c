/**
 * `npm run bench:dedup`: deduplication + decontamination of the filter stage against datasketch (MinHash +
 * MinHashLSH, Python, from PyPI) in one run, on the same synthetic data with planted truth. The last line is exactly
 *
 *   speedup=<median over rounds of datasketch seconds ÷ ours> overlap=<|dups both dropped| / |dups either dropped|>
 *   recall=<ours, over every planted drop> precision=<ours, over every drop>
 *
 *   node dist/bench/dedup/bench-dedup.js [--samples 100000] [--rounds 3] [--seed 1] [--python PY] [--keep DIR]
 *   (BENCH_SAMPLES and BENCH_ROUNDS do the same as the flags)
 *
 * The bench writes, deterministically from the seed, a samples JSONL (SampleRow rows with <think> answers) and a
 * benchmark-problems JSONL, with planted cases: exact duplicates (case and whitespace changed), near duplicates
 * (1–3 words replaced, inserted or deleted; their true Jaccard with the source is recorded), hard negatives (40% of
 * the answer rewritten: must stay), prompts holding an 8–15-word span of a benchmark problem (contaminated), prompts
 * with only a 7-word span (must stay), held-out arithmetic problems from activities/dataset/arithmetic-task.ts
 * (contaminated) and train-split ones (must stay).
 *
 * A = ours: the real `formatFilter` activity in a child process (its own peak RSS), with the pipeline's default
 * dedup and decontamination settings and the language and repetition filters off (it still runs its other steps and
 * writes the SFT file: more work than B). B = bench/dedup/datasketch_ref.py: MinHash + MinHashLSH insert/query as
 * datasketch's users write it, with datasketch's own bands/rows for the threshold, on the same shingles; open-r1's
 * n-gram decontamination. Each side reports processing time (no interpreter start) and peak RSS. Rounds run in ABBA
 * order, each side a fresh process per round; the raw rounds are printed.
 * Both sides are scored against the planted truth (bench/dedup/truth.ts): precision and recall on near duplicates
 * and on contaminated prompts. Exit 1 when the targets are missed: ≥ 3× speedup, ours recall ≥ 0.98 and precision
 * ≥ 0.99 on each, and the same drops in every round.
 * Python: DISTILLERY_BENCH_DEDUP_PYTHON, else ~/.cache/distillery/bench-venv-dedup (made by bench/dedup/setup.sh).
 */
import { mulberry32 } from '../../activities/dataset/arithmetic-task';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateArithmeticProblems } from '../../activities/dataset/arithmetic-task';
import { readJsonl, refOfFile } from '../../activities/artifacts/store';
import { resolveFilters } from '../../schemas/filter-options';
import { formatFilter } from '../../activities/filter/format-filter';
import { lshParams } from '../../activities/filter/minhash';
import { cacheDir, projectRoot } from '../../infra/paths';
import { envInt, median, runAbba, secondsList } from '../rounds';
import { scoreDrops, type Kind, type Truth } from './truth';

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

async function generate(
  dir: string,
  samples: number,
  seed: number,
  shingleSize: number,
): Promise<{ data: string; bench: string; truth: Map<string, Truth> }> {
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
  const base = {
    sampleIndex: 0,
    configHash: 'bench',
    answer: '1',
    finishReason: 'stop',
    usage: { promptTokens: 40, completionTokens: 200 },
    teacher: { model: 'synthetic' },
    sampling: { temperature: 0.6, top_p: 0.95, max_tokens: 4096, seed: 0 },
    latencyMs: 0,
  };
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
        if (kind === 'near')
          t.jaccard = jaccard(
            shingles(`${prompt}\n${r.join(' ')} ${src.summary.join(' ')}`, shingleSize),
            shingles(`${prompt}\n${src.reasoning.join(' ')} ${src.summary.join(' ')}`, shingleSize),
          );
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
  for await (const row of readJsonl<{ id: string; reason: string }>(r.rejectsRef))
    drops.push(`${row.id}\t${row.reason}`);
  fs.writeFileSync(arg('--out')!, drops.join('\n') + '\n');
  const card = JSON.parse(fs.readFileSync(path.join(runDir, 'filter', 'dataset-card.json'), 'utf8')) as {
    steps: { name: string; ms: number }[];
    dedup: { indexBytes: number };
  };
  const ms = Object.fromEntries(card.steps.map((s) => [s.name, Math.round(s.ms)]));
  console.log(
    JSON.stringify({
      seconds,
      maxRssMB: process.resourceUsage().maxRSS / 1024,
      docs: r.samplesIn,
      reasons: r.reasons,
      stepMs: ms,
      indexMB: card.dedup.indexBytes / 2 ** 20,
      data,
    }),
  );
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

interface OursStats extends SideStats {
  reasons: Record<string, number>;
  stepMs: Record<string, number>;
  indexMB: number;
}
interface TheirStats extends SideStats {
  bands: number;
  rows: number;
  contaminated: number;
  near_duplicate: number;
}
interface SideRun<T> {
  stats: T;
  drops: Map<string, string>;
}

const isDup = (r: string | undefined) => r === 'duplicate' || r === 'near_duplicate';
const DUP_KINDS: Kind[] = ['exact', 'near'];
const CONTAMINATED_KINDS: Kind[] = ['contaminated', 'arith_heldout'];

async function main(): Promise<void> {
  if (process.argv.includes('--worker')) return worker();
  const samples = Number(arg('--samples', String(envInt('BENCH_SAMPLES', 100_000))));
  const rounds = Number(arg('--rounds', String(envInt('BENCH_ROUNDS', 3))));
  const seed = Number(arg('--seed', '1'));
  const python = arg(
    '--python',
    process.env.DISTILLERY_BENCH_DEDUP_PYTHON ?? path.join(cacheDir(), 'bench-venv-dedup', 'bin', 'python'),
  )!;
  if (!fs.existsSync(python)) {
    console.error(`no Python with datasketch at ${python}: run \`bash bench/dedup/setup.sh\` (or pass --python)`);
    process.exit(2);
  }
  const f = resolveFilters({});
  const { bands, rows } = lshParams(f.nearDedup.threshold, f.nearDedup.numPerm);
  const dir = arg('--keep') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-bench-dedup-'));
  fs.mkdirSync(dir, { recursive: true });
  try {
    const t = performance.now();
    const g = await generate(dir, samples, seed, f.nearDedup.shingleSize);
    const ref = await refOfFile(g.data);
    const mb = fs.statSync(g.data).size / 2 ** 20;
    console.log(
      `data: ${samples} samples (${mb.toFixed(0)} MB), ${dir}; generated in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    console.log(
      `settings (pipeline defaults): threshold ${f.nearDedup.threshold}, ${f.nearDedup.numPerm} perms, ${f.nearDedup.shingleSize}-word shingles, decontamination ${f.decontaminate.ngram}-grams; ours ${bands} bands × ${rows} rows + exact Jaccard check of candidates`,
    );
    console.log(
      'A = ours (the formatFilter activity in a Node child process; it also runs the format/length/limits steps and writes the SFT file), B = datasketch MinHash + MinHashLSH as its users write it (Python child process)',
    );

    const ours = async (round: number): Promise<SideRun<OursStats>> => {
      const out = path.join(dir, `ours-${round}.drops.tsv`);
      const o = spawnSync(
        process.execPath,
        [
          __filename,
          '--worker',
          '--data',
          g.data,
          '--benchmarks',
          g.bench,
          '--run-dir',
          path.join(dir, `run-${round}`),
          '--ref',
          JSON.stringify(ref),
          '--out',
          out,
        ],
        { encoding: 'utf8', maxBuffer: 1 << 26, cwd: projectRoot },
      );
      if (o.status !== 0) throw new Error(`ours failed (${o.status}): ${o.stderr}`);
      fs.rmSync(path.join(dir, `run-${round}`), { recursive: true, force: true });
      return { stats: lastJsonLine(o.stdout) as OursStats, drops: readDrops(out) };
    };
    const theirs = async (round: number): Promise<SideRun<TheirStats>> => {
      const out = path.join(dir, `datasketch-${round}.drops.tsv`);
      const p = spawnSync(
        python,
        [
          path.join(projectRoot, 'bench', 'dedup', 'datasketch_ref.py'),
          '--data',
          g.data,
          '--benchmarks',
          g.bench,
          '--out',
          out,
          '--threshold',
          String(f.nearDedup.threshold),
          '--num-perm',
          String(f.nearDedup.numPerm),
          '--shingle',
          String(f.nearDedup.shingleSize),
          '--ngram',
          String(f.decontaminate.ngram),
          '--min-item-tokens',
          String(f.decontaminate.minItemTokens),
        ],
        { encoding: 'utf8', maxBuffer: 1 << 26 },
      );
      if (p.status !== 0) throw new Error(`datasketch failed (${p.status}): ${p.stderr}`);
      return { stats: lastJsonLine(p.stdout) as TheirStats, drops: readDrops(out) };
    };

    type RoundRun = { ours?: SideRun<OursStats>; theirs?: SideRun<TheirStats>; seconds: number };
    const results = await runAbba<RoundRun>(
      rounds,
      {
        A: async (r) => {
          const o = await ours(r);
          return { ours: o, seconds: o.stats.seconds };
        },
        B: async (r) => {
          const d = await theirs(r);
          return { theirs: d, seconds: d.stats.seconds };
        },
      },
      (r) => {
        const o = r.a.ours!.stats;
        const d = r.b.theirs!.stats;
        console.log(
          `round ${r.round} (${r.order.join(' ')}): ours ${o.seconds.toFixed(2)} s, peak RSS ${o.maxRssMB.toFixed(0)} MB, step ms ${JSON.stringify(o.stepMs)} | datasketch ${d.seconds.toFixed(2)} s, peak RSS ${d.maxRssMB.toFixed(0)} MB (${d.bands} bands × ${d.rows} rows)`,
        );
      },
    );
    const oursSeconds = results.map((r) => r.a.seconds);
    const theirSeconds = results.map((r) => r.b.seconds);
    const perRound = results.map((r) => r.b.seconds / r.a.seconds);
    const speedup = median(perRound);
    console.log(
      `ours ${Math.round(samples / median(oursSeconds))} samples/s (runs ${secondsList(oursSeconds)} s), datasketch ${Math.round(samples / median(theirSeconds))} samples/s (runs ${secondsList(theirSeconds)} s); per-round speedups ${perRound.map((x) => x.toFixed(2)).join(' ')}, median ${speedup.toFixed(2)}×`,
    );

    // Verdicts: round 1 of each side; both must be deterministic, so every round must drop the same samples.
    const od = results[0]!.a.ours!.drops;
    const td = results[0]!.b.theirs!.drops;
    const same = (a: Map<string, string>, b: Map<string, string>) =>
      a.size === b.size && [...a].every(([id, r]) => b.get(id) === r);
    const oursStable = results.every((r) => same(r.a.ours!.drops, od));
    const theirsStable = results.every((r) => same(r.b.theirs!.drops, td));
    console.log(
      `drops identical in every round: ours ${oursStable ? 'yes' : 'NO'}, datasketch ${theirsStable ? 'yes' : 'NO'}`,
    );
    console.log(
      `ours drops ${JSON.stringify(results[0]!.a.ours!.stats.reasons)}; datasketch drops ${JSON.stringify({ contaminated: results[0]!.b.theirs!.stats.contaminated, near_duplicate: results[0]!.b.theirs!.stats.near_duplicate })}`,
    );

    const oursDups = new Set([...od].filter(([, r]) => isDup(r)).map(([id]) => id));
    const theirDups = new Set([...td].filter(([, r]) => isDup(r)).map(([id]) => id));
    const both = [...oursDups].filter((id) => theirDups.has(id)).length;
    const union = oursDups.size + theirDups.size - both;
    const overlap = union ? both / union : 1;
    console.log(
      `duplicates dropped: ours ${oursDups.size}, datasketch ${theirDups.size}, both ${both}, overlap ${(overlap * 100).toFixed(2)}% (|both| / |either|)`,
    );

    // Against the planted truth.
    const near = [...g.truth.values()].filter((t) => t.kind === 'near');
    const js = near.map((t) => t.jaccard!).sort((a, b) => a - b);
    const θ = f.nearDedup.threshold;
    console.log(
      `planted: ${DUP_KINDS.map((k) => `${k} ${[...g.truth.values()].filter((t) => t.kind === k).length}`).join(', ')} (near: true Jaccard min ${js[0]?.toFixed(3)}, median ${js[js.length >> 1]?.toFixed(3)}, ${near.filter((t) => t.jaccard! < θ).length} under ${θ}), ${CONTAMINATED_KINDS.map((k) => `${k} ${[...g.truth.values()].filter((t) => t.kind === k).length}`).join(', ')}`,
    );
    const dupPositive = (t: Truth) => t.kind === 'exact' || (t.kind === 'near' && t.jaccard! >= θ);
    const dupAmbiguous = (t: Truth) => t.kind === 'near' && t.jaccard! < θ;
    const contPositive = (t: Truth) => CONTAMINATED_KINDS.includes(t.kind);
    const isCont = (r: string | undefined) => r === 'contaminated';
    const score = (drops: Map<string, string>) => ({
      dup: scoreDrops(g.truth, drops, isDup, dupPositive, dupAmbiguous),
      cont: scoreDrops(g.truth, drops, isCont, contPositive),
    });
    const so = score(od);
    const st = score(td);
    const fmt = (s: ReturnType<typeof scoreDrops>) =>
      `precision ${(s.precision * 100).toFixed(2).padStart(6)}%  recall ${(s.recall * 100).toFixed(2).padStart(6)}%  (tp ${s.tp}, fp ${s.fp}, fn ${s.fn})`;
    console.log(`near duplicates (exact copies and edits with true J ≥ ${θ}; edits under ${θ} count neither way):`);
    console.log(`  ours       ${fmt(so.dup)}; edits under ${θ} dropped: ${so.dup.ambiguousDropped}`);
    console.log(`  datasketch ${fmt(st.dup)}; edits under ${θ} dropped: ${st.dup.ambiguousDropped}`);
    console.log(
      'contaminated prompts (8–15-word benchmark spans and held-out arithmetic; 7-word spans and train arithmetic must stay):',
    );
    console.log(`  ours       ${fmt(so.cont)}`);
    console.log(`  datasketch ${fmt(st.cont)}`);
    const kept = (kind: Kind, drops: Map<string, string>) => {
      const ids = [...g.truth].filter(([, t]) => t.kind === kind).map(([id]) => id);
      return `${ids.filter((id) => !drops.has(id)).length}/${ids.length}`;
    };
    console.log(
      `kept (must stay): ${(['original', 'hard_negative', 'near_miss_7', 'arith_train'] as Kind[]).map((k) => `${k} ours ${kept(k, od)}, datasketch ${kept(k, td)}`).join('; ')}`,
    );

    // The last line's recall and precision: ours over every planted drop (near duplicates and contaminated prompts).
    const tp = so.dup.tp + so.cont.tp;
    const recall = tp / (tp + so.dup.fn + so.cont.fn);
    const precision = tp / (tp + so.dup.fp + so.cont.fp);
    const floors = { recall: 0.98, precision: 0.99, speedup: 3 };
    const ok =
      speedup >= floors.speedup &&
      [so.dup, so.cont].every((s) => s.recall >= floors.recall && s.precision >= floors.precision) &&
      oursStable;
    console.log(
      `targets: speedup ≥ ${floors.speedup}× (${speedup.toFixed(2)}×); ours recall ≥ ${floors.recall} and precision ≥ ${floors.precision} on near duplicates and on contaminated prompts; the same drops every round: ${ok ? 'met' : 'MISSED'}`,
    );
    console.log(
      `speedup=${speedup.toFixed(2)} overlap=${overlap.toFixed(4)} recall=${recall.toFixed(4)} precision=${precision.toFixed(4)}`,
    );
    if (!ok) process.exitCode = 1;
  } finally {
    if (!arg('--keep')) fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
