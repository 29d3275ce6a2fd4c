/**
 * bench:generate — the generate stage as a user sees it against a plain concurrent loop, on the same prompts and the
 * same endpoint. The last line is exactly
 *
 *   ratio=<median over rounds of plain wall ÷ pipeline wall, latency model> overhead_ms_per_request=<median, zero latency>
 *
 * A = the pipeline: a real distillationWorkflow on a real dev server and a real CPU worker process, timed from the
 *     client's start call to the completion of mergeShards (read from the workflow history): validation, prepare
 *     (dataset → prompt shards), the generation child with its shard activities, and the merge into one samples file.
 *     No GPU worker polls, so the run stops at fine-tune; the bench waits until verify and filter are done (so they
 *     do not overlap the next round), then terminates it.
 * B = a plain script: the same builtin prompts, the same request per prompt (chatRequestBody, the same seed), the
 *     openai client with the same number of requests in flight, one JSONL line per sample written as replies come.
 *
 * The endpoint is the latency-model endpoint (bench/generate/latency-model-endpoint.ts), an honest test double of
 * an inference server: TTFT + per-output-token time with lognormal noise, long-tailed response lengths, each
 * request's latency fixed by the request itself, so both sides get the same work. A second instance of it with no
 * latency at all measures the pure orchestration cost: overhead_ms_per_request = (A wall − B wall) / requests.
 *
 * Both sides first run once untimed on BENCH_WARMUP_PROMPTS prompts; then BENCH_ROUNDS rounds in ABBA order under the
 * latency model, then as many with zero latency; each round is printed as it ends. Exit 1 when the median ratio is
 * under BENCH_MIN_RATIO.
 *
 * Knobs (environment): BENCH_PROMPTS (1500), BENCH_ROUNDS (3), BENCH_N (4 samples per prompt), BENCH_CONCURRENCY
 * (64 requests in flight on each side), BENCH_SHARD_SIZE (250), BENCH_SHARDS_IN_FLIGHT (8), BENCH_MAX_TOKENS (1024),
 * BENCH_TTFT_MS (20), BENCH_MS_PER_TOKEN (8), BENCH_NOISE_SIGMA (0.25), BENCH_LENGTH_MEDIAN (150 tokens),
 * BENCH_LENGTH_SIGMA (0.8), BENCH_WARMUP_PROMPTS (64), BENCH_MIN_RATIO (0.9), BENCH_DISTILABEL=1 (also time
 * distilabel once on the latency model: bench/generate/setup.sh installs it).
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import OpenAI from 'openai';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startDevServer } from '../../infra/temporal';
import { cacheDir, projectRoot } from '../../infra/paths';
import { startCpuWorker, startNodeProcess, type ManagedProcess } from '../../infra/processes';
import { generateArithmeticProblems } from '../../activities/dataset/arithmetic-task';
import { mapWithConcurrency } from '../../activities/generate/concurrency';
import { chatRequestBody } from '../../activities/generate/teacher-client';
import { generationConfigHash, promptSeed, sampleId } from '../../activities/generate/sample-ids';
import { layout } from '../../activities/artifacts/layout';
import { runDirFor } from '../../activities/artifacts/store';
import { RunSpecSchema, type RunSpec } from '../../schemas/run-spec';
import { progressQuery, type GenerationTally, type RunProgress } from '../../workflows/messages';
import { envInt, envNumber, median, runAbba, secondsList, type Round } from '../rounds';

const PROMPTS = envInt('BENCH_PROMPTS', 1500);
const ROUNDS = envInt('BENCH_ROUNDS', 3);
const N = envInt('BENCH_N', 4);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 64);
const SHARD_SIZE = envInt('BENCH_SHARD_SIZE', 250);
const SHARDS_IN_FLIGHT = envInt('BENCH_SHARDS_IN_FLIGHT', 8);
const MAX_TOKENS = envInt('BENCH_MAX_TOKENS', 1024);
const WARMUP = envInt('BENCH_WARMUP_PROMPTS', 64);
const MIN_RATIO = envNumber('BENCH_MIN_RATIO', 0.9);
const MODEL = {
  ttftMs: envNumber('BENCH_TTFT_MS', 20),
  msPerToken: envNumber('BENCH_MS_PER_TOKEN', 8),
  noiseSigma: envNumber('BENCH_NOISE_SIGMA', 0.25),
  lengthMedian: envNumber('BENCH_LENGTH_MEDIAN', 150),
  lengthSigma: envNumber('BENCH_LENGTH_SIGMA', 0.8),
};
const TEACHER_MODEL = 'latency-model';

interface Timing {
  seconds: number;
  requests: number;
  samples: number;
  /** Pipeline only: where the time went, from the workflow history. */
  breakdown?: string;
}

function spec(url: string, artifactRoot: string, prompts: number, name: string): Record<string, unknown> {
  return {
    name,
    dataset: { source: { type: 'builtin', task: 'arithmetic', count: prompts, seed: 1, digits: 3 } },
    teacher: { baseURL: url, model: TEACHER_MODEL, concurrency: CONCURRENCY, maxInFlight: CONCURRENCY },
    sampling: { n: N, temperature: 0.6, top_p: 0.95, max_tokens: MAX_TOKENS, seed: 7 },
    verifier: { type: 'math', keepPerPrompt: 1 },
    generation: { shardSize: SHARD_SIZE, maxShardsInFlight: SHARDS_IN_FLIGHT },
    fineTune: { maxSteps: 1 },
    evaluation: { benchmark: { type: 'builtin', task: 'arithmetic', count: 4, seed: 2 }, baseline: false },
    artifactRoot,
  };
}

function lineCount(file: string): number {
  const text = readFileSync(file, 'utf8');
  let n = 0;
  for (let k = text.indexOf('\n'); k >= 0; k = text.indexOf('\n', k + 1)) n++;
  return n;
}

const eventMs = (e: temporal.api.history.v1.IHistoryEvent) =>
  Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);

/** From the run's history: when mergeShards completed, and how long prepare, the generation child and merge took. */
async function stageTimes(
  h: WorkflowHandle,
): Promise<{ mergedAtMs: number; prepare: number; generate: number; merge: number; startedAtMs: number }> {
  const { EventType } = temporal.api.enums.v1;
  const events = (await h.fetchHistory()).events ?? [];
  const names = new Map<number, { name: string; at: number }>();
  const done = new Map<string, { scheduled: number; completed: number }>();
  let childStart = 0;
  let childEnd = 0;
  let startedAtMs = 0;
  for (const e of events) {
    if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED) startedAtMs = eventMs(e);
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
      names.set(Number(e.eventId), {
        name: e.activityTaskScheduledEventAttributes?.activityType?.name ?? '',
        at: eventMs(e),
      });
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
      const s = names.get(Number(e.activityTaskCompletedEventAttributes?.scheduledEventId));
      if (s) done.set(s.name, { scheduled: s.at, completed: eventMs(e) });
    }
    if (e.eventType === EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) childStart = eventMs(e);
    if (e.eventType === EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED) childEnd = eventMs(e);
  }
  const prepare = done.get('prepareDataset');
  const merge = done.get('mergeShards');
  if (!prepare || !merge || !childEnd)
    throw new Error(`run ${h.workflowId} has no completed prepare, generation or merge in its history`);
  return {
    mergedAtMs: merge.completed,
    prepare: (prepare.completed - prepare.scheduled) / 1000,
    generate: (childEnd - childStart) / 1000,
    merge: (merge.completed - merge.scheduled) / 1000,
    startedAtMs,
  };
}

async function pipelineRun(client: Client, url: string, tmp: string, prompts: number, label: string): Promise<Timing> {
  const artifactRoot = path.join(tmp, label);
  const workflowId = `bench-generate-${label}`;
  const t0 = Date.now();
  const h = await client.workflow.start('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId,
    args: [spec(url, artifactRoot, prompts, workflowId)],
  });
  let p: RunProgress | null = null;
  // Polled slowly: the end time comes from the history, not from this loop. A run that ends otherwise (filtering
  // kept nothing, say) is fine as long as generation and merge completed, which stageTimes checks.
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    p = await h.query<RunProgress>(progressQuery).catch(() => p);
    if (p?.stage === 'finetune' || (await h.describe()).status.name !== 'RUNNING') break;
  }
  const t = await stageTimes(h);
  if ((await h.describe()).status.name === 'RUNNING') await h.terminate('bench:generate measured through mergeShards');
  const samples = lineCount(layout.samples(runDirFor(artifactRoot, workflowId)));
  if (samples !== prompts * N) throw new Error(`pipeline wrote ${samples} samples, expected ${prompts * N}`);
  const tally = (await client.workflow.getHandle(`${workflowId}-generate`).result()) as GenerationTally;
  const requests = tally.requests;
  rmSync(artifactRoot, { recursive: true, force: true });
  const seconds = (t.mergedAtMs - t0) / 1000;
  const other = seconds - t.prepare - t.generate - t.merge;
  return {
    seconds,
    requests,
    samples,
    breakdown: `prepare ${t.prepare.toFixed(2)} s, generate ${t.generate.toFixed(2)} s, merge ${t.merge.toFixed(2)} s, the rest ${other.toFixed(2)} s`,
  };
}

/** What a user would write without the pipeline: the same prompts and requests, one JSONL line per sample. */
async function plainRun(url: string, tmp: string, prompts: number, label: string): Promise<Timing> {
  const parsed: RunSpec = RunSpecSchema.parse(spec(url, tmp, prompts, 'plain'));
  const file = path.join(tmp, `${label}.plain.jsonl`);
  const t0 = Date.now();
  const problems = generateArithmeticProblems({ seed: 1, count: prompts, split: 'train', digits: 3 });
  const configHash = generationConfigHash(parsed);
  const client = new OpenAI({
    baseURL: url,
    apiKey: 'not-needed',
    maxRetries: parsed.teacher.maxRetries,
    timeout: parsed.teacher.requestTimeoutSeconds * 1000,
  });
  const out = createWriteStream(file);
  let requests = 0;
  await mapWithConcurrency(problems, CONCURRENCY, async (p) => {
    const started = Date.now();
    const res = await client.chat.completions.create(
      chatRequestBody(parsed.teacher, parsed.sampling, {
        prompt: p.prompt,
        n: N,
        seed: promptSeed(parsed.sampling.seed, p.id, 0),
      }),
    );
    requests++;
    if (res.choices.length !== N) throw new Error(`short reply: ${res.choices.length} of ${N} choices`);
    const latencyMs = Date.now() - started;
    const each = {
      promptTokens: Math.round((res.usage?.prompt_tokens ?? 0) / N),
      completionTokens: Math.round((res.usage?.completion_tokens ?? 0) / N),
    };
    out.write(
      res.choices
        .map((c) =>
          JSON.stringify({
            id: sampleId(p.id, c.index, configHash),
            promptId: p.id,
            sampleIndex: c.index,
            configHash,
            prompt: p.prompt,
            answer: p.answer,
            content: c.message.content ?? '',
            finishReason: c.finish_reason,
            usage: each,
            teacher: { model: res.model, systemFingerprint: res.system_fingerprint ?? null },
            sampling: {
              temperature: parsed.sampling.temperature,
              top_p: parsed.sampling.top_p,
              max_tokens: parsed.sampling.max_tokens,
              seed: parsed.sampling.seed,
            },
            latencyMs,
          }),
        )
        .join('\n') + '\n',
    );
  });
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const seconds = (Date.now() - t0) / 1000;
  const samples = lineCount(file);
  rmSync(file, { force: true });
  if (samples !== prompts * N) throw new Error(`plain loop wrote ${samples} samples, expected ${prompts * N}`);
  return { seconds, requests, samples };
}

/** distilabel on the same prompts and endpoint, if bench/generate/setup.sh could install it (else null, said why). */
function distilabelRun(url: string, tmp: string): { seconds: number; version: string } | null {
  const setup = spawnSync('bash', [path.join(projectRoot, 'bench', 'generate', 'setup.sh')], { stdio: 'inherit' });
  const python = path.join(cacheDir(), 'bench-venv-distilabel', 'bin', 'python');
  if (setup.status !== 0 || !existsSync(python)) {
    console.log('distilabel: not installed (bench/generate/setup.sh failed); skipped');
    return null;
  }
  const file = path.join(tmp, 'distilabel-prompts.jsonl');
  const problems = generateArithmeticProblems({ seed: 1, count: PROMPTS, split: 'train', digits: 3 });
  writeFileSync(file, problems.map((p) => JSON.stringify({ prompt: p.prompt })).join('\n') + '\n');
  const run = spawnSync(
    python,
    [
      path.join(projectRoot, 'bench', 'generate', 'distilabel_run.py'),
      file,
      url,
      String(CONCURRENCY),
      String(N),
      String(MAX_TOKENS),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  const last = run.stdout.trim().split('\n').pop() ?? '';
  if (run.status !== 0 || !last.startsWith('{')) {
    console.log(`distilabel: run failed (${run.status}): ${run.stderr.slice(-500)}`);
    return null;
  }
  const version = spawnSync(python, ['-c', 'import distilabel; print(distilabel.__version__)'], {
    encoding: 'utf8',
  }).stdout.trim();
  return { seconds: (JSON.parse(last) as { seconds: number }).seconds, version };
}

function endpoint(name: string, model: typeof MODEL, logFile: string): Promise<ManagedProcess> {
  const args = [
    '--port',
    '0',
    '--ttft-ms',
    String(model.ttftMs),
    '--ms-per-token',
    String(model.msPerToken),
    '--noise-sigma',
    String(model.noiseSigma),
    '--length-median',
    String(model.lengthMedian),
    '--length-sigma',
    String(model.lengthSigma),
  ];
  return startNodeProcess({
    name,
    script: 'dist/bench/generate/latency-model-endpoint.js',
    args,
    readyEvent: 'listening',
    logFile,
  });
}

function printRound(kind: string, r: Round<Timing>): void {
  console.log(
    `${kind} round ${r.round} (${r.order.join(' ')}): A pipeline ${r.a.seconds.toFixed(2)} s (${r.a.breakdown}; ${r.a.requests} requests) | B plain ${r.b.seconds.toFixed(2)} s (${r.b.requests} requests) | B/A ${(r.b.seconds / r.a.seconds).toFixed(3)}`,
  );
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-generate-'));
  const processes: ManagedProcess[] = [];
  const server = await startDevServer({ headless: true, logFile: path.join(tmp, 'temporal.log') });
  const connection = await Connection.connect({ address: server.address });
  try {
    const modelled = await endpoint('latency-model endpoint', MODEL, path.join(tmp, 'endpoint.log'));
    processes.push(modelled);
    const zero = await endpoint(
      'zero-latency endpoint',
      { ...MODEL, ttftMs: 0, msPerToken: 0, noiseSigma: 0 },
      path.join(tmp, 'endpoint-zero.log'),
    );
    processes.push(zero);
    processes.push(
      await startCpuWorker(
        { TEMPORAL_ADDRESS: server.address, DISTILLERY_LOG_LEVEL: 'WARN' },
        path.join(tmp, 'cpu-worker.log'),
      ),
    );
    const client = new Client({ connection });
    const url = String(modelled.readyInfo.url);
    const zeroUrl = String(zero.readyInfo.url);

    console.log(
      `prompts=${PROMPTS} n=${N} concurrency=${CONCURRENCY} (both sides) shard_size=${SHARD_SIZE} shards_in_flight=${SHARDS_IN_FLIGHT} max_tokens=${MAX_TOKENS} rounds=${ROUNDS}`,
    );
    console.log(
      `latency model (test double): ${MODEL.ttftMs} ms + ${MODEL.msPerToken} ms/token × longest of ${N} choices, lognormal noise σ=${MODEL.noiseSigma}; lengths lognormal, median ${MODEL.lengthMedian} tokens, σ=${MODEL.lengthSigma}, cap ${MAX_TOKENS}`,
    );
    console.log(
      'A = pipeline (distillationWorkflow: start → mergeShards completed), B = plain openai loop writing JSONL',
    );

    await pipelineRun(client, zeroUrl, tmp, WARMUP, 'warmup');
    await plainRun(zeroUrl, tmp, WARMUP, 'warmup');

    const modelledRounds = await runAbba<Timing>(
      ROUNDS,
      {
        A: (r) => pipelineRun(client, url, tmp, PROMPTS, `model-${r}`),
        B: (r) => plainRun(url, tmp, PROMPTS, `model-${r}`),
      },
      (r) => printRound('latency model', r),
    );
    const zeroRounds = await runAbba<Timing>(
      ROUNDS,
      {
        A: (r) => pipelineRun(client, zeroUrl, tmp, PROMPTS, `zero-${r}`),
        B: (r) => plainRun(zeroUrl, tmp, PROMPTS, `zero-${r}`),
      },
      (r) => printRound('zero latency', r),
    );

    const ratios = modelledRounds.map((r) => r.b.seconds / r.a.seconds);
    const ratio = median(ratios);
    const overheads = zeroRounds.map((r) => ((r.a.seconds - r.b.seconds) * 1000) / r.a.requests);
    const overhead = median(overheads);
    const a = median(modelledRounds.map((r) => r.a.seconds));
    const b = median(modelledRounds.map((r) => r.b.seconds));
    console.log(
      `latency model: A pipeline ${(PROMPTS / a).toFixed(1)} requests/s (walls ${secondsList(modelledRounds.map((r) => r.a.seconds))} s), B plain ${(PROMPTS / b).toFixed(1)} requests/s (walls ${secondsList(modelledRounds.map((r) => r.b.seconds))} s)`,
    );
    console.log(`  per-round ratios B/A: ${ratios.map((x) => x.toFixed(3)).join(' ')}; median ${ratio.toFixed(3)}`);
    console.log(
      `zero latency: A walls ${secondsList(zeroRounds.map((r) => r.a.seconds))} s, B walls ${secondsList(zeroRounds.map((r) => r.b.seconds))} s; (A − B) per request ${overheads.map((x) => x.toFixed(3)).join(' ')} ms; median ${overhead.toFixed(3)} ms`,
    );
    if (process.env.BENCH_DISTILABEL === '1') {
      const c = distilabelRun(url, tmp);
      if (c)
        console.log(
          `distilabel ${c.version} (once, latency model): ${c.seconds.toFixed(2)} s, ${(PROMPTS / c.seconds).toFixed(1)} requests/s; pipeline median ${a.toFixed(2)} s`,
        );
    }
    const ok = ratio >= MIN_RATIO;
    console.log(`target: median ratio ≥ ${MIN_RATIO} ${ok ? 'met' : 'MISSED'}`);
    console.log(`ratio=${ratio.toFixed(3)} overhead_ms_per_request=${overhead.toFixed(3)}`);
    if (!ok) process.exitCode = 1;
  } finally {
    for (const p of processes.reverse()) await p.stop();
    await connection.close();
    await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
