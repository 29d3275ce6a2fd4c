import { mkdtempSync, promises as fs, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { completeLines } from '../../activities/artifacts/complete-lines';
import { writeChunksOnce } from '../../activities/artifacts/store';
import {
  attemptFileFor,
  attemptFiles,
  AttemptWriter,
  indexAttempts,
  type ExpectedSample,
} from '../../activities/generate/shard-attempts';

/** The pieces that keep two attempts of a shard apart: their files, how lines are written and read, the one commit. */
const dirs: string[] = [];
const tmp = () => dirs[dirs.push(mkdtempSync(path.join(os.tmpdir(), 'shard-attempts-'))) - 1]!;
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function* chunks(...parts: string[]) {
  for (const p of parts) yield p;
}

async function linesOf(file: string, chunkBytes: number): Promise<{ text: string; start: number; end: number }[]> {
  const h = await fs.open(file, 'r');
  try {
    const out: { text: string; start: number; end: number }[] = [];
    for await (const l of completeLines(h, chunkBytes))
      out.push({ text: l.bytes.toString('utf8'), start: l.start, end: l.end });
    return out;
  } finally {
    await h.close();
  }
}

test('complete lines only, split on bytes: a line still being written is left alone until its newline is there', async () => {
  const file = path.join(tmp(), 'f');
  const lines = ['naïve → Σ 🙂', '', 'café 数', 'plain'];
  await fs.writeFile(file, lines.join('\n') + '\n' + 'torn 🙂 ha');
  // a 7-byte read buffer cuts the multi-byte characters and the lines everywhere
  for (const size of [1, 3, 7, 1 << 20]) {
    const got = await linesOf(file, size);
    expect(got.map((l) => l.text)).toEqual(lines);
    const bytes = await fs.readFile(file);
    for (const l of got) expect(bytes.subarray(l.start, l.end).toString('utf8')).toBe(`${l.text}\n`);
  }
  await fs.appendFile(file, 'lf\n');
  expect((await linesOf(file, 5)).map((l) => l.text)).toEqual([...lines, 'torn 🙂 half']);
  expect((await fs.stat(file)).size).toBe(Buffer.byteLength(lines.join('\n') + '\ntorn 🙂 half\n'));
});

test('an artifact written once is never replaced: a second writer finds it and leaves no temp file', async () => {
  const dir = tmp();
  const target = path.join(dir, 'shard.jsonl');
  expect(await writeChunksOnce(target, chunks('first\n', 'writer\n'))).toBe(true);
  expect(await writeChunksOnce(target, chunks('second writer\n'))).toBe(false);
  expect(await fs.readFile(target, 'utf8')).toBe('first\nwriter\n');
  expect(readdirSync(dir)).toEqual(['shard.jsonl']);
});

test('lanes appending lines of megabytes at once: each line lands whole', async () => {
  const file = attemptFileFor(path.join(tmp(), 'shard-00000.jsonl'), 1);
  const w = await AttemptWriter.create(file);
  const lanes = Array.from({ length: 4 }, (_, k) => `${String(k).repeat(3 * 2 ** 20)}\n`);
  await Promise.all(lanes.map((l) => w.append(l)));
  await w.close();
  const got = await linesOf(file, 1 << 20);
  expect(got.map((l) => `${l.text}\n`).sort()).toEqual([...lanes].sort());
  // an attempt's file is its own: a second writer for the same name is refused
  await expect(AttemptWriter.create(file)).rejects.toThrow(/EEXIST/);
});

test('every attempt file is read, the shared .partial first and then by attempt number; the first whole line of an id wins', async () => {
  const dir = tmp();
  const shard = path.join(dir, 'shard-00000.jsonl');
  const row = (id: string, by: string) =>
    JSON.stringify({ id, by, usage: { promptTokens: 1, completionTokens: 2 } }) + '\n';
  const expected = new Map<string, ExpectedSample>(
    ['a', 'b', 'c', 'd'].map((id, i) => [id, { position: i, sampleIndex: 0 }]),
  );
  const a10 = attemptFileFor(shard, 10);
  const a2 = attemptFileFor(shard, 2);
  await fs.writeFile(a10, row('a', 'attempt 10') + row('d', 'attempt 10') + row('c', 'attempt 10').slice(0, 9));
  await fs.writeFile(a2, row('a', 'attempt 2') + '{"id":"b", garbled\n' + row('zz', 'another config'));
  await fs.writeFile(`${shard}.partial`, row('b', 'shared'));
  await fs.writeFile(`${shard}.batch.json`, '{}');
  expect((await attemptFiles(shard)).map((f) => path.basename(f))).toEqual([
    'shard-00000.jsonl.partial',
    path.basename(a2),
    path.basename(a10),
  ]);

  const sizes = await Promise.all([a10, a2].map(async (f) => (await fs.stat(f)).size));
  const index = await indexAttempts(shard, expected);
  try {
    const by = async (id: string) => {
      const s = index.samples.get(id)!;
      const buf = Buffer.alloc(s.end - s.start);
      await index.sources[s.source]!.read(buf, 0, buf.length, s.start);
      return (JSON.parse(buf.toString('utf8')) as { by: string }).by;
    };
    expect([...index.samples.keys()].sort()).toEqual(['a', 'b', 'd']);
    expect([await by('a'), await by('b'), await by('d')]).toEqual(['attempt 2', 'shared', 'attempt 10']);
    expect({ corrupt: index.corrupt, foreign: index.foreign, duplicates: index.duplicates }).toEqual({
      corrupt: 1,
      foreign: 1,
      duplicates: 1,
    });
    expect({ promptTokens: index.promptTokens, completionTokens: index.completionTokens }).toEqual({
      promptTokens: 3,
      completionTokens: 6,
    });
  } finally {
    await index.close();
  }
  // reading never cuts another attempt's torn last line: its writer may still be finishing it
  expect(await Promise.all([a10, a2].map(async (f) => (await fs.stat(f)).size))).toEqual(sizes);
});
