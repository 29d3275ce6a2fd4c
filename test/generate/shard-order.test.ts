import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { startTeacherServer } from '../../infra/teacher/server';
import { generateShard } from '../../activities/generate/generate-shard';
import { layout } from '../../activities/artifacts/layout';
import { startDelayProxy } from '../helpers/delay-proxy';
import { shardDir, shardInput, shardRows } from '../helpers/shard-fixture';

/**
 * A finished shard's rows are in a fixed order (prompt position, then sample index) whatever the teacher's timing
 * and whatever an earlier attempt left in the .partial; and a shard heartbeats on a timer, so a teacher slower per
 * request than the heartbeat timeout does not time the attempt out.
 */
let teacher: Awaited<ReturnType<typeof startTeacherServer>>;
beforeAll(async () => (teacher = await startTeacherServer({ port: 0 })));
afterAll(async () => teacher.close());

const delayProxy = (delayFor: (i: number) => number) => startDelayProxy(teacher.url, delayFor);

const order = (rows: { promptId: string; sampleIndex: number }[]) => rows.map((r) => `${r.promptId}#${r.sampleIndex}`);
const expectedOrder = (prompts: number, n: number) =>
  Array.from({ length: prompts }, (_, p) => Array.from({ length: n }, (_, i) => `p${p}#${i}`)).flat();

test('with several request lanes the shard is in prompt order whatever order the answers arrive in', async () => {
  // later requests answer first: completion order is the reverse of the prompts' order within each wave of lanes
  const proxy = await delayProxy((i) => Math.max(0, 120 - 30 * (i % 4)));
  try {
    const dir = await shardDir(12);
    await generateShard(shardInput(dir, { baseURL: proxy.url, concurrency: 4 }));
    const rows = await shardRows(dir);
    expect(order(rows)).toEqual(expectedOrder(12, 3));
    expect(existsSync(`${layout.shardSamples(dir, 0)}.partial`)).toBe(false);
  } finally {
    await proxy.close();
  }
});

test('a resumed shard (an earlier attempt wrote later prompts first) equals a fault-free one, byte for byte but latency', async () => {
  const clean = await shardDir(8);
  await generateShard(shardInput(clean, { baseURL: teacher.url, concurrency: 1 }));
  const want = await shardRows(clean);

  const dir = await shardDir(8);
  // what a killed attempt with 3 lanes may leave: prompts 5 and 2 done (in that order), a torn line of prompt 7
  const byPrompt = (id: string) =>
    want
      .filter((r) => r.promptId === id)
      .map((r) => JSON.stringify(r) + '\n')
      .join('');
  await fs.mkdir(path.dirname(layout.shardSamples(dir, 0)), { recursive: true });
  await fs.writeFile(
    `${layout.shardSamples(dir, 0)}.partial`,
    byPrompt('p5') + byPrompt('p2') + byPrompt('p7').slice(0, 50),
  );
  const r = await generateShard(shardInput(dir, { baseURL: teacher.url, concurrency: 3 }));
  expect(r.resumedSamples).toBe(6);
  const got = await shardRows(dir);
  const strip = (rows: typeof want) => rows.map(({ latencyMs: _l, ...rest }) => JSON.stringify(rest));
  expect(strip(got)).toEqual(strip(want));
  expect(existsSync(`${layout.shardSamples(dir, 0)}.partial`)).toBe(false);
});

test('a finished shard with a leftover .partial (killed between rename and cleanup) is returned as is and the .partial removed', async () => {
  const dir = await shardDir(3);
  await generateShard(shardInput(dir, { baseURL: teacher.url }));
  const before = await fs.readFile(layout.shardSamples(dir, 0), 'utf8');
  await fs.writeFile(`${layout.shardSamples(dir, 0)}.partial`, before);
  const r = await generateShard(shardInput(dir, { baseURL: teacher.url }));
  expect(r).toMatchObject({ samples: 9, requests: 0 });
  expect(await fs.readFile(layout.shardSamples(dir, 0), 'utf8')).toBe(before);
  expect(existsSync(`${layout.shardSamples(dir, 0)}.partial`)).toBe(false);
});

test('a teacher slower per request than the heartbeat timeout: the shard heartbeats on a timer meanwhile', async () => {
  const proxy = await delayProxy(() => 1200);
  try {
    const dir = await shardDir(2);
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 400 });
    const beats: number[] = [];
    const started = Date.now();
    env.on('heartbeat', () => beats.push(Date.now() - started));
    await env.run(generateShard, shardInput(dir, { baseURL: proxy.url, concurrency: 1 }));
    // two requests of 1.2 s each: a beat every 100 ms (a quarter of the timeout), not one per finished prompt
    const gaps = beats.map((t, i) => t - (beats[i - 1] ?? 0));
    expect(beats.length).toBeGreaterThanOrEqual(10);
    expect(Math.max(...gaps)).toBeLessThan(400);
  } finally {
    await proxy.close();
  }
});
