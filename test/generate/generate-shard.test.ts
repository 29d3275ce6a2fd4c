import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { startTeacherServer } from '../../infra/teacher/server';
import { generateShard } from '../../activities/generate/generate-shard';
import { layout } from '../../activities/artifacts/layout';
import { shardDir, shardInput, shardRows } from '../helpers/shard-fixture';

let teacher: Awaited<ReturnType<typeof startTeacherServer>>;
beforeAll(async () => (teacher = await startTeacherServer({ port: 0 })));
afterAll(async () => teacher.close());

const input = (runDir: string, extra: Record<string, unknown> = {}) =>
  shardInput(runDir, { baseURL: teacher.url, ...extra });

test('writes n samples per prompt with deterministic ids and provenance', async () => {
  const runDir = await shardDir(5);
  const r = await generateShard(input(runDir));
  expect(r).toMatchObject({ prompts: 5, samples: 15, requests: 5, resumedSamples: 0 });
  const written = await shardRows(runDir);
  expect(new Set(written.map((s) => s.id)).size).toBe(15);
  const s = written[0]!;
  expect(s.id).toMatch(/^p\d#\d@[0-9a-f]{12}$/);
  expect(s.teacher.model).toBe('procedural-arithmetic-teacher');
  expect(s.sampling).toEqual({ temperature: 1, top_p: 0.95, max_tokens: 200, seed: 11 });
  expect(s.finishReason).toBe('stop');
  expect(s.usage.completionTokens).toBeGreaterThan(0);
  expect(written.reduce((t, x) => t + x.usage.completionTokens, 0)).toBe(r.completionTokens);
});

test('a retried shard drops a torn line, keeps what was written, and writes every sample exactly once', async () => {
  const reference = await shardDir(6);
  await generateShard(input(reference));
  const full = await shardRows(reference);

  const runDir = await shardDir(6);
  const partial = `${layout.shardSamples(runDir, 0)}.partial`;
  await fs.mkdir(path.dirname(partial), { recursive: true });
  // What a killed attempt leaves: two prompts complete, then half a line.
  const firstTwo = full.filter((s) => s.promptId === 'p0' || s.promptId === 'p1');
  await fs.writeFile(
    partial,
    firstTwo.map((s) => JSON.stringify(s)).join('\n') + '\n' + JSON.stringify(full[6]).slice(0, 40),
  );

  const r = await generateShard(input(runDir));
  expect(r.resumedSamples).toBe(6);
  expect(r.requests).toBe(4);
  const resumed = await shardRows(runDir);
  expect(resumed.map((s) => s.id).sort()).toEqual(full.map((s) => s.id).sort());
  // Same seed per prompt, so the redone prompts got the same samples a fault-free run did.
  const byId = new Map(full.map((s) => [s.id, s.content]));
  for (const s of resumed) expect(s.content).toBe(byId.get(s.id));

  // A finished shard is never regenerated.
  const again = await generateShard(input(runDir));
  expect(again).toMatchObject({ requests: 0, samples: 18 });
});

test('auth errors fail fast and non-retryably, naming what to fix', async () => {
  const secured = await startTeacherServer({ port: 0, apiKey: 'right' });
  try {
    const runDir = await shardDir(2);
    process.env.DISTILLERY_TEST_WRONG_KEY = 'wrong';
    // The worker's key policy lets this variable go to the local endpoint: the endpoint itself refuses the key.
    process.env.DISTILLERY_KEY_POLICY = JSON.stringify({ DISTILLERY_TEST_WRONG_KEY: ['127.0.0.1'] });
    const started = Date.now();
    const err = await generateShard(
      shardInput(runDir, { baseURL: secured.url, apiKeyEnv: 'DISTILLERY_TEST_WRONG_KEY' }),
    ).catch((e) => e);
    delete process.env.DISTILLERY_KEY_POLICY;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe('TeacherHttp401');
    expect(err.message).toMatch(/teacher\.apiKeyEnv/);
  } finally {
    await secured.close();
  }
});
