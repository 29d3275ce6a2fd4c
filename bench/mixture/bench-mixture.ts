import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { pathOf, readJsonl } from '../../activities/artifacts/store';
import type { SftRow } from '../../activities/filter/output';
import { startTeacherServer } from '../../infra/teacher/server';
import type { RunSummary } from '../../workflows/distillation';
import { startTestTemporal } from '../../test/helpers/stack';
import { envInt } from '../rounds';

/**
 * bench:mixture — does the non-reasoning share protect the second skill without costing the first? Two tiny
 * students (the project's byte-level GPT) are distilled by the real workflow on a local Temporal dev server, from
 * the same teacher (the procedural one, which answers both tasks with its set error rate):
 *
 *   A = the reasoning source alone: builtin arithmetic, math verifier, <think> required;
 *   B = the same reasoning source plus a non-reasoning one (numbers in words, the teacher's answers, exact verifier,
 *       no <think>) at weights 0.75 / 0.25 (R1's 3 : 1).
 *
 * Both train for the same number of steps (the same compute; B sees fewer arithmetic rows per step) and are scored on
 * both held-out splits (arithmetic and number-words), pass@1 over k samples ± one standard error across items.
 * Knobs: BENCH_ARITH (prompts, 1200), BENCH_WORDS (prompts, 600), BENCH_STEPS (300), BENCH_EVAL (items per task, 80).
 */
const ARITH = envInt('BENCH_ARITH', 1200);
const WORDS = envInt('BENCH_WORDS', 600);
const STEPS = envInt('BENCH_STEPS', 300);
const EVAL = envInt('BENCH_EVAL', 80);

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const t = await startTestTemporal('bench-mixture');
  const teacher = await startTeacherServer({ port: 0 });
  try {
    await t.startCpuWorker();
    await t.startGpuWorker();
    const arith = {
      name: 'arith',
      kind: 'reasoning',
      source: { type: 'builtin', task: 'arithmetic', count: ARITH, seed: 1 },
      verifier: 'math',
    };
    const words = {
      name: 'words',
      kind: 'non-reasoning',
      source: { type: 'builtin', task: 'number-words', count: WORDS, seed: 1 },
      verifier: 'exact',
      sampling: { n: 1 },
    };
    const base = {
      teacher: { baseURL: teacher.url, model: 'procedural-arithmetic-teacher', concurrency: 8 },
      sampling: { n: 2, temperature: 0.6, top_p: 0.95, max_tokens: 256, seed: 7 },
      verifier: { type: 'math', keepPerPrompt: 1 },
      filters: { maxChars: 2000 },
      fineTune: { epochs: 50, maxSteps: STEPS, batchSize: 16, lr: 0.002, checkpointEvery: 1000, seed: 0 },
      evaluation: {
        benchmark: { type: 'builtin', task: 'arithmetic', count: EVAL, seed: 2 },
        benchmarks: [{ type: 'builtin', task: 'number-words', count: EVAL, seed: 2 }],
        k: 2,
        maxNewTokens: 160,
        baseline: false,
        report: false,
      },
      generation: { shardSize: 200, maxShardsInFlight: 2 },
      artifactRoot: path.join(t.tmp, 'artifacts'),
    };
    const arms = [
      { label: 'A reasoning only', spec: { ...base, name: 'reasoning-only', datasets: [arith] } },
      {
        label: 'B mix 0.75/0.25',
        spec: {
          ...base,
          name: 'mix',
          datasets: [
            { ...arith, weight: 0.75 },
            { ...words, weight: 0.25 },
          ],
          mixing: { seed: 1 },
        },
      },
    ];
    const lines: string[] = [];
    for (const arm of arms) {
      const t0 = Date.now();
      const summary = (await t.client.workflow.execute('distillationWorkflow', {
        taskQueue: 'distillery',
        workflowId: `bench-${arm.spec.name}-${Date.now()}`,
        args: [arm.spec],
      })) as RunSummary;
      const rows: Record<string, number> = {};
      for await (const r of readJsonl<SftRow>(pathOf(summary.artifacts.sft!)))
        rows[r.source ?? '?'] = (rows[r.source ?? '?'] ?? 0) + 1;
      const ev = JSON.parse(readFileSync(pathOf(summary.artifacts.evalSummary!), 'utf8')) as {
        k: number;
        benchmarks: {
          name: string;
          items: number;
          scores: { name: string; pass1: { mean: number; stderr: number } }[];
        }[];
      };
      const scores = ev.benchmarks.map((b) => {
        const s = b.scores.find((x) => x.name === 'student')!;
        return `${b.name} pass@1 ${(100 * s.pass1.mean).toFixed(1)}% ± ${(100 * s.pass1.stderr).toFixed(1)} (${b.items} items × k=${ev.k})`;
      });
      const line = `${arm.label}: SFT rows ${JSON.stringify(rows)}, ${summary.fineTune.steps} steps, final loss ${summary.fineTune.finalLoss?.toFixed(3)}; ${scores.join('; ')}; ${((Date.now() - t0) / 1000).toFixed(0)} s`;
      console.log(line);
      lines.push(line);
    }
  } finally {
    await teacher.close();
    await t.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
