import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTeacherServer } from '../../infra/teacher/server';
import { generateShard } from '../../activities/generate/generate-shard';
import { layout } from '../../activities/artifacts/layout';
import { readJsonl, writeJsonlAtomic } from '../../activities/artifacts/store';
import { SamplingSchema, TeacherSchema } from '../../schemas/run-spec';
import type { SampleRow } from '../../schemas/artifact';

let teacher: Awaited<ReturnType<typeof startTeacherServer>>;
beforeAll(async () => (teacher = await startTeacherServer({ port: 0 })));
afterAll(async () => teacher.close());

async function shardDir(prompts: number): Promise<string> {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'shard-'));
  const rows = Array.from({ length: prompts }, (_, i) => ({ id: `p${i}`, prompt: `Compute ${10 + i}+${20 + i}.`, answer: String(30 + 2 * i) }));
  await writeJsonlAtomic(layout.shardPrompts(runDir, 0), rows);
  return runDir;
}

function input(runDir: string, extra: Partial<ReturnType<typeof TeacherSchema.parse>> = {}) {
  return {
    runDir,
    shardIndex: 0,
    teacher: TeacherSchema.parse({ baseURL: teacher.url, model: 'procedural-arithmetic-teacher', concurrency: 3, ...extra }),
    sampling: SamplingSchema.parse({ n: 3, temperature: 1, seed: 11, max_tokens: 200 }),
  };
}

async function rows(file: string): Promise<SampleRow[]> {
  const out: SampleRow[] = [];
  for await (const r of readJsonl<SampleRow>(file)) out.push(r);
  return out;
}

test('writes n samples per prompt with deterministic ids and provenance', async () => {
  const runDir = await shardDir(5);
  const r = await generateShard(input(runDir));
  expect(r).toMatchObject({ prompts: 5, samples: 15, requests: 5, resumedSamples: 0 });
  const written = await rows(layout.shardSamples(runDir, 0));
  expect(new Set(written.map((s) => s.id)).size).toBe(15);
  const s = written[0]!;
  expect(s.id).toMatch(/^p\d#\d@[0-9a-f]{12}$/);
  expect(s.teacher.model).toBe('procedural-arithmetic-teacher');
  expect(s.sampling).toEqual({ temperature: 1, top_p: 0.95, max_tokens: 200, seed: 11 });
  expect(s.finishReason).toBe('stop');
  expect(s.usage.completionTokens).toBeGreaterThan(0);
});

test('a retried shard drops a torn line, keeps what was written, and writes every sample exactly once', async () => {
  const reference = await shardDir(6);
  const full = await rows((await generateShard(input(reference)), layout.shardSamples(reference, 0)));

  const runDir = await shardDir(6);
  const partial = `${layout.shardSamples(runDir, 0)}.partial`;
  await fs.mkdir(path.dirname(partial), { recursive: true });
  // What a killed attempt leaves: two prompts complete, then half a line.
  const firstTwo = full.filter((s) => s.promptId === 'p0' || s.promptId === 'p1');
  await fs.writeFile(partial, firstTwo.map((s) => JSON.stringify(s)).join('\n') + '\n' + JSON.stringify(full[6]).slice(0, 40));

  const r = await generateShard(input(runDir));
  expect(r.resumedSamples).toBe(6);
  expect(r.requests).toBe(4);
  const resumed = await rows(layout.shardSamples(runDir, 0));
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
    const err = await generateShard({ ...input(runDir, { apiKeyEnv: 'DISTILLERY_TEST_WRONG_KEY', maxRetries: 0 }), teacher: TeacherSchema.parse({ baseURL: secured.url, model: 'procedural-arithmetic-teacher', apiKeyEnv: 'DISTILLERY_TEST_WRONG_KEY' }) }).catch((e) => e);
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe('TeacherHttp401');
    expect(err.message).toMatch(/teacher\.apiKeyEnv/);
  } finally {
    await secured.close();
  }
});
