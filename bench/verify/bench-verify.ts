/**
 * `npm run bench:verify`: our math verifier against math-verify (HuggingFace, Python, from PyPI) in one run, on the
 * same labelled corpus (test/verify/make-corpus.mjs, built into a temp dir). The last line is exactly
 *
 *   speedup=<ours/math-verify answers per second, cold regime> accuracy=<ours> mathverify_accuracy=<theirs>
 *
 *   node dist/bench/verify/bench-verify.js [--bench-dir DIR] [--rounds N] [--python PY] [--keep FILE]
 *   (BENCH_ROUNDS=N does the same as --rounds; default 3)
 *
 * Both sides do the same work in the same regime and the same number of passes:
 *   cold    every row verified with no cache keyed by another row's text: ours clears its parse and compile caches
 *           before each row, math-verify its parse caches (bench/verify/mathverify_bench.py);
 *   cached  caches live for one pass over the corpus (846 rows share about 290 golds): ours keeps its caches,
 *           math-verify memoises each distinct gold's parse; both start the pass empty.
 * Each round runs one pass of each regime on each side, the sides in ABBA order (math-verify in a long-lived Python
 * process, so no interpreter start is timed); only the verification of each row is timed, never the cache clearing.
 * Both verify the first 20 rows once untimed first. The speedup is the median over rounds of the round's math-verify
 * seconds ÷ ours (the same regime); throughput is rows / median pass time; the raw passes are printed.
 * Accuracy (agreement with the labels) is printed per category, and apart on the rows whose label is a policy
 * choice of ours (bench/verify/policy.ts), since there a grader with another policy is not wrong.
 * Exit 1 when the targets are missed: ≥ 10× in the cold regime, and accuracy on the rows without a policy question
 * at least math-verify's.
 * Python: DISTILLERY_BENCH_PYTHON, else ~/.cache/distillery/bench-venv (made by bench/verify/setup.sh).
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { clearMathCaches, verifyMath } from '../../activities/verify/math';
import { cacheDir, projectRoot } from '../../infra/paths';
import { envInt, median, runAbba, secondsList } from '../rounds';
import { POLICY_REASONS, policyReason, type CorpusRow, type PolicyReason } from './policy';

type Regime = 'cold' | 'cached';
const REGIMES: Regime[] = ['cold', 'cached'];

interface Pass {
  seconds: number;
  verdicts: boolean[];
}
type RoundResult = Record<Regime, Pass>;

function arg(name: string, fallback?: string): string | undefined {
  const k = process.argv.indexOf(name);
  return k >= 0 ? process.argv[k + 1] : fallback;
}

function oursPass(rows: CorpusRow[], regime: Regime): Pass {
  clearMathCaches();
  let ns = 0n;
  const verdicts: boolean[] = [];
  for (const r of rows) {
    if (regime === 'cold') clearMathCaches();
    const t0 = process.hrtime.bigint();
    const v = verifyMath(r.response, r.gold).verdict === 'correct';
    ns += process.hrtime.bigint() - t0;
    verdicts.push(v);
  }
  return { seconds: Number(ns) / 1e9, verdicts };
}

/** math-verify in one Python process for the whole benchmark: one JSON command per line, one JSON answer per line. */
class MathVerifyProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  constructor(python: string, corpus: string) {
    this.child = spawn(python, [path.join(projectRoot, 'bench', 'verify', 'mathverify_bench.py'), corpus], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async next<T>(): Promise<T> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`math-verify process ended (exit ${this.child.exitCode}):\n${this.stderr}`);
    const msg = JSON.parse(value) as T & { error?: string };
    if (msg.error) throw new Error(`math-verify process: ${msg.error}`);
    return msg;
  }

  async pass(regime: Regime): Promise<Pass> {
    this.child.stdin.write(JSON.stringify({ cmd: 'pass', regime }) + '\n');
    return this.next<Pass>();
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end(JSON.stringify({ cmd: 'quit' }) + '\n');
    await exited;
  }
}

const pct = (k: number, n: number) => (n ? `${((100 * k) / n).toFixed(2)}%` : '—');

function agreement(
  rows: CorpusRow[],
  verdicts: boolean[],
  keep: (r: CorpusRow, k: number) => boolean,
): { agree: number; n: number } {
  let agree = 0;
  let n = 0;
  rows.forEach((r, k) => {
    if (!keep(r, k)) return;
    n++;
    if (verdicts[k] === r.label) agree++;
  });
  return { agree, n };
}

/** Rows on which the verdicts of two passes of the same side differ (a grader should be deterministic). */
function unstableRows(passes: Pass[]): number {
  const first = passes[0]!.verdicts;
  return first.filter((v, k) => passes.some((p) => p.verdicts[k] !== v)).length;
}

async function main(): Promise<void> {
  const benchDir = arg(
    '--bench-dir',
    process.env.DISTILLERY_BENCHMARKS ?? path.join(projectRoot, '..', 'shared', 'data', 'benchmarks'),
  )!;
  const rounds = Number(arg('--rounds', String(envInt('BENCH_ROUNDS', 3))));
  const python = arg(
    '--python',
    process.env.DISTILLERY_BENCH_PYTHON ?? path.join(cacheDir(), 'bench-venv', 'bin', 'python'),
  )!;
  if (!fs.existsSync(python)) {
    console.error(`no Python with math-verify at ${python}: run \`bash bench/verify/setup.sh\` (or pass --python)`);
    process.exit(2);
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-bench-verify-'));
  const corpus = arg('--keep') ?? path.join(tmp, 'math-corpus.jsonl');
  let mv: MathVerifyProcess | undefined;
  try {
    execFileSync(
      process.execPath,
      [path.join(projectRoot, 'test', 'verify', 'make-corpus.mjs'), benchDir, '--out', corpus],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const rows = fs
      .readFileSync(corpus, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as CorpusRow);
    const positives = rows.filter((r) => r.label).length;
    const golds = new Set(rows.map((r) => r.gold)).size;
    console.log(
      `corpus: ${rows.length} labelled rows (${positives} true, ${rows.length - positives} false, ${golds} distinct golds), golds from ${benchDir}`,
    );

    mv = new MathVerifyProcess(python, corpus);
    const ready = await mv.next<{ rows: number; versions: Record<string, string> }>();
    if (ready.rows !== rows.length) throw new Error(`math-verify read ${ready.rows} rows, we read ${rows.length}`);
    for (const r of rows.slice(0, 20)) verifyMath(r.response, r.gold);
    const versions = Object.entries(ready.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(`A = ours (verifyMath, Node ${process.version}); B = math-verify (${versions})`);
    console.log(
      `${rounds} rounds in ABBA order; each side runs one cold and one cached pass per round; seconds = sum of per-row verification times`,
    );

    const m = mv;
    const results = await runAbba<RoundResult>(
      rounds,
      {
        A: async () => ({ cold: oursPass(rows, 'cold'), cached: oursPass(rows, 'cached') }),
        B: async () => ({ cold: await m.pass('cold'), cached: await m.pass('cached') }),
      },
      (r) =>
        console.log(
          `round ${r.round} (${r.order.join(' ')}): ours cold ${r.a.cold.seconds.toFixed(3)} s, cached ${r.a.cached.seconds.toFixed(3)} s | math-verify cold ${r.b.cold.seconds.toFixed(3)} s, cached ${r.b.cached.seconds.toFixed(3)} s`,
        ),
    );

    const speedups = {} as Record<Regime, number>;
    for (const regime of REGIMES) {
      const a = results.map((r) => r.a[regime].seconds);
      const b = results.map((r) => r.b[regime].seconds);
      const perRound = results.map((r) => r.b[regime].seconds / r.a[regime].seconds);
      speedups[regime] = median(perRound);
      console.log(
        `${regime.padEnd(6)} ours ${(rows.length / median(a)).toFixed(0)} answers/s (passes ${secondsList(a)} s), math-verify ${(rows.length / median(b)).toFixed(1)} answers/s (passes ${secondsList(b)} s); per-round speedups ${perRound.map((x) => x.toFixed(1)).join(' ')}, median ${speedups[regime].toFixed(1)}×`,
      );
    }

    // Verdicts: the first cold pass of each side; a grader whose verdicts change between passes is reported.
    const ours = results[0]!.a.cold.verdicts;
    const theirs = results[0]!.b.cold.verdicts;
    const oursUnstable = unstableRows(results.flatMap((r) => REGIMES.map((g) => r.a[g])));
    const theirsUnstable = unstableRows(results.flatMap((r) => REGIMES.map((g) => r.b[g])));
    console.log(
      `verdicts that changed between passes: ours ${oursUnstable} rows, math-verify ${theirsUnstable} rows (accuracy below is from each side's first cold pass)`,
    );

    const categories = [...new Set(rows.map((r) => r.category))].sort();
    console.log(`accuracy by category (rows: ours | math-verify):`);
    for (const c of categories) {
      const a = agreement(rows, ours, (r) => r.category === c);
      const b = agreement(rows, theirs, (r) => r.category === c);
      console.log(
        `  ${c.padEnd(18)} ${String(a.n).padStart(4)}  ${pct(a.agree, a.n).padStart(7)} | ${pct(b.agree, b.n).padStart(7)}`,
      );
    }
    const reasons = rows.map(policyReason);
    const policy = (want: PolicyReason | 'any' | 'none') => (_: CorpusRow, k: number) => {
      const why = reasons[k];
      return want === 'any' ? why !== null : want === 'none' ? why === null : why === want;
    };
    console.log(`rows whose label is a policy choice of ours (bench/verify/policy.ts; not accuracy):`);
    for (const why of [...POLICY_REASONS, 'any'] as const) {
      const a = agreement(rows, ours, policy(why));
      const b = agreement(rows, theirs, policy(why));
      console.log(
        `  ${(why === 'any' ? 'all policy rows' : why).padEnd(22)} ${String(a.n).padStart(4)}  ours ${pct(a.agree, a.n).padStart(7)} | math-verify ${pct(b.agree, b.n).padStart(7)}`,
      );
    }
    const plainA = agreement(rows, ours, policy('none'));
    const plainB = agreement(rows, theirs, policy('none'));
    console.log(
      `rows without a policy question: ${plainA.n}; ours ${pct(plainA.agree, plainA.n)} (${plainA.agree}), math-verify ${pct(plainB.agree, plainB.n)} (${plainB.agree})`,
    );
    rows.forEach((r, k) => {
      if (ours[k] !== r.label)
        console.log(
          `  ours missed [${r.category}${reasons[k] ? `, policy: ${reasons[k]}` : ''}] label=${r.label} gold=${JSON.stringify(r.gold)}`,
        );
    });
    rows.forEach((r, k) => {
      if (theirs[k] !== r.label)
        console.log(
          `  math-verify missed [${r.category}${reasons[k] ? `, policy: ${reasons[k]}` : ''}] label=${r.label} gold=${JSON.stringify(r.gold)}`,
        );
    });

    const all = agreement(rows, ours, () => true);
    const allB = agreement(rows, theirs, () => true);
    const speedup = speedups.cold;
    const fast = speedup >= 10;
    const accurate = plainA.agree / plainA.n >= plainB.agree / plainB.n;
    console.log(
      `targets: speedup (cold) ≥ 10× ${fast ? 'met' : 'MISSED'}; accuracy on rows without a policy question ≥ math-verify's ${accurate ? 'met' : 'MISSED'}`,
    );
    console.log(
      `speedup=${speedup.toFixed(1)} accuracy=${(all.agree / all.n).toFixed(4)} mathverify_accuracy=${(allB.agree / allB.n).toFixed(4)}`,
    );
    if (!fast || !accurate) process.exitCode = 1;
  } finally {
    await mv?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
