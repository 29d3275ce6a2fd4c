import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { prepareDataset } from '../../activities/prepare/prepare-dataset';
import { readJsonl } from '../../activities/artifacts/store';
import { DatasetSchema } from '../../schemas/run-spec';
import type { RejectRow } from '../../schemas/artifact';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'prepare-'));

function dataset(lines: string[], fields: Record<string, string> = {}) {
  const dir = tmp();
  const file = path.join(dir, 'data.jsonl');
  writeFileSync(file, lines.join('\n') + '\n');
  return {
    dir,
    dataset: DatasetSchema.parse({
      source: { type: 'jsonl', path: file, fields: { id: 'id', prompt: 'question', answer: 'answer', ...fields } },
    }),
  };
}

test('bad rows are quarantined with a reason, and rows in = kept + quarantined', async () => {
  const { dir, dataset: ds } = dataset(
    [
      '{"id": 1, "question": "Compute 1+1.", "answer": 2}',
      '{"id": 2, "question": "Compute 2+2.", "answer": "4"}',
      '{"id": 3, "question": "Compute 3+3.", "answer": "6"',
      '[1, 2]',
      '{"id": 4, "question": 7, "answer": "7"}',
      '{"id": 5, "question": "Compute 5+5."}',
      '{"id": 2, "question": "Again.", "answer": "x"}',
      '{"id": 6, "question": "", "answer": "x"}',
      '{"id": 7, "question": "Write f.", "answer": "1", "kind": "poetry"}',
    ],
    { task: 'kind' },
  );
  const r = await prepareDataset({ artifactRoot: dir, runId: 'r', dataset: ds, shardSize: 1 });
  expect(r).toMatchObject({ rowsIn: 9, kept: 2, quarantined: 7, shardCount: 2 });
  const reasons: string[] = [];
  for await (const q of readJsonl<RejectRow>(r.quarantine)) reasons.push(q.reason);
  expect(reasons.sort()).toEqual([
    'bad_answer',
    'bad_prompt',
    'bad_prompt',
    'bad_task',
    'duplicate_id',
    'malformed_json',
    'not_an_object',
  ]);
});

test('per-row task and tests are carried to the prompts; code answers may be objects', async () => {
  const { dir, dataset: ds } = dataset(
    ['{"id": "c1", "question": "Write add.", "answer": {"tests": ["assert add(1,2)==3"]}, "kind": "code"}'],
    { task: 'kind' },
  );
  const r = await prepareDataset({ artifactRoot: dir, runId: 'r', dataset: ds, shardSize: 10 });
  const rows: { task?: string; answer: string }[] = [];
  for await (const p of readJsonl<{ task?: string; answer: string }>(r.prompts)) rows.push(p);
  expect(rows[0]).toMatchObject({ task: 'code', answer: '{"tests":["assert add(1,2)==3"]}' });
});

test('an empty dataset, or one with no usable row, fails non-retryably with a clear message', async () => {
  const empty = dataset([]);
  await expect(
    prepareDataset({ artifactRoot: empty.dir, runId: 'r', dataset: empty.dataset, shardSize: 10 }),
  ).rejects.toMatchObject({ nonRetryable: true, message: expect.stringMatching(/empty/) });
  const bad = dataset(['{"nope": 1}']);
  await expect(
    prepareDataset({ artifactRoot: bad.dir, runId: 'r', dataset: bad.dataset, shardSize: 10 }),
  ).rejects.toMatchObject({ nonRetryable: true, message: expect.stringMatching(/all 1 rows were quarantined/) });
});

test('a missing source file is a permanent error naming the path', async () => {
  const ds = DatasetSchema.parse({ source: { type: 'jsonl', path: '/nonexistent/data.jsonl' } });
  await expect(prepareDataset({ artifactRoot: tmp(), runId: 'r', dataset: ds, shardSize: 10 })).rejects.toMatchObject({
    nonRetryable: true,
    message: expect.stringMatching(/\/nonexistent\/data.jsonl/),
  });
});
