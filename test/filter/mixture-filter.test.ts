import { mkdtempSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readJsonl, writeJsonAtomic, writeJsonlAtomic } from '../../activities/artifacts/store';
import type { DatasetCard } from '../../activities/filter/card';
import { formatFilter } from '../../activities/filter/format-filter';
import type { SftRow } from '../../activities/filter/output';
import { sourcesFileOf, type SourcesFile } from '../../activities/dataset/mixture';
import type { RejectRow, SampleRow } from '../../schemas/artifact';
import { sample } from './helpers';

/**
 * The filter stage of a mixture, run on files laid out as the earlier stages write them: each source formatted and
 * filtered its own way, dedup across sources, the mix (with repetition when a total asks for more than a source has),
 * and per-source accounting that refuses rows it cannot place.
 */
async function rows<T>(file: string): Promise<T[]> {
  const out: T[] = [];
  for await (const r of readJsonl<T>(file)) out.push(r);
  return out;
}

const plan = (
  name: string,
  kind: 'reasoning' | 'non-reasoning',
  extra: Partial<SourcesFile['sources'][number]> = {},
) => ({
  name,
  kind,
  verifier: kind === 'reasoning' ? ('math' as const) : ('none' as const),
  think: kind === 'reasoning' ? ('required' as const) : ('none' as const),
  responses: 'teacher' as const,
  prepare: { in: 0, kept: 0, quarantined: 0 },
  ...extra,
});

async function layOut(samples: SampleRow[], sources: SourcesFile['sources'], mixing: SourcesFile['mixing']) {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'mixture-filter-'));
  for (const s of sources) {
    const prompts = new Set(samples.filter((x) => x.source === s.name).map((x) => x.promptId)).size;
    s.prepare = { in: prompts, kept: prompts, quarantined: 0 };
  }
  await writeJsonAtomic(sourcesFileOf(runDir), { sources, mixing });
  await writeJsonlAtomic(path.join(runDir, 'generate', 'samples.jsonl'), samples);
  const accepted = await writeJsonlAtomic(path.join(runDir, 'verify', 'accepted.jsonl'), samples);
  return { runDir, accepted };
}

const reasoningSample = (i: number, over: Partial<SampleRow> = {}) =>
  sample({
    id: `r/p${i}#0@h`,
    promptId: `r/p${i}`,
    prompt: `Compute ${i}+1.`,
    answer: String(i + 1),
    content: `<think>\nadd one to ${i}\n</think>\nThe answer is \\boxed{${i + 1}}.`,
    source: 'r',
    ...over,
  });
const wordsSample = (i: number, text: string, over: Partial<SampleRow> = {}) =>
  sample({
    id: `w/n${i}#0@h`,
    promptId: `w/n${i}`,
    prompt: `Write ${i} in words.`,
    answer: text,
    content: text,
    source: 'w',
    ...over,
  });

test('each source keeps its own think rule and filters, dedup spans sources, and a total repeats the short source (said in the card)', async () => {
  const samples = [
    ...Array.from({ length: 12 }, (_, i) => reasoningSample(i)),
    reasoningSample(50, { content: 'The answer is \\boxed{51}.' }), // reasoning without <think>: no_think
    wordsSample(1, 'one'),
    wordsSample(2, 'two'),
    wordsSample(3, 'three'),
    wordsSample(4, '<think>\nhmm\n</think>\nfour'), // non-reasoning with a chain of thought: unexpected_think
    wordsSample(5, 'five five five five five five five five'), // over w's own maxChars (20), far under the run's
    sample({
      id: 'w2/n1#0@h',
      promptId: 'w2/n1',
      prompt: 'Write 1 in words.',
      answer: 'one',
      content: 'one',
      source: 'w2',
    }), // the same as w's: a duplicate across sources
    sample({
      id: 'w2/n6#0@h',
      promptId: 'w2/n6',
      prompt: 'Write 6 in words.',
      answer: 'six',
      content: 'six',
      source: 'w2',
    }),
  ];
  const sources = [
    plan('r', 'reasoning', { weight: 3 }),
    plan('w', 'non-reasoning', { weight: 1, filters: { maxChars: 20 } }),
    plan('w2', 'non-reasoning', { maxSamples: 5 }),
  ];
  const { runDir, accepted } = await layOut(samples, sources, { seed: 4, total: 33 });
  const out = await formatFilter({ runDir, accepted, filters: {} });

  const rejects = await rows<RejectRow>(path.join(runDir, 'filter', 'rejects.jsonl'));
  expect(rejects.map((r) => [r.source, r.reason]).sort()).toEqual(
    [
      ['r', 'no_think'],
      ['w', 'too_long'],
      ['w', 'unexpected_think'],
      ['w2', 'duplicate'],
    ].sort(),
  );

  // total 33: w2 takes its 1 row (maxSamples 5 caps, it has only 1), r and w share 32 as 3 : 1 = 24 : 8.
  const sft = await rows<SftRow>(pathOfSft(runDir));
  const count = (s: string) => sft.filter((r) => r.source === s).length;
  expect([count('r'), count('w'), count('w2')]).toEqual([24, 8, 1]);
  expect(new Set(sft.map((r) => r.id)).size).toBe(33);
  // r had 12 rows for 24: each exactly twice; w had 3 for 8: each 2 or 3 times.
  expect(sft.filter((r) => r.id.endsWith('~1') && r.source === 'r')).toHaveLength(12);
  const card = JSON.parse(readFileSync(out.cardRef.uri.replace(/^file:\/\//, ''), 'utf8')) as DatasetCard;
  const r = card.mixture!.sources.find((s) => s.name === 'r')!;
  expect(r.mix).toMatchObject({ available: 12, target: 24, selected: 12, dropped: 0, repeats: 12, final: 24 });
  expect(readFileSync(out.cardMarkdownRef.uri.replace(/^file:\/\//, ''), 'utf8')).toContain(
    '**Upsampled by repetition:** r had 12 rows for a target of 24',
  );

  // The same files and seed give the same SFT file, byte for byte.
  const again = await formatFilter({ runDir, accepted, filters: {} });
  expect(again.sftRef.sha256).toBe(out.sftRef.sha256);
});

test('a row whose source the run does not have fails the stage (AccountingMismatch), it is not silently counted', async () => {
  const samples = [reasoningSample(1), wordsSample(2, 'two'), wordsSample(3, 'three', { source: 'intruder' })];
  const { runDir, accepted } = await layOut(
    samples,
    [plan('r', 'reasoning', { weight: 1 }), plan('w', 'non-reasoning', { weight: 1 })],
    { seed: 0 },
  );
  await expect(formatFilter({ runDir, accepted, filters: {} })).rejects.toMatchObject({ type: 'AccountingMismatch' });
});

test('a weighted source with nothing left after filtering cannot be mixed (NoTrainingData names it)', async () => {
  const samples = [reasoningSample(1), wordsSample(2, '<think>\nx\n</think>\ntwo')];
  const { runDir, accepted } = await layOut(
    samples,
    [plan('r', 'reasoning', { weight: 3 }), plan('w', 'non-reasoning', { weight: 1 })],
    { seed: 0 },
  );
  await expect(formatFilter({ runDir, accepted, filters: {} })).rejects.toMatchObject({
    type: 'NoTrainingData',
    message: expect.stringContaining('source w'),
  });
});

function pathOfSft(runDir: string): string {
  return path.join(runDir, 'filter', 'sft.jsonl');
}
