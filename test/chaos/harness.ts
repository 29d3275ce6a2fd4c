import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { startDevServer, freePort, type DevServer } from '../../infra/temporal';
import { startCpuWorker, startGpuWorker, type ManagedProcess } from '../../infra/processes';
import { startTeacherServer, type TeacherServer } from '../../infra/teacher/server';
import { readJsonl } from '../../activities/artifacts/store';
import { progressQuery, type RunProgress } from '../../workflows/messages';
import type { RunSummary } from '../../workflows/distillation';

/**
 * The chaos suite's stack: a real Temporal dev server (SQLite, fixed port so it can be stopped and started again on
 * the same database), real CPU and GPU worker processes (dist/workers/*.js), and the local procedural teacher in this
 * process so that every request it serves can be counted.
 */
export interface ChaosStack {
  tmp: string;
  address: string;
  dbFile: string;
  server: DevServer | null;
  connection: Connection;
  client: Client;
  teacher: TeacherServer;
  cpu: ManagedProcess | null;
  gpu: ManagedProcess | null;
  workerEnv: NodeJS.ProcessEnv;
  startCpu(): Promise<ManagedProcess>;
  startGpu(): Promise<ManagedProcess>;
  /** SIGKILL the worker and wait until it is gone (no graceful shutdown: nothing is flushed or reported). */
  kill(which: 'cpu' | 'gpu'): Promise<void>;
  /** SIGSTOP the worker at once (synchronously): it stops where it is; a SIGKILL afterwards kills it there. */
  freeze(which: 'cpu' | 'gpu'): void;
  stopServer(signal?: NodeJS.Signals): Promise<void>;
  startServer(): Promise<void>;
  close(): Promise<void>;
}

export async function startChaosStack(
  name: string,
  opts: { teacherLatencyMs?: number; teacherMaxInFlight?: number; gpu?: boolean } = {},
): Promise<ChaosStack> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `distillery-chaos-${name}-`));
  const dbFile = path.join(tmp, 'temporal.sqlite');
  let port = await freePort();
  // A port that freePort() found free can be taken (by an outgoing connection's ephemeral port: same range) before
  // the server binds it; the server then exits during start-up. First start: try another port. A restart must keep
  // the port (the workers know the address), so it retries the same one for a while.
  const startServer = async (fixedPort: boolean): Promise<DevServer> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await startDevServer({ headless: true, port, dbFile, logFile: path.join(tmp, 'temporal.log') });
      } catch (err) {
        if (attempt >= 5 || !/exited during start-up/.test((err as Error).message)) throw err;
        if (fixedPort) await sleep(2000);
        else port = await freePort();
      }
    }
  };
  let server: DevServer | null = await startServer(false);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const teacher = await startTeacherServer({
    port: 0,
    latencyMs: opts.teacherLatencyMs ?? 0,
    maxInFlight: opts.teacherMaxInFlight,
  });
  const workerEnv: NodeJS.ProcessEnv = { TEMPORAL_ADDRESS: server.address, DISTILLERY_LOG_LEVEL: 'INFO' };
  const stack: ChaosStack = {
    tmp,
    address: server.address,
    dbFile,
    server,
    connection,
    client,
    teacher,
    cpu: null,
    gpu: null,
    workerEnv,
    startCpu: async () => (stack.cpu = await startCpuWorker(workerEnv, path.join(tmp, 'cpu-worker.log'))),
    startGpu: async () => (stack.gpu = await startGpuWorker(workerEnv, path.join(tmp, 'gpu-worker.log'))),
    kill: async (which) => {
      const w = stack[which];
      if (!w) throw new Error(`no ${which} worker to kill`);
      w.kill('SIGKILL');
      await w.exited;
      stack[which] = null;
    },
    freeze: (which) => {
      stack[which]?.kill('SIGSTOP');
    },
    stopServer: async (signal = 'SIGTERM') => {
      const s = server;
      if (!s) return;
      server = null;
      stack.server = null;
      if (signal === 'SIGTERM') await s.stop();
      else {
        s.process.kill(signal);
        await new Promise((r) =>
          s.process.exitCode !== null || s.process.signalCode !== null ? r(null) : s.process.once('exit', r),
        );
      }
    },
    startServer: async () => {
      server = await startServer(true);
      stack.server = server;
    },
    close: async () => {
      for (const w of [stack.cpu, stack.gpu]) if (w) w.kill('SIGKILL');
      await Promise.all([stack.cpu?.exited, stack.gpu?.exited]);
      await teacher.close();
      await connection.close().catch(() => undefined);
      await server?.stop();
      // CHAOS_KEEP=1 keeps the logs, the artifacts and the SQLite database for a look afterwards
      if (process.env.CHAOS_KEEP === '1') console.log(`chaos stack kept: ${tmp}`);
      else rmSync(tmp, { recursive: true, force: true });
    },
  };
  await stack.startCpu();
  if (opts.gpu !== false) await stack.startGpu();
  return stack;
}

/**
 * One stack for a test file: started before its tests (SDK logs at WARN), closed after them. `started` runs right
 * after the start (the file keeps the stack, runs its reference); `closing` before the close (e.g. unmounts).
 */
export function useChaosStack(
  name: string,
  opts: Parameters<typeof startChaosStack>[1],
  hooks: { started: (stack: ChaosStack) => void | Promise<void>; closing?: () => void | Promise<void> },
): void {
  let stack: ChaosStack | undefined;
  beforeAll(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    stack = await startChaosStack(name, opts);
    await hooks.started(stack);
  });
  afterAll(async () => {
    await hooks.closing?.();
    await stack?.close();
  });
}

/** A small run that goes through every stage in about half a minute on two cores. */
export function chaosSpec(
  stack: { tmp: string; teacher: { url: string } },
  name: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    dataset: { source: { type: 'builtin', task: 'arithmetic', count: 240, seed: 11 } },
    // One request lane per shard: the order of the samples in a shard is then the prompts' order whatever the teacher's
    // timing (with more lanes it follows completion order: see the reproducibility test in crash.chaos.ts).
    teacher: {
      baseURL: stack.teacher.url,
      model: 'procedural-arithmetic-teacher',
      concurrency: 1,
      maxRetries: 3,
      requestTimeoutSeconds: 30,
    },
    sampling: { n: 4, temperature: 1.0, top_p: 0.95, max_tokens: 200, seed: 3 },
    verifier: { type: 'math', keepPerPrompt: 2 },
    // maxLen holds a byte-level prompt (problem + R1's instruction, ~105 tokens) and a teacher trace (~90)
    fineTune: {
      epochs: 1,
      batchSize: 8,
      maxSteps: 40,
      checkpointEvery: 8,
      model: { dModel: 32, nLayer: 1, nHead: 2, maxLen: 256 },
    },
    evaluation: {
      benchmark: { type: 'builtin', task: 'arithmetic', count: 48, seed: 2 },
      k: 2,
      maxNewTokens: 48,
      baseline: false,
    },
    generation: { shardSize: 20, maxShardsInFlight: 2 },
    timeouts: { heartbeatSeconds: 4 },
    artifactRoot: path.join(stack.tmp, 'artifacts'),
    ...overrides,
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every `intervalMs` until it returns a truthy value (returned), or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  pred: () => T | Promise<T>,
  timeoutMs = 120_000,
  intervalMs = 20,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The files of `dir` whose names start with `prefix` (temp files of an atomic writer are `.<name>.<pid>.<rand>.tmp`). */
export function filesStarting(dir: string, prefix: string): string[] {
  return listDir(dir).filter((f) => f.startsWith(prefix));
}

export async function progressOf(handle: WorkflowHandle): Promise<RunProgress | null> {
  return handle.query<RunProgress>(progressQuery).catch(() => null);
}

export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function countLines(file: string): number {
  try {
    const text = readFileSync(file, 'utf8');
    let n = 0;
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
    return n;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Stage outputs, compared with a fault-free run's
// ---------------------------------------------------------------------------------------------------------------

export interface StageIds {
  /** id → sha256 of the row's content that must not change between runs (without timings). */
  rows: Map<string, string>;
  /** ids seen more than once in the file. */
  duplicates: number;
}

export interface RunOutputs {
  prompts: StageIds;
  samples: StageIds;
  accepted: StageIds;
  verifyRejected: StageIds;
  sft: StageIds;
  filterRejected: StageIds;
  finetune: { steps: number; finalLoss: number | null; weights: string };
  evaluate: { scores: string; results: string };
}

const digest = (v: unknown) =>
  createHash('sha256')
    .update(typeof v === 'string' ? v : JSON.stringify(v))
    .digest('hex');

async function idsOf(file: string, strip: (row: Record<string, unknown>) => unknown = (r) => r): Promise<StageIds> {
  const rows = new Map<string, string>();
  let duplicates = 0;
  if (!existsSync(file)) return { rows, duplicates };
  for await (const row of readJsonl<Record<string, unknown>>(file)) {
    const id = String(row.id);
    if (rows.has(id)) duplicates += 1;
    rows.set(id, digest(strip(row)));
  }
  return { rows, duplicates };
}

/** A sample without what legitimately differs between two runs of the same spec (latency). */
function sampleContent(row: Record<string, unknown>): unknown {
  const { latencyMs: _l, verdict: _v, ...rest } = row;
  return rest;
}

export async function runOutputs(summary: RunSummary): Promise<RunOutputs> {
  const d = summary.runDir;
  const evalSummary = JSON.parse(readFileSync(path.join(d, 'evaluate', 'summary.json'), 'utf8')) as { scores: unknown };
  return {
    prompts: await idsOf(path.join(d, 'prepare', 'prompts.jsonl')),
    samples: await idsOf(path.join(d, 'generate', 'samples.jsonl'), sampleContent),
    accepted: await idsOf(path.join(d, 'verify', 'accepted.jsonl'), sampleContent),
    verifyRejected: await idsOf(path.join(d, 'verify', 'rejects.jsonl')),
    sft: await idsOf(path.join(d, 'filter', 'sft.jsonl')),
    filterRejected: await idsOf(path.join(d, 'filter', 'rejects.jsonl')),
    finetune: {
      steps: summary.fineTune.steps,
      finalLoss: summary.fineTune.finalLoss,
      weights: modelWeightsHash(summary.fineTune.modelDir),
    },
    evaluate: {
      scores: digest(evalSummary.scores),
      results: digest(readFileSync(path.join(d, 'evaluate', 'results.jsonl'))),
    },
  };
}

/**
 * The trained weights: every tensor (name, dtype, shape, bytes) of the model directory's safetensors files, in name
 * order. The files' own bytes are not compared: the header's __metadata__ map is written in no fixed key order.
 */
export function modelWeightsHash(modelDir: string): string {
  const h = createHash('sha256');
  for (const f of listDir(modelDir).sort()) {
    if (!f.endsWith('.safetensors')) continue;
    const buf = readFileSync(path.join(modelDir, f));
    const headerLen = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    const data = buf.subarray(8 + headerLen);
    for (const name of Object.keys(header)
      .filter((k) => k !== '__metadata__')
      .sort()) {
      const t = header[name]!;
      h.update(`${f}:${name}:${t.dtype}:${t.shape.join('x')}\n`);
      h.update(data.subarray(t.data_offsets[0], t.data_offsets[1]));
    }
  }
  return h.digest('hex');
}

export interface StageDiff {
  stage: string;
  expected: number;
  got: number;
  lost: number;
  duplicated: number;
  extra: number;
  changed: number;
}

function diffIds(stage: string, ref: StageIds, run: StageIds): StageDiff {
  let lost = 0;
  let changed = 0;
  for (const [id, h] of ref.rows) {
    const got = run.rows.get(id);
    if (got === undefined) lost += 1;
    else if (got !== h) changed += 1;
  }
  let extra = 0;
  for (const id of run.rows.keys()) if (!ref.rows.has(id)) extra += 1;
  return { stage, expected: ref.rows.size, got: run.rows.size, lost, duplicated: run.duplicates, extra, changed };
}

export interface Comparison {
  stages: StageDiff[];
  lost: number;
  /** duplicates within a stage's output plus ids the fault-free run does not have */
  duplicated: number;
  changed: number;
  finetuneEqual: boolean;
  evaluateEqual: boolean;
  problems: string[];
}

export function compareOutputs(ref: RunOutputs, run: RunOutputs): Comparison {
  const stages = [
    diffIds('prepare', ref.prompts, run.prompts),
    diffIds('generate', ref.samples, run.samples),
    diffIds('verify.accepted', ref.accepted, run.accepted),
    diffIds('verify.rejected', ref.verifyRejected, run.verifyRejected),
    diffIds('filter.kept', ref.sft, run.sft),
    diffIds('filter.rejected', ref.filterRejected, run.filterRejected),
  ];
  const finetuneEqual =
    ref.finetune.steps === run.finetune.steps &&
    ref.finetune.finalLoss === run.finetune.finalLoss &&
    ref.finetune.weights === run.finetune.weights;
  const evaluateEqual = ref.evaluate.scores === run.evaluate.scores && ref.evaluate.results === run.evaluate.results;
  const problems: string[] = [];
  for (const s of stages)
    if (s.lost || s.duplicated || s.extra || s.changed) problems.push(`${s.stage}: ${JSON.stringify(s)}`);
  if (!finetuneEqual)
    problems.push(`finetune differs: ${JSON.stringify(ref.finetune)} vs ${JSON.stringify(run.finetune)}`);
  if (!evaluateEqual) problems.push('evaluate differs (scores or results.jsonl)');
  return {
    stages,
    lost: stages.reduce((t, s) => t + s.lost, 0),
    duplicated: stages.reduce((t, s) => t + s.duplicated + s.extra, 0),
    changed: stages.reduce((t, s) => t + s.changed, 0),
    finetuneEqual,
    evaluateEqual,
    problems,
  };
}

export { accountingProblems, accountRun, type Accounting } from './run-accounting';

// ---------------------------------------------------------------------------------------------------------------
// History: attempts per activity (a retried attempt proves the kill landed while the activity ran)
// ---------------------------------------------------------------------------------------------------------------

export interface ActivityAttempts {
  /** activity type → attempts of each completed activity (the attempt number of its last start) */
  [activityType: string]: number[];
}

/** Attempt numbers of the completed activities of one workflow and of its generation child's runs. */
export async function activityAttempts(client: Client, workflowId: string): Promise<ActivityAttempts> {
  const out: ActivityAttempts = {};
  const ids = [workflowId, `${workflowId}-generate`];
  for (const id of ids) {
    const runs: string[] = [];
    for await (const r of client.workflow.list({ query: `WorkflowId = "${id}"` })) runs.push(r.runId);
    for (const runId of runs) {
      const history = await client.workflow.getHandle(id, runId).fetchHistory();
      const types = new Map<string, string>();
      const attemptOf = new Map<string, number>();
      for (const e of history.events ?? []) {
        const id0 = String(e.eventId);
        if (e.activityTaskScheduledEventAttributes)
          types.set(id0, e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
        if (e.activityTaskStartedEventAttributes)
          attemptOf.set(
            String(e.activityTaskStartedEventAttributes.scheduledEventId),
            e.activityTaskStartedEventAttributes.attempt ?? 1,
          );
      }
      for (const [sched, attempt] of attemptOf) {
        const type = types.get(sched) ?? '?';
        (out[type] ??= []).push(attempt);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------------

/** Pids of live processes whose command line contains `needle` (e.g. an orphaned trainer's config path). */
export function processesMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const d of listDir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const state = /State:\s+(\S)/.exec(readFileSync(`/proc/${d}/status`, 'utf8'))?.[1];
      if (cmd.includes(needle) && state !== 'Z') pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** JSON log lines of a worker log file (the workers log one JSON object per line on stderr). */
export function logLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* a torn last line of a killed process */
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads: activity results in history, heartbeat details of pending activities
// ---------------------------------------------------------------------------------------------------------------

export function decodePayloads(payloads: temporal.api.common.v1.IPayload[] | null | undefined): unknown[] {
  return (payloads ?? []).map((p) => {
    const enc = p.metadata?.encoding ? Buffer.from(p.metadata.encoding).toString() : '';
    if (enc === 'binary/null') return null;
    if (!p.data) return undefined;
    return JSON.parse(Buffer.from(p.data).toString('utf8'));
  });
}

/** The decoded results of the completed activities of a type in one workflow's history (current run). */
export async function activityResults<T = Record<string, unknown>>(
  client: Client,
  workflowId: string,
  type: string,
): Promise<T[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const types = new Map<string, string>();
  const out: T[] = [];
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes)
      types.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    const c = e.activityTaskCompletedEventAttributes;
    if (c && types.get(String(c.scheduledEventId)) === type) out.push(decodePayloads(c.result?.payloads)[0] as T);
  }
  return out;
}

/** Start-to-close seconds of each completed activity type in one workflow's history (current run), summed. */
export async function activitySeconds(client: Client, workflowId: string): Promise<Record<string, number>> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const types = new Map<string, string>();
  const started = new Map<string, number>();
  const out: Record<string, number> = {};
  const ms = (t: temporal.api.history.v1.IHistoryEvent) =>
    Number(t.eventTime?.seconds ?? 0) * 1000 + Math.floor((t.eventTime?.nanos ?? 0) / 1e6);
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes)
      types.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    if (e.activityTaskStartedEventAttributes)
      started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), ms(e));
    const c = e.activityTaskCompletedEventAttributes;
    if (c) {
      const type = types.get(String(c.scheduledEventId)) ?? '?';
      out[type] = (out[type] ?? 0) + (ms(e) - (started.get(String(c.scheduledEventId)) ?? ms(e))) / 1000;
    }
  }
  return out;
}

/** Heartbeat details (decoded) of the pending activities of a workflow, by activity type. */
export async function pendingHeartbeats(
  client: Client,
  workflowId: string,
): Promise<{ type: string; attempt: number; details: unknown }[]> {
  const d = await client.workflow
    .getHandle(workflowId)
    .describe()
    .catch(() => null);
  return (d?.raw.pendingActivities ?? []).map((a) => ({
    type: a.activityType?.name ?? '?',
    attempt: a.attempt ?? 1,
    details: decodePayloads(a.heartbeatDetails?.payloads)[0],
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// A delaying HTTP forwarder (slow responses): request i waits delayFor(i) ms before it is forwarded
// ---------------------------------------------------------------------------------------------------------------

export { startDelayProxy, type DelayProxy } from '../helpers/delay-proxy';

/** The message of a failure, also when the failure converter moved it into encodedAttributes. */
export function failureMessage(f: temporal.api.failure.v1.IFailure | null | undefined): string {
  if (!f) return '';
  let message = f.message ?? '';
  if (f.encodedAttributes?.data) {
    try {
      const attrs = JSON.parse(Buffer.from(f.encodedAttributes.data).toString('utf8')) as { message?: string };
      if (attrs.message) message = attrs.message;
    } catch {
      /* encrypted */
    }
  }
  const type = f.applicationFailureInfo?.type ? `[${f.applicationFailureInfo.type}] ` : '';
  return type + message + (f.cause ? ` ← ${failureMessage(f.cause)}` : '');
}
