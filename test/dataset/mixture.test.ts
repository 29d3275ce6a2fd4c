import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { decideGate } from '../../core/gate';
import { checkRunSpec } from '../../schemas/run-spec';
import { mixTargets, pickCopies } from '../../activities/dataset/mixture';
import {
  generateNumberWordsProblems,
  numberToWords,
  parseNumberWordsPrompt,
} from '../../activities/dataset/number-words-task';
import { proceduralTeacherRespond } from '../../infra/teacher/procedural-teacher';
import { verifySample } from '../../activities/verify/verify-sample';

const teacher = { baseURL: 'http://127.0.0.1:8400/v1', model: 'm' };
const reasoning = {
  name: 'math',
  source: { type: 'builtin', task: 'arithmetic', count: 30 },
  kind: 'reasoning',
  verifier: 'math',
  weight: 3,
};
const chat = {
  name: 'words',
  source: { type: 'jsonl', path: 'w.jsonl', fields: { response: 'response' } },
  kind: 'non-reasoning',
  responses: 'existing',
  weight: 1,
};
const mixed = { name: 'r1-mix', datasets: [reasoning, chat], teacher };

test('a two-source spec parses, with per-kind defaults left for prepare to resolve', () => {
  const r = checkRunSpec(mixed);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  expect(r.spec.datasets!.map((d) => [d.name, d.kind, d.responses])).toEqual([
    ['math', 'reasoning', 'teacher'],
    ['words', 'non-reasoning', 'existing'],
  ]);
  expect(r.spec.dataset).toBeUndefined();
});

test.each([
  [{ ...mixed, dataset: { source: { type: 'builtin', task: 'arithmetic' } } }, 'datasets', 'not both'],
  [{ name: 'x', teacher }, 'dataset', 'needs dataset (one source) or datasets'],
  [
    { ...mixed, datasets: [{ ...reasoning, maxSamples: 10 }, chat] },
    'datasets.0.maxSamples',
    'weight or maxSamples, not both',
  ],
  [
    { ...mixed, datasets: [reasoning, { ...chat, source: { type: 'jsonl', path: 'w.jsonl' } }] },
    'datasets.1.responses',
    'fields.response',
  ],
  [
    { ...mixed, datasets: [reasoning, { ...chat, source: { type: 'builtin', task: 'number-words' } }] },
    'datasets.1.responses',
    'fields.response',
  ],
  [{ ...mixed, datasets: [reasoning, { ...chat, weight: undefined }] }, 'datasets', 'words has neither'],
  [{ ...mixed, datasets: [reasoning, { ...reasoning }] }, 'datasets.1.name', 'two sources are named math'],
  [{ ...mixed, datasets: [{ ...reasoning, verifier: 'judge' }, chat] }, 'datasets.0.verifier', 'needs verifier.judge'],
  [{ ...mixed, datasets: [{ ...reasoning, kind: 'chat' }, chat] }, 'datasets.0.kind', ''],
  [{ ...mixed, datasets: [{ ...reasoning, think: 'maybe' }, chat] }, 'datasets.0.think', ''],
  [
    { ...mixed, datasets: [{ ...reasoning, source: { type: 'builtin', task: 'poetry' } }, chat] },
    'datasets.0.source.task',
    'arithmetic" or "number-words',
  ],
  [{ ...mixed, datasets: [{ ...reasoning, sampling: { temprature: 1 } }, chat] }, 'datasets.0.sampling', ''],
  [
    { name: 'x', teacher, dataset: { source: { type: 'builtin', task: 'arithmetic' } }, mixing: { seed: 1 } },
    'mixing',
    'applies to datasets',
  ],
])('rejects a bad mixture naming %#: %s', (spec, path, words) => {
  const r = checkRunSpec(spec);
  expect(r.ok).toBe(false);
  if (r.ok) return;
  const hit = r.issues.find((i) => i.path === path);
  expect(hit).toBeDefined();
  expect(hit!.message).toContain(words);
});

describe('mixTargets', () => {
  test('weights without a total: the largest set needing no repetition, each count within one sample of its share', () => {
    const t = mixTargets([
      { name: 'a', weight: 0.75, available: 37 },
      { name: 'b', weight: 0.25, available: 20 },
    ]);
    const size = t[0]!.target + t[1]!.target;
    expect(t[0]!.target).toBeLessThanOrEqual(37);
    expect(Math.abs(t[0]!.target - 0.75 * size)).toBeLessThan(1);
    expect(Math.abs(t[1]!.target - 0.25 * size)).toBeLessThan(1);
    expect(size).toBe(49); // 37 / 0.75 = 49.3
  });
  test('a total larger than a source asks for repetition of that source only', () => {
    const t = mixTargets(
      [
        { name: 'a', weight: 3, available: 100 },
        { name: 'b', weight: 1, available: 10 },
      ],
      80,
    );
    expect(t.map((x) => x.target)).toEqual([60, 20]);
  });
  test('maxSamples caps a source and the weighted ones share the rest', () => {
    const t = mixTargets(
      [
        { name: 'a', weight: 1, available: 100 },
        { name: 'b', maxSamples: 5, available: 9 },
      ],
      50,
    );
    expect(t.map((x) => x.target)).toEqual([45, 5]);
  });
  test.each([
    [0.75, 0.25],
    [2, 1],
    [0.6, 0.3, 0.1],
  ])('largest remainder keeps every share within one sample (%p)', (...w) => {
    for (let total = 1; total < 200; total += 7) {
      const t = mixTargets(
        w.map((x, i) => ({ name: `s${i}`, weight: x, available: 1000 })),
        total,
      );
      const sum = w.reduce((a, b) => a + b, 0);
      expect(t.reduce((a, x) => a + x.target, 0)).toBe(total);
      t.forEach((x, i) => expect(Math.abs(x.target - (total * w[i]!) / sum)).toBeLessThan(1));
    }
  });
});

test('pickCopies: seeded, deterministic, downsamples without repeats and upsamples whole passes first', () => {
  const ids = Array.from({ length: 10 }, (_, i) => `id${i}`);
  const down = pickCopies(ids, 4, 7, 'a');
  expect(down).toEqual(pickCopies(ids, 4, 7, 'a'));
  expect(new Set(down.map((c) => c.id)).size).toBe(4);
  expect(down.map((c) => c.id)).not.toEqual(pickCopies(ids, 4, 8, 'a').map((c) => c.id));
  const up = pickCopies(ids, 25, 7, 'a');
  const per = new Map<string, number>();
  for (const c of up) per.set(c.id, (per.get(c.id) ?? 0) + 1);
  expect([...per.values()].sort()).toEqual([2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
});

describe('number-words task', () => {
  test.each([
    [0, 'zero'],
    [7, 'seven'],
    [14, 'fourteen'],
    [40, 'forty'],
    [99, 'ninety-nine'],
    [100, 'one hundred'],
    [105, 'one hundred five'],
    [4721, 'four thousand seven hundred twenty-one'],
    [90_000, 'ninety thousand'],
    [999_999, 'nine hundred ninety-nine thousand nine hundred ninety-nine'],
  ])('%d → %s', (n, words) => expect(numberToWords(n)).toBe(words));

  test('train and heldout splits are disjoint, whatever the seeds', () => {
    const train = new Set(generateNumberWordsProblems({ seed: 1, count: 3000, split: 'train' }).map((p) => p.id));
    const held = generateNumberWordsProblems({ seed: 2, count: 1000, split: 'heldout' });
    expect(held.filter((p) => train.has(p.id))).toEqual([]);
    expect(held.every((p) => parseNumberWordsPrompt(p.prompt) !== null)).toBe(true);
  });

  test('the procedural teacher answers without reasoning, never errs at temperature 0 and errs ~8% at temperature 1', () => {
    const items = generateNumberWordsProblems({ seed: 3, count: 800, split: 'train' });
    const wrongAt = (temperature: number) =>
      items.filter((p, i) => {
        const r = proceduralTeacherRespond({ prompt: p.prompt, temperature, topP: 1, seed: i, choiceIndex: 0 });
        expect(r.content).not.toContain('<think>');
        return !verifySample({ content: r.content, answer: p.answer }, 'exact').correct;
      }).length / items.length;
    expect(wrongAt(0)).toBe(0);
    const w = wrongAt(1);
    expect(w).toBeGreaterThan(0.04);
    expect(w).toBeLessThan(0.12);
  });
});

describe('the gate over both held-out tasks', () => {
  const policy = { primary: 'arithmetic-2digit-heldout', minImprovement: 0.05, maxRegression: 0.02 };
  const s = (mean: number) => ({ mean, stderr: 0.01 });
  const baseline = { 'arithmetic-2digit-heldout': s(0.3), 'number-words-heldout': s(0.6) };
  test.each([
    [0.59, true],
    [0.5, false],
  ])('reasoning up 20 points, number-words at %p: promote=%p', (words, promote) => {
    const d = decideGate({
      policy,
      baseline,
      candidate: { 'arithmetic-2digit-heldout': s(0.5), 'number-words-heldout': s(words) },
    });
    expect(d.promote).toBe(promote);
    expect(d.checks.find((c) => c.benchmark === 'number-words-heldout' && c.check === 'no_regression')!.pass).toBe(
      promote,
    );
  });
});

test("the README's mixture example is a valid run spec", () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const block = /```yaml\n(name: r1-style-mix[\s\S]*?)```/.exec(readme);
  expect(block).not.toBeNull();
  const r = checkRunSpec(parseYaml(block![1]!));
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  const w = r.spec.datasets!.map((d) => d.weight!);
  expect(w[0]! / (w[1]! + w[2]!)).toBe(3);
});
