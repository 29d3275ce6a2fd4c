import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pythonBin, projectRoot } from '../../infra/paths';

/**
 * Parquet datasets and benchmarks. The files are written by pyarrow (the reference writer; in the project's venv as a
 * dependency of `datasets`) in each common codec, and read by the compiled code in a plain Node process: hyparquet is
 * an ES module, which jest's sandbox cannot import (workers run compiled code the same way).
 */
const dir = mkdtempSync(path.join(os.tmpdir(), 'parquet-'));
const dist = path.join(projectRoot, 'dist');

beforeAll(() => {
  // Rows: 8 good ones (one with an int64 answer beyond 2^53, one with a null task), then a null prompt, an empty one,
  // a repeated id and a null answer; row groups of 3, so rows span several groups.
  const py = `
import pyarrow as pa, pyarrow.parquet as pq, sys
d = sys.argv[1]
ids = [f"p{i}" for i in range(8)] + ["null-q", "empty-q", "p1", "null-a"]
qs = [f"Compute {i} + {i}." for i in range(8)] + [None, "  ", "Compute 1 + 1. (again)", "Compute 9 + 9."]
answers = pa.array([2 * i for i in range(7)] + [2 ** 60, 1, 2, 3, None], pa.int64())
tasks = ["math"] * 7 + [None] + ["math"] * 4
t = pa.table({"id": ids, "question": qs, "answer": answers, "task": tasks,
              "meta": [{"level": i, "tags": ["a", "b"]} for i in range(12)]})
for codec in ["snappy", "gzip", "zstd", "none"]:
    pq.write_table(t, f"{d}/data-{codec}.parquet", row_group_size=3, compression=codec)
m = pa.table({"problem": ["What is $1+1$?", "Find $x$ if $2x=6$."], "answer": ["2", "3"], "level": [1, 2],
              "unique_id": ["test/a.json", "test/b.json"], "subject": ["Algebra", "Algebra"]})
pq.write_table(m, f"{d}/math500.parquet")
`;
  execFileSync(pythonBin(), ['-c', py, dir]);
  const whole = readFileSync(path.join(dir, 'data-zstd.parquet'));
  writeFileSync(path.join(dir, 'truncated.parquet'), whole.subarray(0, whole.length - 100));
});

/** Runs `body` (an async function body given `d` = the compiled modules' dir and `dir`) in a plain Node process. */
function inNode(body: string): unknown {
  const script = `(async () => { const d = ${JSON.stringify(dist)}; const dir = ${JSON.stringify(dir)}; ${body} })().then((r) => process.stdout.write(JSON.stringify(r)), (e) => { process.stdout.write(JSON.stringify({ error: e.message, type: e.type ?? e.name })); });`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
}

test('every codec reads the same rows, JSON-safe (int64 past 2^53 as a string, nested values kept)', () => {
  const rows = inNode(`
    const { readParquetRows } = require(d + '/activities/dataset/parquet-rows.js');
    const out = {};
    for (const codec of ['snappy', 'gzip', 'zstd', 'none']) {
      out[codec] = [];
      for await (const r of readParquetRows(dir + '/data-' + codec + '.parquet')) out[codec].push(r);
    }
    return out;`) as Record<string, { row: number; value: Record<string, unknown> }[]>;
  expect(rows.snappy).toHaveLength(12);
  for (const codec of ['gzip', 'zstd', 'none']) expect(rows[codec]).toEqual(rows.snappy);
  expect(rows.snappy!.map((r) => r.row)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  expect(rows.snappy![0]!.value).toEqual({
    id: 'p0',
    question: 'Compute 0 + 0.',
    answer: 0,
    task: 'math',
    meta: { level: 0, tags: ['a', 'b'] },
  });
  expect(rows.snappy![7]!.value).toMatchObject({ id: 'p7', answer: String(2n ** 60n), task: null });
});

test('prepare quarantines the bad Parquet rows with reasons and accounts for every row', () => {
  const r = inNode(`
    const { prepareDataset } = require(d + '/activities/prepare/prepare-dataset.js');
    const { DatasetSchema } = require(d + '/schemas/run-spec.js');
    const { readJsonl } = require(d + '/activities/artifacts/store.js');
    const dataset = DatasetSchema.parse({ source: { type: 'parquet', path: dir + '/data-zstd.parquet', fields: { id: 'id', prompt: 'question', answer: 'answer', task: 'task' } } });
    const res = await prepareDataset({ artifactRoot: dir + '/artifacts', runId: 'run', dataset, shardSize: 4 });
    const prompts = []; for await (const p of readJsonl(res.prompts)) prompts.push(p);
    const quarantine = []; for await (const q of readJsonl(res.quarantine)) quarantine.push(q);
    return { rowsIn: res.rowsIn, kept: res.kept, quarantined: res.quarantined, shards: res.shardCount, prompts, quarantine };`) as {
    rowsIn: number;
    kept: number;
    quarantined: number;
    shards: number;
    prompts: { id: string; prompt: string; answer: string; task?: string }[];
    quarantine: { id: string; reason: string; detail: string }[];
  };
  expect(r.rowsIn).toBe(12);
  expect(r.kept + r.quarantined).toBe(r.rowsIn);
  expect(r.prompts.map((p) => p.id)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
  expect(r.prompts[7]).toEqual({ id: 'p7', prompt: 'Compute 7 + 7.', answer: String(2n ** 60n) });
  expect(r.prompts[2]).toMatchObject({ answer: '4', task: 'math' });
  expect(r.quarantine.map((q) => [q.id, q.reason])).toEqual([
    ['null-q', 'bad_prompt'],
    ['empty-q', 'bad_prompt'],
    ['p1', 'duplicate_id'],
    ['null-a', 'bad_answer'],
  ]);
  expect(r.quarantine[2]!.detail).toBe('row 11 repeats an earlier id');
  expect(r.shards).toBe(2);
});

test('a truncated or non-Parquet file fails non-retryably, naming the file; a Parquet file given as JSONL is named as such', () => {
  const run = (source: Record<string, unknown>) =>
    inNode(`
      const { prepareDataset } = require(d + '/activities/prepare/prepare-dataset.js');
      const { DatasetSchema } = require(d + '/schemas/run-spec.js');
      const dataset = DatasetSchema.parse({ source: ${JSON.stringify(source)} });
      try { await prepareDataset({ artifactRoot: dir + '/artifacts-bad', runId: 'run', dataset, shardSize: 4 }); return { ok: true }; }
      catch (e) { return { error: e.message, type: e.type, nonRetryable: e.nonRetryable }; }`) as {
      error?: string;
      type?: string;
      nonRetryable?: boolean;
    };
  const truncated = run({ type: 'parquet', path: path.join(dir, 'truncated.parquet') });
  expect(truncated).toMatchObject({ type: 'InvalidDatasetFile', nonRetryable: true });
  expect(truncated.error).toContain(path.join(dir, 'truncated.parquet'));
  expect(truncated.error).toMatch(/not a readable Parquet file/);
  writeFileSync(path.join(dir, 'text.parquet'), '{"id": 1}\n');
  expect(run({ type: 'parquet', path: path.join(dir, 'text.parquet') })).toMatchObject({
    type: 'InvalidDatasetFile',
    error: expect.stringContaining('text.parquet'),
  });
  const asJsonl = run({ type: 'jsonl', path: path.join(dir, 'data-snappy.parquet') });
  expect(asJsonl).toMatchObject({ type: 'EmptyDataset', nonRetryable: true });
  expect(asJsonl.error).toMatch(
    /data-snappy\.parquet is a Parquet file read as JSONL: set dataset\.source\.type to "parquet"/,
  );
});

test('a MATH-500 benchmark in Parquet (as Hugging Face serves it) loads like its JSONL form', () => {
  const b = inNode(`
    const { loadBenchmark } = require(d + '/activities/evaluate/benchmarks.js');
    const b = await loadBenchmark({ type: 'math500', path: dir + '/math500.parquet' });
    let truncatedError = null;
    try { await loadBenchmark({ type: 'aime', path: dir + '/truncated.parquet' }); } catch (e) { truncatedError = e.message; }
    return { b, truncatedError };`) as {
    b: { name: string; items: { id: string; answer: string; difficulty?: number; prompt: string }[] };
    truncatedError: string;
  };
  expect(b.b.name).toBe('math500');
  expect(b.b.items.map((i) => [i.id, i.answer, i.difficulty])).toEqual([
    ['test/a.json', '2', 1],
    ['test/b.json', '3', 2],
  ]);
  expect(b.b.items[0]!.prompt).toMatch(/^What is \$1\+1\$\?\n/);
  expect(b.truncatedError).toMatch(/truncated\.parquet:0: .*not a readable Parquet file/);
});
