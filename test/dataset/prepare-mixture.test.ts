import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { prepareDataset } from '../../activities/prepare/prepare-dataset';
import { readJsonl } from '../../activities/artifacts/store';
import { sourcesFileOf, type SourcesFile } from '../../activities/dataset/mixture';
import type { PromptRow, RejectRow } from '../../schemas/artifact';
import { MixSourceSchema } from '../../schemas/run-spec';

/** prepareDataset with several sources: a local Hugging Face-style directory, a builtin task, one shared id. */
async function rows<T>(file: string): Promise<T[]> {
  const out: T[] = [];
  for await (const r of readJsonl<T>(file)) out.push(r);
  return out;
}

test('every source is read in turn, its ids prefixed and its rows tagged; per-source counts add up; quarantined rows name their source', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'prepare-mix-'));
  const hf = path.join(root, 'chat-dataset');
  mkdirSync(path.join(hf, 'data'), { recursive: true });
  const line = (id: string, q: string, r?: string) =>
    JSON.stringify({ id, q, a: 'x', ...(r !== undefined ? { r } : {}) });
  writeFileSync(
    path.join(hf, 'data', 'train-00000-of-00002.jsonl'),
    [line('1', 'Say hi.', 'hi'), line('2', 'Say bye.', 'bye')].join('\n') + '\n',
  );
  writeFileSync(
    path.join(hf, 'data', 'train-00001-of-00002.jsonl'),
    [line('3', 'Say yes.'), line('words-1', 'Say no.', 'no'), line('5', 'Say maybe.', 'maybe')].join('\n') + '\n',
  );
  writeFileSync(path.join(hf, 'data', 'test-00000-of-00001.jsonl'), line('9', 'Held out.', 'h') + '\n');
  writeFileSync(path.join(hf, 'README.md'), '# a dataset card\n');

  const datasets = [
    MixSourceSchema.parse({
      name: 'words',
      kind: 'non-reasoning',
      source: { type: 'builtin', task: 'number-words', count: 5, seed: 1 },
      verifier: 'exact',
      weight: 1,
    }),
    MixSourceSchema.parse({
      name: 'chat',
      kind: 'non-reasoning',
      source: { type: 'hf', path: hf, fields: { id: 'id', prompt: 'q', answer: 'a', response: 'r' } },
      responses: 'existing',
      weight: 1,
      limit: 3,
    }),
  ];
  const out = await prepareDataset({
    artifactRoot: root,
    runId: 'run',
    datasets,
    mixing: { seed: 3 },
    verifierType: 'math',
    shardSize: 3,
  });

  const prompts = await rows<PromptRow>(path.join(out.runDir, 'prepare', 'prompts.jsonl'));
  const quarantine = await rows<RejectRow>(path.join(out.runDir, 'prepare', 'quarantine.jsonl'));
  const chat = prompts.filter((p) => p.source === 'chat');
  expect(chat.map((p) => [p.id, p.response, p.task])).toEqual([
    ['chat/1', 'hi', 'none'],
    ['chat/2', 'bye', 'none'],
    ['chat/words-1', 'no', 'none'],
  ]);
  expect(
    prompts
      .filter((p) => p.source === 'words')
      .every((p) => p.id.startsWith('words/words-') && p.task === 'exact' && p.response === undefined),
  ).toBe(true);
  // the test split is not read; a row without its response and the row over the limit are quarantined as chat's
  expect(quarantine.map((q) => [q.source, q.id, q.reason])).toEqual([
    ['chat', 'chat/3', 'bad_response'],
    ['chat', 'chat/5', 'over_limit'],
  ]);
  expect(out.bySource).toEqual({ words: { in: 5, kept: 5, quarantined: 0 }, chat: { in: 5, kept: 3, quarantined: 2 } });
  expect(out.rowsIn).toBe(out.kept + out.quarantined);
  const file = JSON.parse(readFileSync(sourcesFileOf(out.runDir), 'utf8')) as SourcesFile;
  expect(file.mixing).toEqual({ seed: 3 });
  expect(file.sources.map((s) => [s.name, s.verifier, s.think, s.responses])).toEqual([
    ['words', 'exact', 'none', 'teacher'],
    ['chat', 'none', 'none', 'existing'],
  ]);
});

test('a source that yields no usable row fails prepare naming it (a mixture needs every source)', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'prepare-mix-'));
  const file = path.join(root, 'chat.jsonl');
  writeFileSync(file, JSON.stringify({ id: 1, prompt: 'Say hi.', answer: 'x' }) + '\n');
  const datasets = [
    MixSourceSchema.parse({
      name: 'arith',
      kind: 'reasoning',
      source: { type: 'builtin', task: 'arithmetic', count: 3 },
      weight: 3,
    }),
    MixSourceSchema.parse({
      name: 'chat',
      kind: 'non-reasoning',
      source: { type: 'jsonl', path: file, fields: { response: 'response' } },
      responses: 'existing',
      weight: 1,
    }),
  ];
  await expect(prepareDataset({ artifactRoot: root, runId: 'run', datasets, shardSize: 3 })).rejects.toMatchObject({
    type: 'EmptyDataset',
    message: expect.stringContaining('chat (all 1 rows quarantined)'),
  });
});
