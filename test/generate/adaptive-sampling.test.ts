/** @jest-environment ./test/helpers/outer-realm-env.js */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTeacherServer, type TeacherServer } from '../../infra/teacher/server';
import { decodeSampleLogprobs, scanFrames } from '../../activities/generate/logprobs-sidecar';
import { writeJsonAtomic } from '../../activities/artifacts/store';
import { exportInitialModel } from '../helpers/trainer-fixture';
import { generateShard, shardSamplingFile } from '../../activities/generate/generate-shard';
import { layout } from '../../activities/artifacts/layout';
import { readJsonl } from '../../activities/artifacts/store';
import { rejectSample } from '../../activities/verify/reject-sample';
import { checkRunSpec, FiltersSchema, SamplingSchema, VerifierSchema } from '../../schemas/run-spec';
import { formatFilter } from '../../activities/filter/format-filter';
import type { StopRecord } from '../../activities/generate/adaptive-sampling';
import { startSolveRateEndpoint, type SolveRateEndpoint } from '../../bench/sampling/solve-rate-endpoint';
import { shardDir, shardInput, shardRows } from '../helpers/shard-fixture';

// shardDir's prompts are "Compute 10+20.", "Compute 11+21.", …: even prompts are always solved, odd ones never.
const pinned = (prompt: string) => {
  const m = /Compute (\d+)\+/.exec(prompt);
  return m ? (Number(m[1]) % 2 === 0 ? 1 : 0) : undefined;
};

let teacher: SolveRateEndpoint;
beforeAll(async () => (teacher = await startSolveRateEndpoint({ solveRate: pinned })));
afterAll(async () => teacher.close());
beforeEach(() => {
  teacher.log.length = 0;
  teacher.failAfter = undefined;
});

const adaptive = { minSamples: 1, maxSamples: 8, roundSize: 2, stopAfterAccepted: 2 };
const input = (runDir: string, extra: Record<string, unknown> = {}, teacherExtra: Record<string, unknown> = {}) => ({
  ...shardInput(
    runDir,
    { baseURL: teacher.url, model: 'solve-rate-sim', ...teacherExtra },
    { max_tokens: 4096, adaptive: { ...adaptive, ...extra } },
  ),
  verifier: VerifierSchema.parse({ type: 'math', keepPerPrompt: 2 }),
});

async function stopsOf(runDir: string): Promise<Map<string, StopRecord['stopped']>> {
  const out = new Map<string, StopRecord['stopped']>();
  for await (const s of readJsonl<StopRecord['stopped']>(shardSamplingFile(layout.shardSamples(runDir, 0))))
    out.set(s.promptId, s);
  return out;
}

function perPrompt(ids: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const id of ids) out.set(id.split('#')[0]!, (out.get(id.split('#')[0]!) ?? 0) + 1);
  return out;
}

const answeredKeys = (log: SolveRateEndpoint['log']) =>
  log.filter((r) => r.answered).map((r) => `${r.prompt}|${r.seed}|${r.n}`);

test('a solved prompt stops at the target; an unsolved one gets rounds up to maxSamples', async () => {
  const runDir = await shardDir(6);
  const r = await generateShard(input(runDir));
  const rows = await shardRows(runDir);
  const counts = perPrompt(rows.map((s) => s.id));
  const stops = await stopsOf(runDir);
  for (let i = 0; i < 6; i++) {
    const solved = i % 2 === 0;
    // solved: one round of 2 (both correct) reaches stopAfterAccepted 2; unsolved: 4 rounds of 2
    expect(counts.get(`p${i}`)).toBe(solved ? 2 : 8);
    expect(stops.get(`p${i}`)).toMatchObject({
      reason: solved ? 'target' : 'max_samples',
      drawn: solved ? 2 : 8,
      accepted: solved ? 2 : 0,
    });
  }
  expect(new Set(rows.map((s) => s.id)).size).toBe(rows.length);
  // one request per round: 3 × 1 + 3 × 4, each round with its own seed
  expect(teacher.log.length).toBe(15);
  expect(new Set(answeredKeys(teacher.log)).size).toBe(15);
  expect(r).toMatchObject({
    samples: 30,
    requests: 15,
    adaptive: { drawn: 30, accepted: 6, stopped: { target: 3, max_samples: 3, gave_up: 0 } },
  });
  expect(rows.reduce((t, s) => t + s.usage.completionTokens, 0)).toBe(r.completionTokens);
  // no attempt file is left behind
  expect((await fs.readdir(`${runDir}/generate`)).filter((f) => f.includes('.partial'))).toEqual([]);

  // the reject-sample stage reaches the verdicts generation stopped on
  const v = await rejectSample({
    runDir,
    samples: r.samplesRef,
    verifier: VerifierSchema.parse({ type: 'math', keepPerPrompt: 2 }),
  });
  expect(v).toMatchObject({ samplesIn: 30, accepted: 6, promptsSolved: 3, prompts: 6 });

  // and the dataset card reports what was drawn per prompt and why each stopped
  const f = await formatFilter({ runDir, accepted: v.acceptedRef, filters: FiltersSchema.parse({}) });
  const card = JSON.parse(await fs.readFile(fileURLToPath(f.cardRef.uri), 'utf8')) as { adaptiveSampling?: unknown };
  expect(card.adaptiveSampling).toMatchObject({
    prompts: 6,
    drawn: 30,
    accepted: 6,
    stopped: { target: 3, max_samples: 3, gave_up: 0 },
    drawnPerPrompt: { 2: 3, 8: 3 },
  });
});

test('giveUpAfter stops a prompt whose first samples are all wrong', async () => {
  const runDir = await shardDir(4);
  const r = await generateShard(input(runDir, { giveUpAfter: 4 }));
  const counts = perPrompt((await shardRows(runDir)).map((s) => s.id));
  expect([...counts.entries()].sort()).toEqual([
    ['p0', 2],
    ['p1', 4],
    ['p2', 2],
    ['p3', 4],
  ]);
  expect(r.adaptive?.stopped).toEqual({ target: 2, max_samples: 0, gave_up: 2, budget: 0 });
});

test('a retry after a failure mid-shard asks no answered request again and commits what a fault-free run commits', async () => {
  const reference = await shardDir(6);
  await generateShard(input(reference, {}, { concurrency: 1 }));
  const full = await shardRows(reference);
  const fullLog = answeredKeys(teacher.log);
  teacher.log.length = 0;

  const runDir = await shardDir(6);
  // The endpoint answers 3 requests (p0's one round, p1's first two of four), then refuses: the attempt dies in the
  // middle of p1, whose state the retry must rebuild from the two rounds on disk.
  teacher.failAfter = 3;
  const err = await generateShard(input(runDir, {}, { concurrency: 1, maxRetries: 0 })).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect(teacher.log.filter((x) => x.answered).length).toBe(3);
  teacher.failAfter = undefined;
  const r = await generateShard(input(runDir, {}, { concurrency: 1, maxRetries: 0 }));

  const answered = answeredKeys(teacher.log);
  expect(answered.length - new Set(answered).size).toBe(0);
  expect([...answered].sort()).toEqual([...fullLog].sort());
  const rows = await shardRows(runDir);
  expect(rows.length - new Set(rows.map((s) => s.id)).size).toBe(0);
  expect(rows.map((s) => [s.id, s.content])).toEqual(full.map((s) => [s.id, s.content]));
  expect(r.resumedSamples).toBe(2 + 4);
  expect(r.requests).toBe(fullLog.length - 3);
});

test('two attempts running at once commit each sample exactly once, with the stop records agreeing', async () => {
  const reference = await shardDir(6);
  await generateShard(input(reference));
  const full = await shardRows(reference);
  const runDir = await shardDir(6);
  const [a, b] = await Promise.all([generateShard(input(runDir)), generateShard(input(runDir))]);
  const rows = await shardRows(runDir);
  expect(rows.length - new Set(rows.map((s) => s.id)).size).toBe(0);
  expect(rows.map((s) => s.id)).toEqual(full.map((s) => s.id));
  expect(a.samples).toBe(rows.length);
  expect(b.samples).toBe(rows.length);
  expect([...(await stopsOf(runDir)).values()]).toEqual([...(await stopsOf(reference)).values()]);
});

test('a committed adaptive shard is reported from disk and never sampled again', async () => {
  const runDir = await shardDir(2);
  await generateShard(input(runDir));
  teacher.log.length = 0;
  // A committed shard: nothing is asked again.
  const again = await generateShard(input(runDir));
  expect(teacher.log.length).toBe(0);
  expect(again).toMatchObject({ requests: 0, samples: 10, adaptive: { drawn: 10 } });
});

test('spec: adaptive settings are validated, naming the field', () => {
  const base = {
    name: 'r1',
    dataset: { source: { type: 'builtin', task: 'arithmetic' } },
    teacher: { baseURL: 'http://127.0.0.1:1/v1', model: 'm' },
  };
  const bad = checkRunSpec({ ...base, sampling: { adaptive: { maxSamples: 4, roundSize: 8 } } });
  expect(bad.ok).toBe(false);
  if (!bad.ok) expect(bad.issues.map((i) => i.path)).toContain('sampling.adaptive.roundSize');
  const unknown = checkRunSpec({ ...base, sampling: { adaptive: { maxSample: 4 } } });
  expect(unknown.ok).toBe(false);
  const batch = checkRunSpec({ ...base, teacher: { ...base.teacher, mode: 'batch' }, sampling: { adaptive: {} } });
  expect(!batch.ok && batch.issues.some((i) => i.path === 'sampling.adaptive' && /online/.test(i.message))).toBe(true);
  expect(SamplingSchema.parse({ adaptive: {} }).adaptive).toEqual({ minSamples: 1, maxSamples: 16, roundSize: 4 });
  const ok = checkRunSpec({ ...base, sampling: { adaptive: { maxSamples: 16, stopAfterAccepted: 2 } } });
  expect(ok.ok).toBe(true);
});

describe("with the teacher's logprobs", () => {
  // An untrained tiny GPT served with an exact softmax: it never solves a prompt, so every prompt runs to maxSamples.
  let server: TeacherServer;
  beforeAll(async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptive-lp-'));
    const config = path.join(dir, 'config.json');
    await writeJsonAtomic(config, {
      data: 'none.jsonl',
      output_dir: dir,
      model: { d_model: 32, n_layer: 1, n_head: 2, max_len: 96 },
      seed: 1,
    });
    exportInitialModel(config, path.join(dir, 'model'));
    server = await startTeacherServer({ port: 0, students: { 'tiny-untrained': path.join(dir, 'model') } });
  }, 120_000);
  afterAll(async () => server?.close());

  test("the shard sidecar holds one record per committed sample, in the shard's order", async () => {
    const runDir = await shardDir(3);
    const r = await generateShard({
      ...shardInput(
        runDir,
        { baseURL: server.url, model: 'tiny-untrained', maxRetries: 3 },
        { max_tokens: 12, logprobs: 3, adaptive: { maxSamples: 4, roundSize: 2 } },
      ),
      verifier: VerifierSchema.parse({ type: 'math', keepPerPrompt: 1 }),
    });
    const samples = await shardRows(runDir);
    const buf = await fs.readFile(layout.shardLogprobs(runDir, 0));
    const { frames, validBytes } = scanFrames(buf);
    expect(validBytes).toBe(buf.length);
    const records = frames.map((f) => decodeSampleLogprobs(buf.subarray(f.offset, f.offset + f.length)));
    expect(records.map((x) => x.id)).toEqual(samples.map((s) => s.id));
    expect(r.samples).toBe(samples.length);
    expect(r.adaptive?.drawn).toBe(samples.length);
  }, 120_000);
});
