/**
 * `npm run bench:verify`: our math verifier against math-verify (HuggingFace, Python, from PyPI) in one run, on the
 * same labelled corpus (test/verify/make-corpus.mjs, built into a temp dir): agreement with the labels and answers
 * per second for each. The last line is exactly
 *
 *   speedup=<ours/math-verify answers per second> accuracy=<ours> mathverify_accuracy=<theirs>
 *
 *   node dist/bench/verify/bench-verify.js [--bench-dir DIR] [--passes N] [--mv-passes N] [--python PY] [--keep FILE]
 *
 * Both sides verify the first 20 rows once untimed (JIT / lazy grammar warm-up), then each timed pass verifies every
 * row; ours clears its parse caches before every pass, so a pass never profits from the one before. Throughput is
 * rows / median pass time. Exit 1 when the targets (≥ 10× and accuracy ≥ math-verify's) are missed.
 * Python: DISTILLERY_BENCH_PYTHON, else ~/.cache/distillery/bench-venv (made by bench/verify/setup.sh).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clearMathCaches, verifyMath } from '../../activities/verify/math';
import { cacheDir, projectRoot } from '../../infra/paths';

interface Row {
  response: string;
  gold: string;
  label: boolean;
  category: string;
}

interface Side {
  accuracy: number;
  agree: number;
  rows: number;
  seconds: number;
  answersPerSecond: number;
  passes: number;
}

function arg(name: string, fallback?: string): string | undefined {
  const k = process.argv.indexOf(name);
  return k >= 0 ? process.argv[k + 1] : fallback;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function ours(rows: Row[], passes: number): Side & { misses: string[] } {
  for (const r of rows.slice(0, 20)) verifyMath(r.response, r.gold);
  const times: number[] = [];
  let verdicts: boolean[] = [];
  for (let p = 0; p < passes; p++) {
    clearMathCaches();
    const t0 = process.hrtime.bigint();
    const out = rows.map((r) => verifyMath(r.response, r.gold).verdict === 'correct');
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    if (p === 0) verdicts = out;
  }
  const agree = rows.filter((r, k) => verdicts[k] === r.label).length;
  const seconds = median(times);
  const misses = rows.filter((r, k) => verdicts[k] !== r.label).map((r) => `[${r.category}] label=${r.label} gold=${JSON.stringify(r.gold)}`);
  return { accuracy: agree / rows.length, agree, rows: rows.length, seconds, answersPerSecond: rows.length / seconds, passes, misses };
}

function main(): void {
  const benchDir = arg('--bench-dir', process.env.DISTILLERY_BENCHMARKS ?? path.join(projectRoot, '..', 'shared', 'data', 'benchmarks'))!;
  const passes = Number(arg('--passes', '5'));
  const mvPasses = Number(arg('--mv-passes', '1'));
  const python = arg('--python', process.env.DISTILLERY_BENCH_PYTHON ?? path.join(cacheDir(), 'bench-venv', 'bin', 'python'))!;
  if (!fs.existsSync(python)) {
    console.error(`no Python with math-verify at ${python}: run \`bash bench/verify/setup.sh\` (or pass --python)`);
    process.exit(2);
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-bench-verify-'));
  const corpus = arg('--keep') ?? path.join(tmp, 'math-corpus.jsonl');
  try {
    execFileSync(process.execPath, [path.join(projectRoot, 'test', 'verify', 'make-corpus.mjs'), benchDir, '--out', corpus], { stdio: ['ignore', 'ignore', 'inherit'] });
    const rows = fs
      .readFileSync(corpus, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Row);
    const positives = rows.filter((r) => r.label).length;
    console.log(`corpus: ${rows.length} labelled rows (${positives} true, ${rows.length - positives} false), golds from ${benchDir}`);

    const a = ours(rows, passes);
    console.log(
      `ours        accuracy ${(100 * a.accuracy).toFixed(2)}% (${a.agree}/${a.rows})  ${a.answersPerSecond.toFixed(0)} answers/s  (median of ${a.passes} cold passes: ${a.seconds.toFixed(3)} s)`,
    );
    for (const m of a.misses) console.log(`  ours missed ${m}`);

    const py = spawnSync(python, [path.join(projectRoot, 'bench', 'verify', 'mathverify_bench.py'), corpus, '--passes', String(mvPasses)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (py.status !== 0) {
      console.error(`math-verify side failed (exit ${py.status}):\n${py.stderr}`);
      process.exit(2);
    }
    const mv = JSON.parse(py.stdout.trim().split('\n').at(-1)!) as {
      rows: number;
      agree: number;
      accuracy: number;
      seconds: number;
      answers_per_second: number;
      versions: Record<string, string>;
      misses_by_category: Record<string, number>;
    };
    if (mv.rows !== rows.length) throw new Error(`math-verify saw ${mv.rows} rows, we saw ${rows.length}`);
    const versions = Object.entries(mv.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(
      `math-verify accuracy ${(100 * mv.accuracy).toFixed(2)}% (${mv.agree}/${mv.rows})  ${mv.answers_per_second.toFixed(0)} answers/s  (median of ${mvPasses} pass${mvPasses > 1 ? 'es' : ''}: ${mv.seconds.toFixed(3)} s; ${versions})`,
    );
    console.log(`  math-verify misses by category: ${JSON.stringify(mv.misses_by_category)}`);

    const speedup = a.answersPerSecond / mv.answers_per_second;
    const ok = speedup >= 10 && a.accuracy >= mv.accuracy;
    console.log(`targets: speedup ≥ 10× ${speedup >= 10 ? 'met' : 'MISSED'}; accuracy ≥ math-verify's ${a.accuracy >= mv.accuracy ? 'met' : 'MISSED'}`);
    console.log(`speedup=${speedup.toFixed(1)} accuracy=${a.accuracy.toFixed(4)} mathverify_accuracy=${mv.accuracy.toFixed(4)}`);
    if (!ok) process.exitCode = 1;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main();
