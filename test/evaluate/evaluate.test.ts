/**
 * @jest-environment ./test/helpers/outer-realm-env.js
 */
/**
 * The evaluate activity end to end on a real (untrained, tiny) ONNX student in onnxruntime-node: the primary
 * builtin benchmark plus a file benchmark, the result shapes the workflow reads, the new metrics, and that two
 * models asked with the same randomness are scored on the same samples. Needs the trainer's venv (`npm run setup`)
 * to export the model, like test/finetune/onnx-parity.test.ts.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathOf, readJsonl, writeJsonAtomic } from '../../activities/artifacts/store';
import { createEvaluate, type EvaluateResult } from '../../activities/evaluate/evaluate';
import { EvaluationSchema } from '../../schemas/run-spec';
import { exportInitialModel, sftRunDir } from '../helpers/trainer-fixture';

const MAX_LEN = 128;

describe('evaluate activity', () => {
  let runDir = '';
  let modelDir = '';
  let result: EvaluateResult;
  const evaluation = EvaluationSchema.parse({
    benchmark: { type: 'builtin', task: 'arithmetic', count: 12, seed: 0 },
    k: 2,
    maxNewTokens: 12,
    seed: 3,
  });
  let gpqa = '';

  beforeAll(async () => {
    ({ runDir } = await sftRunDir(4));
    const config = path.join(runDir, 'config.json');
    await writeJsonAtomic(config, {
      data: path.join(runDir, 'filter', 'sft.jsonl'),
      output_dir: path.join(runDir, 'out'),
      model: { d_model: 32, n_layer: 1, n_head: 2, max_len: MAX_LEN },
      seed: 7,
    });
    modelDir = path.join(runDir, 'model');
    exportInitialModel(config, modelDir);
    gpqa = path.join(runDir, 'mini-gpqa.jsonl');
    fs.writeFileSync(
      gpqa,
      [
        { question: 'Pick one.', choices: ['a', 'b', 'c', 'd'], answer: 'A' },
        {
          question: `A question far longer than the student's ${MAX_LEN}-token context: ${'blah '.repeat(40)}`,
          choices: ['a', 'b', 'c', 'd'],
          answer: 'B',
        },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n',
    );
    const evaluate = createEvaluate({ threads: 1 });
    result = await evaluate({
      runDir,
      evaluation,
      models: [
        { name: 'baseline', dir: modelDir },
        { name: 'student', dir: modelDir },
      ],
      maxLen: MAX_LEN,
      benchmarks: [{ type: 'gpqa', path: gpqa, name: 'mini-gpqa', instruction: '' }],
    });
  });
  afterAll(() => fs.rmSync(runDir, { recursive: true, force: true }));

  test('the primary benchmark keeps the result shape the workflow reads', () => {
    expect(result.benchmark).toBe('arithmetic-2digit-heldout');
    expect(result.items).toBe(12);
    expect(result.k).toBe(2);
    expect(result.seed).toBe(3);
    expect(result.scores.map((s) => s.name)).toEqual(['baseline', 'student']);
    for (const s of result.scores) {
      expect(s.samples).toBe(24);
      expect(s.pass1).toEqual({ mean: expect.any(Number), stderr: expect.any(Number) });
      expect(s.answerChars.mean).toBeGreaterThan(0);
      expect(Object.keys(s.metrics!.passAtK)).toEqual(['1', '2']);
      expect(s.metrics!.consAtK).toEqual({ mean: expect.any(Number), stderr: expect.any(Number) });
      expect(Object.keys(s.metrics!.byDifficulty).length).toBeGreaterThan(0);
      expect(s.metrics!.answerChars.p90).toBeGreaterThanOrEqual(s.metrics!.answerChars.median);
      expect(Object.values(s.verdicts!).reduce((a, b) => a + b, 0)).toBe(24);
    }
    expect(result.benchmarks!.map((b) => [b.name, b.task, b.items])).toEqual([
      ['arithmetic-2digit-heldout', 'math', 12],
      ['mini-gpqa', 'choice', 2],
    ]);
  });

  test('same model, same randomness: baseline and student are scored on identical samples', async () => {
    const [a, b] = result.scores;
    expect({ ...a, name: 'x' }).toEqual({ ...b, name: 'x' });
    const rows: {
      model: string;
      benchmark: string;
      itemId: string;
      sampleIndex: number;
      response: string;
      difficulty?: number;
    }[] = [];
    for await (const r of readJsonl<(typeof rows)[number]>(result.results)) rows.push(r);
    expect(rows).toHaveLength(2 * (12 + 2) * 2);
    const key = (r: (typeof rows)[number]) => `${r.benchmark}|${r.itemId}|${r.sampleIndex}`;
    const base = new Map(rows.filter((r) => r.model === 'baseline').map((r) => [key(r), r.response]));
    for (const r of rows.filter((x) => x.model === 'student')) expect(r.response).toBe(base.get(key(r)));
    // arithmetic rows carry their difficulty (carries), the file benchmark's none
    expect(
      rows.filter((r) => r.benchmark === 'arithmetic-2digit-heldout').every((r) => typeof r.difficulty === 'number'),
    ).toBe(true);
    expect(rows.filter((r) => r.benchmark === 'mini-gpqa').every((r) => r.difficulty === undefined)).toBe(true);
  });

  test('a prompt longer than the context is scored as no answer (prompt_too_long), not a crash', () => {
    const g = result.benchmarks![1]!.scores[0]!;
    expect(g.verdicts!.prompt_too_long).toBe(2); // one item × k = 2
    expect(g.samples).toBe(4);
  });

  test('summary.json holds every benchmark; a rerun writes byte-identical results', async () => {
    const summary = JSON.parse(fs.readFileSync(pathOf(result.summary), 'utf8'));
    expect(summary.benchmark).toBe('arithmetic-2digit-heldout');
    expect(summary.benchmarks.map((b: { name: string }) => b.name)).toEqual(['arithmetic-2digit-heldout', 'mini-gpqa']);
    const again = await createEvaluate({ threads: 1 })({
      runDir: path.join(runDir, 'again'),
      evaluation,
      models: [{ name: 'student', dir: modelDir }],
      maxLen: MAX_LEN,
    });
    const sha = (rows: string[]) => createHash('sha256').update(rows.join('\n')).digest('hex');
    const lines = (f: string) =>
      fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"model":"student"') && l.includes('arithmetic-2digit-heldout'));
    expect(sha(lines(pathOf(again.results)))).toBe(sha(lines(pathOf(result.results))));
  });
});
