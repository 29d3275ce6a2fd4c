import { promises as fs } from 'node:fs';
import { MockActivityEnvironment } from '@temporalio/testing';
import { startTeacherServer } from '../../infra/teacher/server';
import { generateShard } from '../../activities/generate/generate-shard';
import { layout } from '../../activities/artifacts/layout';
import { shardDir, shardInput, shardRows } from '../helpers/shard-fixture';

/** Batch mode against the local teacher's Files + Batch API (infra/teacher/batch-api.ts). */
let teacher: Awaited<ReturnType<typeof startTeacherServer>>;
beforeAll(async () => (teacher = await startTeacherServer({ port: 0, batchDelayMs: 800 })));
afterAll(async () => teacher.close());

const batchInput = (dir: string) => shardInput(dir, { baseURL: teacher.url, mode: 'batch', batchPollSeconds: 0.1 });

test('a shard generated through the Batch API equals the online one, sample for sample', async () => {
  const online = await shardDir(8);
  await generateShard(shardInput(online, { baseURL: teacher.url }));
  const batched = await shardDir(8);
  const before = teacher.stats();
  const r = await generateShard(batchInput(batched));
  expect(r).toMatchObject({ samples: 24, requests: 0, batchRequests: 8 });
  expect(teacher.stats().batchesCreated - before.batchesCreated).toBe(1);
  const want = new Map((await shardRows(online)).map((s) => [s.id, s.content]));
  const got = await shardRows(batched);
  expect(got).toHaveLength(24);
  for (const s of got) expect(s.content).toBe(want.get(s.id));
});

test('a retry after the worker was lost mid-batch resumes the same batch, never submits a second', async () => {
  const dir = await shardDir(6);
  const before = teacher.stats().batchesCreated;
  // Attempt 1: submits, starts polling, and is cancelled (as on a lost worker / heartbeat timeout).
  const first = new MockActivityEnvironment({ attempt: 1 });
  const attempt1 = first.run(generateShard, batchInput(dir)).catch((e) => e);
  await new Promise((r) => setTimeout(r, 300));
  first.cancel();
  expect(await attempt1).toBeInstanceOf(Error);
  expect(teacher.stats().batchesCreated - before).toBe(1);

  // Attempt 2 finds the batch id beside the shard and polls it to the end.
  const second = new MockActivityEnvironment({ attempt: 2 });
  const r = (await second.run(generateShard, batchInput(dir))) as Awaited<ReturnType<typeof generateShard>>;
  expect(r.samples).toBe(18);
  expect(teacher.stats().batchesCreated - before).toBe(1);
});

test('a batch created just before a crash (its id never written down) is found again by its metadata key', async () => {
  const dir = await shardDir(4);
  const before = teacher.stats().batchesCreated;
  const first = new MockActivityEnvironment({ attempt: 1 });
  const attempt1 = first.run(generateShard, batchInput(dir)).catch((e) => e);
  await new Promise((r) => setTimeout(r, 300));
  first.cancel();
  await attempt1;
  await fs.rm(`${layout.shardSamples(dir, 0)}.batch.json`);
  const r = (await new MockActivityEnvironment({ attempt: 2 }).run(generateShard, batchInput(dir))) as Awaited<
    ReturnType<typeof generateShard>
  >;
  expect(r.samples).toBe(12);
  expect(teacher.stats().batchesCreated - before).toBe(1);
});
