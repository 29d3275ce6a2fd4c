import { execFile } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { generateShard } from '../../activities/generate/generate-shard';
import { generationConfigHash, sampleId } from '../../activities/generate/sample-ids';
import { layout } from '../../activities/artifacts/layout';
import { projectRoot } from '../../infra/paths';
import { shardDir, shardInput } from '../helpers/shard-fixture';

/**
 * A retried shard reads what earlier attempts wrote by streaming: memory stays bounded by the longest line, not by
 * the size of the attempt files (a shard of long chains of thought runs to gigabytes). Run in a child process (the
 * compiled generateShard, dist/) whose JavaScript heap is capped far below the size of the .partial, and measured as
 * its peak RSS against a baseline run on a tiny shard. And the attempt heartbeats while it reads and commits them.
 */
jest.setTimeout(300_000);

const run = promisify(execFile);
const HEAP_MIB = 48;
const runDirs: string[] = [];
afterAll(() => {
  for (const d of runDirs) rmSync(d, { recursive: true, force: true });
});
const compiled = path.join(projectRoot, 'dist', 'activities', 'generate', 'generate-shard.js');

beforeAll(() => {
  // the child runs the compiled code: it must be there and no older than the sources it is built from
  const sources = ['generate-shard.ts', 'shard-attempts.ts'].map((f) =>
    path.join(projectRoot, 'activities', 'generate', f),
  );
  if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run npm run build first`);
  for (const s of sources)
    if (statSync(s).mtimeMs > statSync(compiled).mtimeMs)
      throw new Error(`${compiled} is older than ${s}: run npm run build first`);
});

/** A shard whose every sample is already in a .partial (plus a torn copy of the first line at its end). */
async function shardWithPartial(
  prompts: number,
  bytesPerSample: number,
): Promise<{ input: ReturnType<typeof shardInput>; bytes: number }> {
  const dir = await shardDir(prompts);
  runDirs.push(dir);
  const input = shardInput(dir, { baseURL: 'http://127.0.0.1:9/v1' }, { n: 2 });
  const hash = generationConfigHash(input);
  mkdirSync(path.dirname(layout.shardSamples(dir, 0)), { recursive: true });
  const out = createWriteStream(`${layout.shardSamples(dir, 0)}.partial`);
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  let first = '';
  for (let p = 0; p < prompts; p++) {
    for (let i = 0; i < 2; i++) {
      const row = {
        id: sampleId(`p${p}`, i, hash),
        promptId: `p${p}`,
        sampleIndex: i,
        configHash: hash,
        prompt: `Compute ${10 + p}+${20 + p}.`,
        answer: String(30 + 2 * p),
        content: `<think>${`${p}.${i} `.repeat(Math.ceil(bytesPerSample / `${p}.${i} `.length))}</think> ${30 + 2 * p}`,
        finishReason: 'stop',
        usage: { promptTokens: 5, completionTokens: bytesPerSample / 4 },
        teacher: { model: 'procedural-arithmetic-teacher', systemFingerprint: null },
        sampling: { temperature: 1, top_p: 0.95, max_tokens: 200, seed: 11 },
        latencyMs: 1,
      };
      const line = JSON.stringify(row) + '\n';
      if (!first) first = line;
      if (!out.write(line)) await Promise.race([failed, new Promise<void>((r) => out.once('drain', () => r()))]);
    }
  }
  out.write(first.slice(0, first.length / 2));
  await Promise.race([failed, new Promise<void>((resolve) => out.end(() => resolve()))]);
  return { input, bytes: statSync(`${layout.shardSamples(dir, 0)}.partial`).size };
}

/** Runs the compiled generateShard in a child process: its result and its peak resident memory. */
async function generateInChild(
  input: unknown,
): Promise<{ samples: number; requests: number; resumedSamples: number; maxRssMiB: number }> {
  const script = `require(${JSON.stringify(compiled)}).generateShard(JSON.parse(process.argv[1])).then((r) => console.log(JSON.stringify({ samples: r.samples, requests: r.requests, resumedSamples: r.resumedSamples, maxRssMiB: process.resourceUsage().maxRSS / 1024 })), (e) => { console.error(e); process.exitCode = 1; }).finally(() => process.exit())`;
  const { stdout } = await run(
    process.execPath,
    [`--max-old-space-size=${HEAP_MIB}`, '-e', script, JSON.stringify(input)],
    { maxBuffer: 1 << 20, timeout: 120_000 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

test('resuming a shard from a .partial five times the size of the heap: memory bounded by the longest line, not the file', async () => {
  const baseline = await generateInChild((await shardWithPartial(2, 2 ** 16)).input);
  const prompts = 64;
  const big = await shardWithPartial(prompts, 2 * 2 ** 20);
  const r = await generateInChild(big.input);
  const partialMiB = big.bytes / 2 ** 20;
  const grewMiB = r.maxRssMiB - baseline.maxRssMiB;
  console.log(
    `partial ${partialMiB.toFixed(0)} MiB, heap cap ${HEAP_MIB} MiB: peak RSS ${r.maxRssMiB.toFixed(0)} MiB, baseline ${baseline.maxRssMiB.toFixed(0)} MiB (+${grewMiB.toFixed(0)} MiB)`,
  );
  expect(partialMiB).toBeGreaterThan(5 * HEAP_MIB);
  expect(r).toMatchObject({ samples: prompts * 2, requests: 0, resumedSamples: prompts * 2 });
  // reading the file whole would hold it at least twice over (its bytes, then a string of them)
  expect(grewMiB).toBeLessThan(partialMiB / 2);
});

test('a large .partial read at the start and committed at the end: the heartbeat keeps coming all along', async () => {
  const prompts = 48;
  const { input, bytes } = await shardWithPartial(prompts, 2 ** 20);
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 400 });
  const beats: number[] = [];
  const started = Date.now();
  env.on('heartbeat', () => beats.push(Date.now() - started));
  const r = await env.run(generateShard, input);
  const elapsed = Date.now() - started;
  const gaps = [...beats, elapsed].map((t, i) => t - (i ? beats[i - 1]! : 0));
  console.log(
    `partial ${(bytes / 2 ** 20).toFixed(0)} MiB resumed and committed in ${elapsed} ms: ${beats.length} heartbeats, longest gap ${Math.max(...gaps)} ms`,
  );
  expect(r).toMatchObject({ samples: prompts * 2, requests: 0 });
  // the staging holds: reading and committing the shard takes longer than the heartbeat timeout
  expect(elapsed).toBeGreaterThan(400);
  expect(Math.max(...gaps)).toBeLessThan(400);
});
