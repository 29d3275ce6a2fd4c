/**
 * @jest-environment ./test/helpers/outer-realm-env.js
 */
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startTeacherServer } from '../../infra/teacher/server';
import { findTemporalCli } from '../../infra/temporal';
import { pathOf, readJsonl } from '../../activities/artifacts/store';
import { generateNumberWordsProblems, numberToWords } from '../../activities/dataset/number-words-task';
import type { DatasetCard } from '../../activities/filter/card';
import type { SftRow } from '../../activities/filter/output';
import type { PromptRow, RejectRow, SampleRow } from '../../schemas/artifact';
import type { RunSummary } from '../../workflows/distillation';
import { startTestTemporal, type TestTemporal } from '../helpers/stack';

/**
 * R1's two kinds of data in one run, on a real Temporal dev server with real workers and a real HTTP teacher:
 * a reasoning source (builtin arithmetic, teacher samples, math verifier) and a non-reasoning one (numbers in words,
 * responses already in the data, no verifier), mixed 0.75 / 0.25 into one SFT set.
 */

let t: TestTemporal;
let teacher: Awaited<ReturnType<typeof startTeacherServer>>;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  t = await startTestTemporal('mixture');
  teacher = await startTeacherServer({ port: 0 });
  await t.startCpuWorker();
  await t.startGpuWorker();
});

afterAll(async () => {
  await teacher?.close();
  await t?.close();
});

async function rows<T>(file: string): Promise<T[]> {
  const out: T[] = [];
  for await (const r of readJsonl<T>(file)) out.push(r);
  return out;
}

function bySource<T>(items: T[], sourceOf: (x: T) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of items) {
    const s = sourceOf(x) ?? '(none)';
    out[s] = (out[s] ?? 0) + 1;
  }
  return out;
}

test('two sources mixed 0.75 / 0.25: the SFT mix is within one sample of the weights, every stage accounts per source, the card and report show both funnels', async () => {
  // The non-reasoning source: existing responses, plus one row without a response and one answered with reasoning.
  const words = generateNumberWordsProblems({ seed: 5, count: 40, split: 'train' });
  const lines = words.map((p, i) => {
    if (i === 3) return { id: p.id, prompt: p.prompt, answer: p.answer };
    if (i === 7)
      return { id: p.id, prompt: p.prompt, answer: p.answer, response: `<think>\nspell it out\n</think>\n${p.answer}` };
    return {
      id: p.id,
      prompt: p.prompt,
      answer: p.answer,
      response: numberToWords(Number(p.id.slice('words-'.length))),
    };
  });
  const wordsFile = path.join(t.tmp, 'words.jsonl');
  await fs.writeFile(wordsFile, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');

  const spec = {
    name: 'mixture',
    datasets: [
      {
        name: 'arith',
        kind: 'reasoning',
        source: { type: 'builtin', task: 'arithmetic', count: 40, seed: 1 },
        verifier: 'math',
        weight: 0.75,
      },
      {
        name: 'words',
        kind: 'non-reasoning',
        source: { type: 'jsonl', path: wordsFile, fields: { response: 'response' } },
        responses: 'existing',
        verifier: 'none',
        weight: 0.25,
      },
    ],
    mixing: { seed: 11 },
    teacher: { baseURL: teacher.url, model: 'procedural-arithmetic-teacher', concurrency: 4 },
    sampling: { n: 2, temperature: 1.0, top_p: 0.95, max_tokens: 200, seed: 3 },
    verifier: { type: 'math', keepPerPrompt: 2 },
    fineTune: {
      epochs: 1,
      batchSize: 8,
      maxSteps: 4,
      checkpointEvery: 50,
      model: { dModel: 32, nLayer: 1, nHead: 2, maxLen: 128 },
      export: { onnx: true, gguf: false },
    },
    evaluation: {
      benchmark: { type: 'builtin', task: 'arithmetic', count: 6, seed: 2 },
      benchmarks: [{ type: 'builtin', task: 'number-words', count: 6 }],
      k: 1,
      maxNewTokens: 40,
      gate: { minImprovement: 0, maxRegression: 1 },
    },
    generation: { shardSize: 20, maxShardsInFlight: 2 },
    timeouts: { heartbeatSeconds: 10 },
    artifactRoot: path.join(t.tmp, 'artifacts'),
  };
  const workflowId = `mixture-${Date.now()}`;
  const handle = await t.client.workflow.start('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId,
    args: [spec],
  });
  const summary = (await handle.result()) as RunSummary;
  const dir = summary.runDir;

  // The SFT file: the mix within one sample of the weights, both sources present, ids unique.
  const sft = await rows<SftRow>(pathOf(summary.artifacts.sft!));
  const n = bySource(sft, (r) => r.source);
  const total = sft.length;
  expect(Object.keys(n).sort()).toEqual(['arith', 'words']);
  expect(Math.abs(n.arith! - 0.75 * total)).toBeLessThanOrEqual(1);
  expect(Math.abs(n.words! - 0.25 * total)).toBeLessThanOrEqual(1);
  expect(new Set(sft.map((r) => r.id)).size).toBe(total);
  // The final order is shuffled, not one source after the other.
  const firstWords = sft.findIndex((r) => r.source === 'words');
  expect(firstWords).toBeLessThan(n.arith!);

  // Per-source accounting, counted here from the stages' files.
  const prompts = bySource(await rows<PromptRow>(path.join(dir, 'prepare', 'prompts.jsonl')), (r) => r.source);
  const quarantine = await rows<RejectRow>(path.join(dir, 'prepare', 'quarantine.jsonl'));
  const samples = await rows<SampleRow>(path.join(dir, 'generate', 'samples.jsonl'));
  const accepted = bySource(await rows<SampleRow>(path.join(dir, 'verify', 'accepted.jsonl')), (r) => r.source);
  const verifyRejects = bySource(await rows<RejectRow>(path.join(dir, 'verify', 'rejects.jsonl')), (r) => r.source);
  const kept = bySource(await rows<SftRow>(path.join(dir, 'filter', 'kept.jsonl')), (r) => r.source);
  const filterRejectRows = await rows<RejectRow>(path.join(dir, 'filter', 'rejects.jsonl'));
  const filterRejects = bySource(filterRejectRows, (r) => r.source);
  const generated = bySource(samples, (r) => r.source);
  expect(prompts).toEqual({ arith: 40, words: 39 });
  expect(quarantine.map((q) => [q.source, q.reason])).toEqual([['words', 'bad_response']]);
  expect(generated).toEqual({ arith: 80, words: 39 });
  for (const s of ['arith', 'words']) {
    expect((accepted[s] ?? 0) + (verifyRejects[s] ?? 0)).toBe(generated[s]);
    expect((kept[s] ?? 0) + (filterRejects[s] ?? 0)).toBe(accepted[s]);
  }
  expect(verifyRejects.arith).toBeGreaterThan(0); // temperature 1: the math verifier really rejects some
  expect(verifyRejects.words).toBeUndefined(); // verifier none
  expect(filterRejectRows.filter((r) => r.reason === 'unexpected_think').map((r) => r.source)).toEqual(['words']);

  // The non-reasoning source never reached the teacher: its samples are the responses in the file.
  const wordSamples = samples.filter((s) => s.source === 'words');
  expect(
    wordSamples.every(
      (s) =>
        s.teacher.model === 'existing' && s.content === lines.find((l) => `words/${l.id}` === s.promptId)!.response,
    ),
  ).toBe(true);

  // The card shows both funnels with the numbers counted above, and the achieved mix next to the target.
  const card = JSON.parse(readFileSync(path.join(dir, 'filter', 'dataset-card.json'), 'utf8')) as DatasetCard;
  const funnels = Object.fromEntries(card.mixture!.sources.map((f) => [f.name, f]));
  for (const s of ['arith', 'words']) {
    expect(funnels[s]!.prepare.kept).toBe(prompts[s]);
    expect(funnels[s]!.verify).toMatchObject({ in: generated[s], kept: accepted[s], rejected: verifyRejects[s] ?? 0 });
    expect(funnels[s]!.filter).toMatchObject({ in: accepted[s], kept: kept[s], rejected: filterRejects[s] ?? 0 });
    expect(funnels[s]!.mix.final).toBe(n[s]);
    expect(funnels[s]!.mix.achievedShare).toBeCloseTo(n[s]! / total);
  }
  const md = readFileSync(path.join(dir, 'filter', 'dataset-card.md'), 'utf8');
  expect(md).toContain('### Funnel of arith (reasoning; verifier math; think required; responses teacher)');
  expect(md).toContain('### Funnel of words (non-reasoning; verifier none; think none; responses existing)');
  expect(md).toContain('achieved share');

  // The report shows the sources; both held-out tasks were scored.
  const html = readFileSync(pathOf(summary.artifacts.reportHtml!), 'utf8');
  expect(html).toContain('id="sources"');
  const evalSummary = readFileSync(pathOf(summary.artifacts.evalSummary!), 'utf8');
  expect(evalSummary).toContain('number-words-heldout');
  expect(evalSummary).toContain('arithmetic-2digit-heldout');

  if (process.env.DISTILLERY_RECORD_HISTORY) {
    // A mixture's history, replayed by test/integration/replay.test.ts against later workflow code.
    const json = execFileSync(findTemporalCli(), [
      'workflow',
      'show',
      '--workflow-id',
      workflowId,
      '--address',
      t.server.address,
      '--output',
      'json',
    ]);
    await fs.writeFile(path.join(__dirname, '..', 'fixtures', 'distillation-history-mixture.json'), json);
  }
});
