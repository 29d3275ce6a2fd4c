import { mkdtempSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateArithmeticProblems } from '../../activities/dataset/arithmetic-task';
import { readJsonl, writeJsonlAtomic } from '../../activities/artifacts/store';
import type { DatasetCard } from '../../activities/filter/card';
import { formatFilter } from '../../activities/filter/format-filter';
import { RunSpecSchema } from '../../schemas/run-spec';
import { sample } from './helpers';

const LONG = (seed: number) => {
  const vocab = 'first add units tens carry write digit column then sum result check value next total'.split(' ');
  let s = seed;
  return Array.from({ length: 90 }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return `${vocab[s % vocab.length]}${(s >>> 8) % 40}`;
  }).join(' ');
};

async function collect<T>(ref: { uri: string; sha256: string; count: number }): Promise<T[]> {
  const out: T[] = [];
  for await (const r of readJsonl<T>(ref)) out.push(r);
  return out;
}

describe('formatFilter: the whole stage', () => {
  const heldout = generateArithmeticProblems({ split: 'heldout', count: 20, seed: 2, digits: 2, ops: ['+'] });
  const spec = RunSpecSchema.parse({
    name: 'filter-test',
    dataset: { source: { type: 'builtin', task: 'arithmetic' } },
    teacher: { baseURL: 'http://127.0.0.1:8400/v1', model: 'm' },
    evaluation: { benchmark: { type: 'builtin', task: 'arithmetic', count: 20, seed: 2 } },
  });
  const think = (r: string, s = 'So the answer is \\boxed{1}.') => `<think>\n${r}\n</think>\n${s}`;
  const rows = [
    sample({ id: 'keep-1', promptId: 'p1', content: think(LONG(1)) }),
    sample({
      id: 'keep-2',
      promptId: 'p2',
      prompt: 'Compute 11+11.',
      content: 'The answer is 22.',
      reasoning: LONG(2),
    }), // reasoning_content, repaired
    sample({ id: 'dup', promptId: 'p1', content: think(LONG(1).toUpperCase().replace(/ /g, '  ')) }), // same after lower-casing and collapsing spaces
    sample({ id: 'near', promptId: 'p1', content: think(LONG(1).replace(/^\S+/, 'changed')) }),
    sample({ id: 'trunc', promptId: 'p3', content: '<think>\nhalf', finishReason: 'length' }),
    sample({ id: 'nothink', promptId: 'p3', content: 'Just 3.' }),
    sample({ id: 'mixed', promptId: 'p4', content: think(`${LONG(4)} 所以答案是三。`) }),
    sample({ id: 'loop', promptId: 'p5', content: think(`${LONG(5)} ${'I will check again. '.repeat(10)}`) }),
    sample({ id: 'contaminated', promptId: 'p6', prompt: heldout[0]!.prompt, content: think(LONG(6)) }),
    sample({ id: 'easy', promptId: 'p7', content: think(LONG(7)) }),
    sample({
      id: 'keep-3',
      promptId: 'p8',
      content: think(LONG(8)),
      teacher: { model: 'teacher-y' },
      sampling: { temperature: 1, top_p: 1, max_tokens: 512, seed: 3 },
    }),
  ];

  test('in = kept + rejected; every drop is in rejects with its reason; the card tells the story', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ff-'));
    const accepted = await writeJsonlAtomic(path.join(dir, 'verify', 'accepted.jsonl'), rows);
    const passRates = await writeJsonlAtomic(
      path.join(dir, 'verify', 'pass-rates.jsonl'),
      ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p8']
        .map((promptId) => ({ promptId, samples: 4, correct: 2, passRate: 0.5 }))
        .concat([{ promptId: 'p7', samples: 4, correct: 4, passRate: 1 }]),
    );
    const r = await formatFilter({
      runDir: dir,
      accepted,
      passRates,
      spec,
      filters: { ...spec.filters, difficulty: { maxPassRate: 0.9 }, output: { sharegpt: true } } as never,
    });
    expect(r.samplesIn).toBe(rows.length);
    expect(r.kept + r.rejected).toBe(r.samplesIn);
    expect(r.reasons).toEqual({
      duplicate: 1,
      near_duplicate: 1,
      truncated: 1,
      no_think: 1,
      language_mixing: 1,
      loop: 1,
      contaminated: 1,
      too_easy: 1,
    });

    const sft = await collect<{ id: string; messages: { role: string; content: string }[] }>(r.sftRef);
    expect(sft.map((s) => s.id)).toEqual(['keep-1', 'keep-2', 'keep-3']);
    expect(sft[1]!.messages).toEqual([
      { role: 'user', content: 'Compute 11+11.' },
      { role: 'assistant', content: `<think>\n${LONG(2)}\n</think>\nThe answer is 22.` },
    ]);
    const sharegpt = await collect<{ conversations: { from: string }[] }>(r.sharegptRef!);
    expect(sharegpt[0]!.conversations.map((c) => c.from)).toEqual(['human', 'gpt']);

    const rejects = await collect<{ id: string; reason: string; detail: string; stage: string }>(r.rejectsRef);
    expect(Object.fromEntries(rejects.map((x) => [x.id, x.reason]))).toEqual({
      dup: 'duplicate',
      near: 'near_duplicate',
      trunc: 'truncated',
      nothink: 'no_think',
      mixed: 'language_mixing',
      loop: 'loop',
      contaminated: 'contaminated',
      easy: 'too_easy',
    });
    expect(rejects.find((x) => x.id === 'near')!.detail).toMatch(/^Jaccard 0\.\d+ ≥ 0\.8 with keep-1/);
    expect(rejects.every((x) => x.stage === 'filter' && x.detail)).toBe(true);

    const card = JSON.parse(readFileSync(path.join(dir, 'filter', 'dataset-card.json'), 'utf8')) as DatasetCard;
    expect(card.counts).toEqual({ in: 11, kept: 3, rejected: 8 });
    for (const s of card.steps) expect(s.in).toBe(s.out + s.dropped);
    expect(card.steps.map((s) => s.name)).toEqual([
      'completion',
      'format',
      'max_chars',
      'difficulty',
      'decontaminate',
      'language',
      'repetition',
      'limits',
      'length',
      'dedup',
    ]);
    expect(card.steps.find((s) => s.name === 'dedup')!.reasons).toEqual({ duplicate: 1, near_duplicate: 1 });
    expect(card.length.histogram.reduce((n, h) => n + h.count, 0)).toBe(3);
    expect(card.language.scripts).toEqual({ latin: 3 });
    expect(card.provenance.kept.teachers).toEqual({ 'teacher-x': 2, 'teacher-y': 1 });
    expect(card.provenance.kept.sampling).toEqual([
      { temperature: 0.6, top_p: 0.95, max_tokens: 4096, seed: 0, samples: 2 },
      { temperature: 1, top_p: 1, max_tokens: 512, seed: 3, samples: 1 },
    ]);
    expect(card.provenance.input.prompts).toBe(8);
    expect((card.spec as { name: string }).name).toBe('filter-test');
    expect((card.decontamination as { benchmarks: { name: string; hits: number }[] }).benchmarks).toEqual([
      expect.objectContaining({ name: 'arithmetic-heldout', items: 20, hits: 1 }),
    ]);
    const md = readFileSync(path.join(dir, 'filter', 'dataset-card.md'), 'utf8');
    expect(md).toContain('**3** of 11 samples kept');
    expect(md).toMatch(/\| dedup \| 5 \| 2 \| 3 \| duplicate: 1, near_duplicate: 1 \|/);
    expect(md).toContain('teacher-y');
    expect(r.cardRef.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  test('a retry writes the same SFT and rejects (idempotent)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ff-'));
    const accepted = await writeJsonlAtomic(path.join(dir, 'accepted.jsonl'), rows);
    const a = await formatFilter({ runDir: dir, accepted, filters: spec.filters, spec });
    const b = await formatFilter({ runDir: dir, accepted, filters: spec.filters, spec });
    expect(b.sftRef).toEqual(a.sftRef);
    expect(b.rejectsRef).toEqual(a.rejectsRef);
  });

  test('against an earlier run: its SFT file is read, its samples are not learnt twice', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ff-'));
    const first = await formatFilter({
      runDir: path.join(dir, 'run1'),
      accepted: await writeJsonlAtomic(path.join(dir, 'a1.jsonl'), rows.slice(0, 2)),
      filters: {},
    });
    const accepted = await writeJsonlAtomic(path.join(dir, 'a2.jsonl'), [
      sample({ id: 'again', content: think(LONG(1)) }),
      sample({ id: 'again-near', content: think(LONG(1).replace(/\S+$/, 'changed')) }),
      sample({ id: 'new', content: think(LONG(9)) }),
    ]);
    const r = await formatFilter({
      runDir: path.join(dir, 'run2'),
      accepted,
      filters: { earlierDatasets: [new URL(first.sftRef.uri).pathname] },
    });
    expect(r.reasons).toEqual({ duplicate_earlier_run: 1, near_duplicate_earlier_run: 1 });
    expect(r.kept).toBe(1);
  });

  test('a changed input is refused (sha256 check)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ff-'));
    const accepted = await writeJsonlAtomic(path.join(dir, 'accepted.jsonl'), rows);
    await expect(
      formatFilter({ runDir: dir, accepted: { ...accepted, sha256: 'f'.repeat(64) }, filters: {} }),
    ).rejects.toThrow(/changed on disk/);
  });
});

describe("the project's own data passes the default filters", () => {
  test('procedural-teacher answers to the embedded arithmetic task: nothing dropped', async () => {
    const { proceduralTeacherRespond } = await import('../../infra/teacher/procedural-teacher');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ff-'));
    const rows = [];
    for (const p of generateArithmeticProblems({ split: 'train', count: 1000, seed: 1, digits: 2, ops: ['+'] })) {
      for (let k = 0; k < 2; k++) {
        const r = proceduralTeacherRespond({
          prompt: p.prompt,
          temperature: 0.6,
          topP: 0.95,
          seed: 7,
          choiceIndex: k,
          reasoningFormat: k ? 'separate' : 'inline',
        });
        rows.push(
          sample({
            id: `${p.id}#${k}`,
            promptId: p.id,
            prompt: p.prompt,
            answer: p.answer,
            content: r.content,
            reasoning: r.reasoningContent,
          }),
        );
      }
    }
    const accepted = await writeJsonlAtomic(path.join(dir, 'accepted.jsonl'), rows);
    const spec = RunSpecSchema.parse({
      name: 'embedded',
      dataset: { source: { type: 'builtin', task: 'arithmetic' } },
      teacher: { baseURL: 'http://127.0.0.1:8400/v1', model: 'm' },
      filters: { maxChars: 2000 },
      evaluation: { benchmark: { type: 'builtin', task: 'arithmetic', count: 200, seed: 2 } },
    });
    const r = await formatFilter({ runDir: dir, accepted, filters: spec.filters, spec });
    expect(r.reasons).toEqual({});
    expect(r.kept).toBe(2000);
  });
});

describe('configuration errors are permanent (non-retryable)', () => {
  // Missing files inside the worker's roots (the OS temp dir is one by default): a path outside them is refused earlier.
  test.each([
    ['an unknown key', () => ({ nearDedup: { treshold: 0.9 } })],
    [
      'a missing benchmark file',
      (dir: string) => ({
        decontaminate: { benchmarks: [{ path: path.join(dir, 'nonexistent', 'bench.jsonl'), field: 'problem' }] },
      }),
    ],
    ['a missing earlier dataset', (dir: string) => ({ earlierDatasets: [path.join(dir, 'nonexistent', 'sft.jsonl')] })],
    [
      'a missing tokenizer',
      (dir: string) => ({ length: { tokenizer: path.join(dir, 'nonexistent', 'tokenizer.json') } }),
    ],
  ])('%s', async (_name, filtersIn) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ff-'));
    const accepted = await writeJsonlAtomic(path.join(dir, 'accepted.jsonl'), [sample()]);
    await expect(formatFilter({ runDir: dir, accepted, filters: filtersIn(dir) as never })).rejects.toMatchObject({
      type: 'InvalidFilterConfig',
      nonRetryable: true,
    });
  });
});
