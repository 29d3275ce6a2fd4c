import { startTeacherServer } from '../../infra/teacher/server';
import { startFaultProxy, type Fault } from '../../infra/fault-proxy';
import { generateShard } from '../../activities/generate/generate-shard';
import { shardDir, shardInput, shardRows } from '../helpers/shard-fixture';

/**
 * Generation through a fault-injecting proxy (infra/fault-proxy.ts) in front of the local teacher: every fault the
 * wild produces, on a fixed schedule, against the real openai client. The shard must come out exactly as a
 * fault-free run: no sample lost, none duplicated, same content.
 */
let teacher: Awaited<ReturnType<typeof startTeacherServer>>;
beforeAll(async () => (teacher = await startTeacherServer({ port: 0 })));
afterAll(async () => teacher.close());

const PROMPTS = 12;

async function faultFreeShard() {
  const dir = await shardDir(PROMPTS);
  await generateShard(shardInput(dir, { baseURL: teacher.url }));
  return shardRows(dir);
}

// sameContent: every retry re-asks with the prompt's own seed, so the content equals a fault-free run's. When a
// short reply comes twice for one prompt the endpoint is taken to cap n and fresh seeds fill the gap: ids are
// still exactly the same, contents may differ.
test.each<[string, (i: number) => Fault, boolean]>([
  ['429 storm with Retry-After', (i) => (i < 6 ? 'rate_limit' : 'none'), true],
  ['5xx burst', (i) => (i % 3 === 0 && i < 18 ? (i % 2 ? 'server_error' : 'unavailable') : 'none'), true],
  ['hung responses', (i) => (i === 1 || i === 4 ? 'hang' : 'none'), true],
  ['connection resets', (i) => (i % 4 === 1 && i < 16 ? 'reset' : 'none'), true],
  ['truncated JSON', (i) => (i % 5 === 2 && i < 20 ? 'truncated_json' : 'none'), true],
  ['fewer choices than n', (i) => (i % 2 === 0 && i < 16 ? 'fewer_choices' : 'none'), false],
  [
    'everything at once',
    (i) =>
      (
        [
          'rate_limit',
          'none',
          'server_error',
          'reset',
          'none',
          'truncated_json',
          'fewer_choices',
          'none',
          'hang',
        ] as Fault[]
      )[i % 9]!,
    false,
  ],
])('%s: no sample lost or duplicated', async (_name, plan, sameContent) => {
  const expected = await faultFreeShard();
  const proxy = await startFaultProxy({
    upstream: teacher.url,
    plan: (i) => (i < 40 ? plan(i) : 'none'),
    retryAfterSeconds: 1,
  });
  try {
    const dir = await shardDir(PROMPTS);
    const r = await generateShard(shardInput(dir, { baseURL: proxy.url, maxRetries: 6, requestTimeoutSeconds: 1 }));
    const got = await shardRows(dir);
    expect(r.samples).toBe(PROMPTS * 3);
    expect(got).toHaveLength(PROMPTS * 3);
    expect(new Set(got.map((s) => s.id)).size).toBe(PROMPTS * 3);
    expect(got.map((s) => s.id).sort()).toEqual(expected.map((s) => s.id).sort());
    const want = new Map(expected.map((s) => [s.id, s.content]));
    for (const s of got) {
      expect(s.content).toMatch(/\\boxed\{/);
      if (sameContent) expect(s.content).toBe(want.get(s.id));
    }
    const stats = proxy.stats();
    expect(stats.requests).toBeGreaterThan(PROMPTS); // the faults really happened and were retried
  } finally {
    await proxy.close();
  }
});

test('a teacher that is down for good ends in a clear error after bounded retries', async () => {
  const proxy = await startFaultProxy({ upstream: teacher.url, plan: () => 'unavailable' });
  try {
    const dir = await shardDir(2);
    const err = (await generateShard(shardInput(dir, { baseURL: proxy.url, maxRetries: 2, concurrency: 1 })).catch(
      (e) => e,
    )) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/procedural-arithmetic-teacher.*503|503.*unavailable/i);
    // the final error names the endpoint and the model, and stays retryable (Temporal's policy bounds the attempts)
    expect(err.message).toContain(`Teacher procedural-arithmetic-teacher at ${proxy.url} answered HTTP 503`);
    expect(err).toMatchObject({ type: 'TeacherUnavailable', nonRetryable: false });
    expect(proxy.stats().requests).toBe(3); // one try + maxRetries, then it stops
  } finally {
    await proxy.close();
  }
});
