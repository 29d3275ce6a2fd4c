import { existsSync, promises as fs, rmSync } from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { generateShard, type GenerateShardResult } from '../../activities/generate/generate-shard';
import { mergeShards } from '../../activities/generate/merge-shards';
import { generationConfigHash, sampleId } from '../../activities/generate/sample-ids';
import { layout } from '../../activities/artifacts/layout';
import { readJsonl, readJsonlLines, refOfFile } from '../../activities/artifacts/store';
import type { PromptRow, SampleRow } from '../../schemas/artifact';
import { startLongAnswerTeacher, type LongAnswerTeacher } from '../helpers/long-answer-teacher';
import { shardDir, shardInput } from '../helpers/shard-fixture';

/**
 * Two attempts of one shard running at once (a heartbeat timeout lets Temporal start a retry while the first attempt
 * still runs), with samples of over a megabyte each, as a reasoning teacher's chains of thought are: the shard must
 * come out with every sample exactly once, every line whole, and the same content a single attempt writes. The
 * teacher is a test double that answers long deterministic content (test/helpers/long-answer-teacher.ts).
 */
jest.setTimeout(180_000);

const BYTES_PER_CHOICE = Math.ceil(1.25 * 2 ** 20);
const N = 2;

let teacher: LongAnswerTeacher;
beforeAll(
  async () => (teacher = await startLongAnswerTeacher({ bytesPerChoice: BYTES_PER_CHOICE, delayFor: () => 30 })),
);
afterAll(async () => teacher.close());

/** A run directory with one shard of `prompts` prompts, removed after the tests (its shards run to tens of MB). */
const runDirs: string[] = [];
const newShard = async (prompts: number) => {
  const dir = await shardDir(prompts);
  runDirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const d of runDirs) rmSync(d, { recursive: true, force: true });
});

const input = (runDir: string, lane: string, concurrency: number) =>
  shardInput(runDir, { baseURL: teacher.laneURL(lane), concurrency, requestTimeoutSeconds: 60 }, { n: N });

/** One attempt of the shard as Temporal would run it: its own attempt number, heartbeats recorded. */
function attempt(runDir: string, number: number, lane: string, concurrency: number) {
  const env = new MockActivityEnvironment({ attempt: number, heartbeatTimeoutMs: 2000 });
  const beats: number[] = [];
  env.on('heartbeat', (d: { samples?: number }) => beats.push(d?.samples ?? 0));
  const result: Promise<GenerateShardResult> = env.run(generateShard, input(runDir, lane, concurrency));
  result.catch(() => undefined);
  return { result, lastBeat: () => beats[beats.length - 1] ?? -1 };
}

async function until(what: string, pred: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const withoutTiming = ({ latencyMs: _l, ...rest }: SampleRow) => JSON.stringify(rest);

/** What is on disk after the attempts: counted from the files, compared with a single attempt's shard. */
async function inspect(runDir: string, reference: Map<string, string>) {
  const final = layout.shardSamples(runDir, 0);
  const prompts: PromptRow[] = [];
  for await (const p of readJsonl<PromptRow>(layout.shardPrompts(runDir, 0))) prompts.push(p);
  const hash = generationConfigHash(input(runDir, '-', 1));
  const expected = new Set(prompts.flatMap((p) => Array.from({ length: N }, (_, i) => sampleId(p.id, i, hash))));
  const seen = new Map<string, number>();
  let lines = 0;
  let corrupt = 0;
  let changed = 0;
  let longest = 0;
  if (existsSync(final)) {
    for await (const l of readJsonlLines(final)) {
      lines += 1;
      longest = Math.max(longest, Buffer.byteLength(l.text));
      let row: SampleRow;
      try {
        row = JSON.parse(l.text) as SampleRow;
      } catch {
        corrupt += 1;
        continue;
      }
      seen.set(row.id, (seen.get(row.id) ?? 0) + 1);
      if (reference.get(row.id) !== withoutTiming(row)) changed += 1;
    }
  }
  const lost = [...expected].filter((id) => !seen.has(id)).length;
  const duplicated = [...seen.values()].reduce((t, c) => t + c - 1, 0);
  const extra = [...seen.keys()].filter((id) => !expected.has(id)).length;
  const merged = await mergeShards({ runDir, shardCount: 1 }).then(
    (m) => m.samples.count,
    (e: Error) => e.message,
  );
  const leftovers = (await fs.readdir(path.dirname(final))).filter((f) => f.endsWith('.partial') || f.endsWith('.tmp'));
  return {
    expected: expected.size,
    lines,
    corrupt,
    lost,
    duplicated,
    extra,
    changed,
    merged,
    leftovers,
    longest,
    final,
  };
}

/** Both attempts succeed and report the shard as it is on disk. */
async function expectBothReportTheShard(final: string, results: PromiseSettledResult<GenerateShardResult>[]) {
  const onDisk = existsSync(final) ? (await refOfFile(final)).sha256 : 'no shard';
  expect(
    results.map((r) => (r.status === 'fulfilled' ? r.value.samplesRef.sha256 : `rejected: ${String(r.reason)}`)),
  ).toEqual([onDisk, onDisk]);
}

let reference: Map<string, string>;
beforeAll(async () => {
  // a single attempt, one request lane: the content every other run must match
  const dir = await newShard(8);
  await generateShard(input(dir, 'ref', 1));
  reference = new Map();
  for await (const r of readJsonl<SampleRow>(layout.shardSamples(dir, 0))) reference.set(r.id, withoutTiming(r));
  expect(reference.size).toBe(8 * N);
});

test('one attempt with three request lanes writes every line of over a megabyte whole', async () => {
  const dir = await newShard(8);
  await generateShard(input(dir, 'one', 3));
  const r = await inspect(dir, reference);
  expect(r.longest).toBeGreaterThan(2 ** 20);
  expect({
    corrupt: r.corrupt,
    lost: r.lost,
    duplicated: r.duplicated,
    extra: r.extra,
    changed: r.changed,
    merged: r.merged,
  }).toEqual({
    corrupt: 0,
    lost: 0,
    duplicated: 0,
    extra: 0,
    changed: 0,
    merged: r.expected,
  });
});

test('two attempts started at the same moment, three lanes each: every sample once, every line whole', async () => {
  const dir = await newShard(8);
  const a = attempt(dir, 1, 'x1', 3);
  const b = attempt(dir, 2, 'x2', 3);
  const results = await Promise.allSettled([a.result, b.result]);
  const r = await inspect(dir, reference);
  expect({
    corrupt: r.corrupt,
    lost: r.lost,
    duplicated: r.duplicated,
    extra: r.extra,
    changed: r.changed,
    merged: r.merged,
    leftovers: r.leftovers,
  }).toEqual({
    corrupt: 0,
    lost: 0,
    duplicated: 0,
    extra: 0,
    changed: 0,
    merged: r.expected,
    leftovers: [],
  });
  await expectBothReportTheShard(r.final, results);
});

test('attempt 1 finishes and commits the shard while attempt 2 (started mid-shard) still appends', async () => {
  const dir = await newShard(8);
  // Attempt 1 writes two prompts, then waits on the teacher with both lanes' requests in flight.
  const a = attempt(dir, 1, 'a', 2);
  await until('attempt 1 to write two prompts', () => a.lastBeat() >= 2 * N);
  teacher.hold('a');
  await until('attempt 1 to wait on held requests', () => {
    const mine = teacher.requests().filter((q) => q.lane === 'a');
    return mine.some((q) => !q.answeredAt) && a.lastBeat() === N * mine.filter((q) => q.answeredAt).length;
  });
  const before = a.lastBeat();
  // Attempt 2 starts from what attempt 1 wrote and writes a prompt of its own while attempt 1 is still running.
  const b = attempt(dir, 2, 'b', 2);
  await until('attempt 2 to write a prompt', () => b.lastBeat() > before);
  // Attempt 1 finishes (and commits the shard) while attempt 2 has a request in flight, answered afterwards.
  teacher.hold('b');
  teacher.release('a');
  const first = await Promise.allSettled([a.result]);
  const committedAt = Date.now();
  const bStillRunning = await Promise.race([
    b.result.then(
      () => false,
      () => false,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(true), 50)),
  ]);
  teacher.release('b');
  const second = await Promise.allSettled([b.result]);
  // the staging held: attempt 2 redid work of attempt 1's, and got answers (which it writes) after the commit
  expect(bStillRunning).toBe(true);
  expect(teacher.requests().some((q) => q.lane === 'b' && q.repeat)).toBe(true);
  expect(teacher.requests().some((q) => q.lane === 'b' && (q.answeredAt ?? 0) > committedAt)).toBe(true);

  const r = await inspect(dir, reference);
  expect({
    corrupt: r.corrupt,
    lost: r.lost,
    duplicated: r.duplicated,
    extra: r.extra,
    changed: r.changed,
    merged: r.merged,
    leftovers: r.leftovers,
  }).toEqual({
    corrupt: 0,
    lost: 0,
    duplicated: 0,
    extra: 0,
    changed: 0,
    merged: r.expected,
    leftovers: [],
  });
  await expectBothReportTheShard(r.final, [...first, ...second]);
});
