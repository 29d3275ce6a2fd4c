import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import OpenAI from 'openai';
import { Client, Connection } from '@temporalio/client';
import { startDevServer } from '../../infra/temporal';
import { cacheDir, projectRoot } from '../../infra/paths';
import { startCpuWorker, startLocalTeacher } from '../../infra/processes';
import { prepareDataset } from '../../activities/prepare/prepare-dataset';
import { mapWithConcurrency } from '../../activities/generate/concurrency';
import { DatasetSchema, SamplingSchema, TeacherSchema } from '../../schemas/run-spec';
import type { GenerationInput } from '../../workflows/generation';
import type { GenerationTally } from '../../workflows/messages';

/**
 * bench:generate — the same prompts × n against the same local OpenAI-compatible endpoint with a fixed per-request
 * latency (the procedural teacher with --latency-ms: a fixed-latency endpoint, an honest benchmark tool), through
 * (a) the pipeline's generate stage on Temporal (real dev server, real CPU worker process, sharded child-less
 * generationWorkflow) and (b) a plain concurrent openai-client loop at the same concurrency. Prints requests/s of
 * each and their ratio; the last line is `ratio=<x>`. Both hold CONCURRENCY requests in flight: (b) with that many
 * lanes, (a) with the per-endpoint limiter (teacher.maxInFlight) across shards whose lanes add up to more.
 */
const PROMPTS = Number(process.env.BENCH_PROMPTS ?? 5000);
const N = 4;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 250);
const SHARD_SIZE = Number(process.env.BENCH_SHARD_SIZE ?? 250);
const SHARDS_IN_FLIGHT = 8;

async function plainLoop(url: string, prompts: { prompt: string }[]): Promise<number> {
  const client = new OpenAI({ baseURL: url, apiKey: 'x', maxRetries: 4 });
  const started = Date.now();
  await mapWithConcurrency(prompts, CONCURRENCY, async (p, i) => {
    const res = await client.chat.completions.create({ model: 'procedural-arithmetic-teacher', messages: [{ role: 'user', content: p.prompt }], n: N, temperature: 0.6, top_p: 0.95, max_tokens: 512, seed: i });
    if (res.choices.length !== N) throw new Error('short reply');
  });
  return (Date.now() - started) / 1000;
}

/** distilabel on the same prompts and endpoint, if bench/generate/setup.sh could install it (else null, said why). */
function distilabelRate(prompts: { prompt: string }[], url: string): { seconds: number; version: string } | null {
  const setup = spawnSync('bash', [path.join(projectRoot, 'bench', 'generate', 'setup.sh')], { stdio: 'inherit' });
  const python = path.join(cacheDir(), 'bench-venv-distilabel', 'bin', 'python');
  if (setup.status !== 0 || !existsSync(python)) {
    console.log('(c) distilabel: not installed (bench/generate/setup.sh failed); skipped');
    return null;
  }
  const file = path.join(os.tmpdir(), `bench-generate-prompts-${process.pid}.jsonl`);
  writeFileSync(file, prompts.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const run = spawnSync(python, [path.join(projectRoot, 'bench', 'generate', 'distilabel_run.py'), file, url, String(CONCURRENCY), String(N)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const last = run.stdout.trim().split('\n').pop() ?? '';
  if (run.status !== 0 || !last.startsWith('{')) {
    console.log(`(c) distilabel: run failed (${run.status}): ${run.stderr.slice(-500)}`);
    return null;
  }
  const version = spawnSync(python, ['-c', 'import distilabel; print(distilabel.__version__)'], { encoding: 'utf8' }).stdout.trim();
  return { seconds: (JSON.parse(last) as { seconds: number }).seconds, version };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-generate-'));
  const teacher = await startLocalTeacher(['--port', '0', '--latency-ms', String(LATENCY_MS), '--max-in-flight', '100000']);
  const url = String(teacher.readyInfo.url);
  const server = await startDevServer({ headless: true });
  const worker = await startCpuWorker({ TEMPORAL_ADDRESS: server.address });
  try {
    const dataset = DatasetSchema.parse({ source: { type: 'builtin', task: 'arithmetic', count: PROMPTS, seed: 1, digits: 3 } });
    const prepared = await prepareDataset({ artifactRoot: tmp, runId: 'bench', dataset, shardSize: SHARD_SIZE });
    const prompts: { prompt: string }[] = [];
    const { readJsonl } = await import('../../activities/artifacts/store');
    for await (const p of readJsonl<{ prompt: string }>(prepared.prompts)) prompts.push(p);

    // (b) first, so that (a)'s worker is warm either way: it does not favour the pipeline.
    const plainSeconds = await plainLoop(url, prompts);

    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    const input: GenerationInput = {
      runDir: prepared.runDir,
      parentWorkflowId: '',
      shardCount: prepared.shardCount,
      teacher: TeacherSchema.parse({ baseURL: url, model: 'procedural-arithmetic-teacher', concurrency: CONCURRENCY, maxInFlight: CONCURRENCY }),
      sampling: SamplingSchema.parse({ n: N, max_tokens: 512, seed: 1 }),
      maxShardsInFlight: SHARDS_IN_FLIGHT,
      cpuQueue: 'distillery-cpu',
      heartbeatSeconds: 60,
      stageHours: 1,
      nextShard: 0,
      tally: { shardCount: prepared.shardCount, shardsDone: 0, prompts: 0, samples: 0, requests: 0, promptTokens: 0, completionTokens: 0, resumedSamples: 0, costUSD: 0, projectedCostUSD: 0, stoppedByBudget: false },
      maxHistoryEvents: 8000,
    };
    const started = Date.now();
    const tally = (await client.workflow.execute('generationWorkflow', { taskQueue: 'distillery', workflowId: 'bench-generate', args: [input] })) as GenerationTally;
    const pipelineSeconds = (Date.now() - started) / 1000;
    if (tally.samples !== PROMPTS * N) throw new Error(`pipeline wrote ${tally.samples} samples, expected ${PROMPTS * N}`);
    await connection.close();

    const a = PROMPTS / pipelineSeconds;
    const b = PROMPTS / plainSeconds;
    const c = distilabelRate(prompts, url);
    console.log(`prompts=${PROMPTS} n=${N} concurrency=${CONCURRENCY} latency_ms=${LATENCY_MS} shard_size=${SHARD_SIZE} shards_in_flight=${SHARDS_IN_FLIGHT}`);
    console.log(`ideal requests/s (concurrency / latency) = ${((CONCURRENCY * 1000) / LATENCY_MS).toFixed(1)}`);
    console.log(`(a) pipeline generate stage on Temporal: ${pipelineSeconds.toFixed(2)} s, ${a.toFixed(1)} requests/s, ${tally.samples} samples written`);
    console.log(`(b) plain concurrent openai loop:        ${plainSeconds.toFixed(2)} s, ${b.toFixed(1)} requests/s`);
    if (c) console.log(`(c) distilabel ${c.version} pipeline:          ${c.seconds.toFixed(2)} s, ${(PROMPTS / c.seconds).toFixed(1)} requests/s; distilabel_ratio (pipeline / distilabel) = ${(a / (PROMPTS / c.seconds)).toFixed(2)}`);
    console.log(`ratio=${(a / b).toFixed(3)}`);
  } finally {
    await worker.stop();
    await server.stop();
    await teacher.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
