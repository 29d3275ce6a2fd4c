/** @jest-environment ./test/helpers/outer-realm-env.js */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { startTeacherServer, type TeacherServer } from '../../infra/teacher/server';
import { generateShard } from '../../activities/generate/generate-shard';
import { mergeShards } from '../../activities/generate/merge-shards';
import { layout } from '../../activities/artifacts/layout';
import { writeJsonAtomic } from '../../activities/artifacts/store';
import { decodeSampleLogprobs, encodeSampleLogprobs, scanFrames } from '../../activities/generate/logprobs-sidecar';
import { checkRunSpec } from '../../schemas/run-spec';
import { exportInitialModel } from '../helpers/trainer-fixture';
import { shardDir, shardInput, shardRows } from '../helpers/shard-fixture';

/**
 * Capture of the teacher's top-k logprobs beside the samples: against a real HTTP server answering from a real ONNX
 * student (exact softmax), and against the procedural teacher, which has no distribution and returns logprobs: null.
 */
let server: TeacherServer;
const STUDENT = 'tiny-untrained';
const K = 5;

beforeAll(async () => {
  const dir = await fs.mkdtemp(path.join(require('node:os').tmpdir(), 'lp-model-'));
  const config = path.join(dir, 'config.json');
  await writeJsonAtomic(config, {
    data: 'none.jsonl',
    output_dir: dir,
    model: { d_model: 32, n_layer: 1, n_head: 2, max_len: 96 },
    seed: 1,
  });
  exportInitialModel(config, path.join(dir, 'model'));
  server = await startTeacherServer({ port: 0, students: { [STUDENT]: path.join(dir, 'model') } });
}, 120_000);
afterAll(async () => server?.close());

const input = (runDir: string, model: string, sampling: Record<string, unknown> = {}) =>
  shardInput(runDir, { baseURL: server.url, model, maxRetries: 3 }, { n: 2, max_tokens: 12, logprobs: K, ...sampling });

async function sidecarRecords(file: string) {
  const buf = await fs.readFile(file);
  const { frames, validBytes } = scanFrames(buf);
  expect(validBytes).toBe(buf.length);
  return frames.map((f) => decodeSampleLogprobs(buf.subarray(f.offset, f.offset + f.length)));
}

test('each sample gets one checksummed record whose tokens spell its content, with k alternatives each', async () => {
  const runDir = await shardDir(4);
  const r = await generateShard(input(runDir, STUDENT));
  const samples = await shardRows(runDir);
  const records = await sidecarRecords(layout.shardLogprobs(runDir, 0));
  expect(r.samples).toBe(8);
  expect(records.map((x) => x.id)).toEqual(samples.map((s) => s.id));
  samples.forEach((s, i) => {
    const rec = records[i]!;
    expect(Buffer.concat(rec.tokens.map((t) => t.token.bytes)).toString('utf8')).toBe(s.content);
    for (const t of rec.tokens) {
      expect(t.top).toHaveLength(K);
      // an exact softmax: the alternatives are sorted, and the chosen token's logprob is one of the distribution's
      expect(t.top[0]!.logprob).toBeGreaterThanOrEqual(t.top[K - 1]!.logprob);
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(Math.exp(t.top[0]!.logprob)).toBeLessThanOrEqual(1 + 1e-6);
    }
  });
  // merged beside the merged samples, in the same order
  const merged = await mergeShards({ runDir, shardCount: 1 });
  expect(merged.logprobs).toMatchObject({ records: 8 });
  expect((await sidecarRecords(layout.logprobs(runDir))).map((x) => x.id)).toEqual(samples.map((s) => s.id));
}, 120_000);

test("a resumed shard cuts a torn record, lets a redone sample's newer record win, and ends with exactly one per sample", async () => {
  const reference = await shardDir(3);
  await generateShard(input(reference, STUDENT));
  const full = await shardRows(reference);
  const refRecords = await sidecarRecords(layout.shardLogprobs(reference, 0));

  const runDir = await shardDir(3);
  const partial = `${layout.shardSamples(runDir, 0)}.partial`;
  const lpPartial = `${layout.shardLogprobs(runDir, 0)}.partial`;
  await fs.mkdir(path.dirname(partial), { recursive: true });
  // A killed attempt: prompt p0's two samples and their records; p1's records were written but the kill came before
  // its sample lines (so p1 is redone and writes its records again); then half a record.
  const p0 = full.filter((s) => s.promptId === 'p0');
  await fs.writeFile(partial, p0.map((s) => JSON.stringify(s)).join('\n') + '\n');
  const stale = refRecords
    .filter((x) => x.id.startsWith('p1#'))
    .map((x) => encodeSampleLogprobs({ ...x, tokens: x.tokens.slice(0, 1) }));
  const firstFrames = refRecords.filter((x) => x.id.startsWith('p0#')).map(encodeSampleLogprobs);
  const torn = encodeSampleLogprobs(refRecords[4]!).subarray(0, 30);
  await fs.writeFile(lpPartial, Buffer.concat([...firstFrames, ...stale, torn]));

  const r = await generateShard(input(runDir, STUDENT));
  expect(r.resumedSamples).toBe(2);
  const samples = await shardRows(runDir);
  const records = await sidecarRecords(layout.shardLogprobs(runDir, 0));
  expect(records.map((x) => x.id)).toEqual(samples.map((s) => s.id));
  expect(new Set(records.map((x) => x.id)).size).toBe(samples.length);
  // the redone p1 samples carry their full records, not the stale one-token ones
  samples.forEach((s, i) =>
    expect(Buffer.concat(records[i]!.tokens.map((t) => t.token.bytes)).toString('utf8')).toBe(s.content),
  );
  await expect(fs.access(lpPartial)).rejects.toThrow();
}, 120_000);

test('two attempts wrote one sample differently: the committed line and its frame come from the same attempt file', async () => {
  const reference = await shardDir(3);
  await generateShard(input(reference, STUDENT));
  const full = await shardRows(reference);
  const refRecords = await sidecarRecords(layout.shardLogprobs(reference, 0));

  // Attempt 1 wrote p0 and p1 with their frames; attempt 2 (running beside it) wrote p0's first sample with other
  // content and a frame spelling that content, later than attempt 1's. The shard keeps attempt 1's line (the first
  // attempt's file takes precedence), so its frame must be attempt 1's too, not the latest one for that id.
  const runDir = await shardDir(3);
  const final = layout.shardSamples(runDir, 0);
  const lp = layout.shardLogprobs(runDir, 0);
  await fs.mkdir(path.dirname(final), { recursive: true });
  const first = full.filter((s) => s.promptId !== 'p2');
  await fs.writeFile(`${final}.attempt-1-0000aaaa.partial`, first.map((s) => JSON.stringify(s)).join('\n') + '\n');
  await fs.writeFile(
    `${lp}.attempt-1-0000aaaa.partial`,
    Buffer.concat(refRecords.filter((x) => !x.id.startsWith('p2#')).map(encodeSampleLogprobs)),
  );
  const victim = refRecords[0]!;
  const forged = {
    ...victim,
    tokens: [
      { ...victim.tokens[0]!, token: { ...victim.tokens[0]!.token, bytes: Buffer.from('FORGED') } },
      ...victim.tokens.slice(1),
    ],
  };
  const forgedContent = Buffer.concat(forged.tokens.map((t) => t.token.bytes)).toString('utf8');
  await fs.writeFile(
    `${final}.attempt-2-0000bbbb.partial`,
    JSON.stringify({ ...full[0]!, content: forgedContent }) + '\n',
  );
  await fs.writeFile(`${lp}.attempt-2-0000bbbb.partial`, encodeSampleLogprobs(forged));

  await generateShard(input(runDir, STUDENT));
  const samples = await shardRows(runDir);
  const records = await sidecarRecords(lp);
  expect(records.map((x) => x.id)).toEqual(samples.map((s) => s.id));
  expect(samples[0]!.content).toBe(full[0]!.content);
  samples.forEach((s, i) =>
    expect(Buffer.concat(records[i]!.tokens.map((t) => t.token.bytes)).toString('utf8')).toBe(s.content),
  );
  const left = (await fs.readdir(path.dirname(final))).filter((f) => f.endsWith('.partial'));
  expect(left).toEqual([]);
}, 120_000);

test('an endpoint that returns no logprobs fails the shard at once, non-retryably, naming the endpoint and the field', async () => {
  const runDir = await shardDir(3);
  const before = server.stats().completions;
  const err = await generateShard(input(runDir, 'procedural-arithmetic-teacher')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.nonRetryable).toBe(true);
  expect(f.type).toBe('TeacherLogprobsMissing');
  expect(f.message).toContain(server.url);
  expect(f.message).toContain('choices[0].logprobs.content');
  expect(f.message).toMatch(/reasoning APIs .*refuse logprobs/);
  // at once: no retries, at most one request per request lane before the failure surfaced
  expect(server.stats().completions - before).toBeLessThanOrEqual(3);
  await expect(fs.access(layout.shardSamples(runDir, 0))).rejects.toThrow();
});

test('a spec with objective kd needs sampling.logprobs (and topK within it)', () => {
  const base = {
    name: 'kd',
    dataset: { source: { type: 'builtin', task: 'arithmetic' } },
    teacher: { baseURL: 'http://127.0.0.1:1/v1', model: 'm' },
  };
  const missing = checkRunSpec({ ...base, fineTune: { objective: { type: 'kd' } } });
  expect(missing.ok).toBe(false);
  if (!missing.ok) expect(missing.issues.map((i) => i.path)).toContain('sampling.logprobs');
  const tooMany = checkRunSpec({
    ...base,
    sampling: { logprobs: 5 },
    fineTune: { objective: { type: 'kd', topK: 8 } },
  });
  expect(tooMany.ok).toBe(false);
  const ok = checkRunSpec({
    ...base,
    sampling: { logprobs: 20 },
    fineTune: { objective: { type: 'kd', temperature: 2 } },
  });
  expect(ok.ok && ok.spec.fineTune.objective).toEqual({ type: 'kd', temperature: 2, alpha: 0.5, tail: true });
  const sft = checkRunSpec(base);
  expect(sft.ok && sft.spec.fineTune.objective).toEqual({ type: 'sft' });
});
