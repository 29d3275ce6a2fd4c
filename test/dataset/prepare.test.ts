import { mkdtempSync, promises as fs, readdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { prepareDataset } from '../../activities/prepare/prepare-dataset';
import { AtomicJsonlWriter, readJsonl } from '../../activities/artifacts/store';
import type { PromptRow, RejectRow } from '../../schemas/artifact';
import { DatasetSchema } from '../../schemas/run-spec';

/** prepareDataset on files with encoding problems, and what a failed attempt leaves behind (nothing). */
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'prepare-'));

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...walk(path.join(dir, e.name)).map((f) => path.join(e.name, f)));
    else out.push(e.name);
  }
  return out;
}

const row = (id: string, q: string, a = '1') => JSON.stringify({ id, question: q, answer: a });
const fields = { id: 'id', prompt: 'question', answer: 'answer' };

async function prepare(root: string, file: string, shardSize = 2) {
  return prepareDataset({
    artifactRoot: root,
    runId: 'run',
    dataset: DatasetSchema.parse({ source: { type: 'jsonl', path: file, fields } }),
    shardSize,
  });
}

test('invalid UTF-8 is quarantined as invalid_utf8 under the row id; a BOM does not break the first row; CRLF is fine', async () => {
  const root = tmp();
  const file = path.join(root, 'in.jsonl');
  const bad = Buffer.concat([
    Buffer.from('{"id": "bad", "question": "Compute 3 + 3. '),
    Buffer.from([0x80, 0xc0, 0xaf, 0xff]),
    Buffer.from('", "answer": "6"}'),
  ]);
  const surrogate = Buffer.concat([
    Buffer.from('{"id": "surrogate", "question": "x'),
    Buffer.from([0xed, 0xa0, 0x80]),
    Buffer.from('", "answer": "1"}'),
  ]);
  const notJson = Buffer.concat([Buffer.from('{"id": "torn'), Buffer.from([0xfe])]);
  writeFileSync(
    file,
    Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(row('first', 'Compute 1 + 1.', '2') + '\r\n'),
      bad,
      Buffer.from('\n'),
      surrogate,
      Buffer.from('\n'),
      notJson,
      Buffer.from('\n' + row('emoji', 'What is 🧮 + é?') + '\r\n\n'),
    ]),
  );
  const r = await prepare(root, file);
  const kept: PromptRow[] = [];
  for await (const p of readJsonl<PromptRow>(r.prompts)) kept.push(p);
  const q: RejectRow[] = [];
  for await (const x of readJsonl<RejectRow>(r.quarantine)) q.push(x);
  expect(kept.map((p) => p.id)).toEqual(['first', 'emoji']);
  expect(kept[1]!.prompt).toBe('What is 🧮 + é?');
  expect(kept.some((p) => p.prompt.includes('\uFFFD'))).toBe(false);
  expect(q.map((x) => [x.id, x.reason])).toEqual([
    ['bad', 'invalid_utf8'],
    ['surrogate', 'invalid_utf8'],
    ['line-4', 'invalid_utf8'],
  ]);
  expect(q[0]!.detail).toMatch(/line 2 is not valid UTF-8 \(first bad byte at offset 42/);
  expect(r.rowsIn).toBe(r.kept + r.quarantined);
});

test('a multi-byte character split across read chunks is decoded whole', async () => {
  const root = tmp();
  const file = path.join(root, 'big.jsonl');
  // the first line is 65,535 bytes + a 4-byte emoji: the emoji straddles the 64 KiB read chunk boundary
  const lines = [row('a', 'x'.repeat(65_500) + '🧮'.repeat(20)), row('b', 'é'.repeat(40_000))];
  writeFileSync(file, lines.join('\n') + '\n');
  const r = await prepare(root, file);
  expect(r.kept).toBe(2);
  const kept: PromptRow[] = [];
  for await (const p of readJsonl<PromptRow>(r.prompts)) kept.push(p);
  expect(kept[0]!.prompt.endsWith('🧮'.repeat(20))).toBe(true);
  expect(kept[1]!.prompt).toBe('é'.repeat(40_000));
});

test('a failed attempt (disk full mid-way) removes its temp files and the shards it had finished', async () => {
  const root = tmp();
  const file = path.join(root, 'in.jsonl');
  writeFileSync(file, Array.from({ length: 40 }, (_, i) => row(`r${i}`, `Compute ${i} + 1.`)).join('\n') + '\n');
  const original = AtomicJsonlWriter.prototype.write;
  let writes = 0;
  const spy = jest.spyOn(AtomicJsonlWriter.prototype, 'write').mockImplementation(async function (
    this: AtomicJsonlWriter,
    r: unknown,
  ) {
    if (++writes === 70) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return original.call(this, r);
  });
  try {
    await expect(prepare(root, file)).rejects.toThrow(/ENOSPC/);
  } finally {
    spy.mockRestore();
  }
  expect(walk(path.join(root, 'run'))).toEqual([]);
  // and the retry succeeds from scratch
  const r = await prepare(root, file);
  expect(r).toMatchObject({ kept: 40, shardCount: 20 });
  expect(walk(path.join(root, 'run')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
});

test('a read-only artifact root fails at once, non-retryably, naming the path', async () => {
  const root = tmp();
  const file = path.join(root, 'in.jsonl');
  writeFileSync(file, row('a', 'Compute 1 + 1.') + '\n');
  const readOnly = path.join(root, 'ro');
  await fs.mkdir(readOnly);
  const access = fs.access.bind(fs);
  const spy = jest.spyOn(fs, 'access').mockImplementation(async (p, mode) => {
    if (String(p) === readOnly)
      throw Object.assign(new Error(`EROFS: read-only file system, access '${readOnly}'`), { code: 'EROFS' });
    return access(p, mode);
  });
  try {
    const err = (await prepare(readOnly, file).catch((e: unknown) => e)) as ApplicationFailure;
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'ArtifactRootNotWritable', nonRetryable: true });
    expect(err.message).toContain(readOnly);
    expect(err.message).toMatch(/read-only/);
  } finally {
    spy.mockRestore();
  }
  expect(readdirSync(readOnly)).toEqual([]);
});

test('Parquet bytes given as JSONL: the error names the file and says to use type parquet', async () => {
  const root = tmp();
  const file = path.join(root, 'data.parquet');
  writeFileSync(
    file,
    Buffer.concat([
      Buffer.from('PAR1'),
      Buffer.from([0x15, 0x04, 0x15, 0x10, 0x0a, 0x00, 0xff, 0x0a]),
      Buffer.from('PAR1'),
    ]),
  );
  const err = (await prepare(root, file).catch((e: unknown) => e)) as ApplicationFailure;
  expect(err).toMatchObject({ type: 'EmptyDataset', nonRetryable: true });
  expect(err.message).toMatch(/all 3 rows were quarantined/);
  expect(err.message).toContain(`${file} is a Parquet file`);
  expect(err.message).toMatch(/read as JSONL: set dataset\.source\.type to "parquet"/);
});
