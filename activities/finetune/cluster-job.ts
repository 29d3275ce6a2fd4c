import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { CancelledFailure } from '@temporalio/common';
import type { TrainerEvent } from './trainer-process';

export type JobPhase = 'pending' | 'running' | 'succeeded' | 'failed' | 'stopped';

export interface JobStatus {
  phase: JobPhase;
  message?: string;
  /** The trainer's exit code where the engine reports it (Ray does; a TrainJob does not). */
  exitCode?: number;
}

/** What a cluster job runs: the trainer on `nodes` nodes, following its events in `eventsFile` (shared storage). */
export interface Launch {
  configPath: string;
  eventsFile: string;
  nodes: number;
  gpusPerNode: number;
  /** Trainer processes per node: the GPUs, or on CPU-only nodes distributed.processesPerNode. */
  processesPerNode: number;
}

/** The few operations Distillery needs from a cluster engine (Ray Jobs, Kubernetes TrainJobs). */
export interface ClusterEngine {
  readonly name: string;
  /** null: no job of that id exists. */
  status(id: string): Promise<JobStatus | null>;
  /** 'exists' when a job of that id was already there (another attempt submitted it first). */
  submit(id: string, launch: Launch): Promise<'created' | 'exists'>;
  stop(id: string): Promise<void>;
}

/**
 * Job ids of one fine-tune: `<prefix>-<12 hex of the run dir>-<n>`, n = 0, 1, ... A retried activity finds the
 * newest one and attaches to it while it runs; only after it failed or was stopped does it submit the next, which
 * resumes from the checkpoints in the shared run dir. The same run always gets the same ids, so no attempt ever
 * submits a job another attempt has already submitted (an engine refuses a duplicate id; that attempt then attaches).
 */
export function jobIdBase(runDir: string): string {
  return `distillery-${createHash('sha256').update(runDir).digest('hex').slice(0, 12)}`;
}

const MAX_GENERATIONS = 100;

/** The newest job of this fine-tune: its generation and status (generation -1 when none was submitted yet). */
export async function newestJob(
  engine: ClusterEngine,
  base: string,
): Promise<{ generation: number; status: JobStatus | null }> {
  let newest = { generation: -1, status: null as JobStatus | null };
  for (let n = 0; n < MAX_GENERATIONS; n++) {
    const s = await engine.status(`${base}-${n}`);
    if (!s) return newest;
    newest = { generation: n, status: s };
  }
  throw new Error(`${MAX_GENERATIONS} jobs were already submitted for this fine-tune (${base}-*): giving up`);
}

export interface ClusterRun {
  jobId: string;
  /** Whether this attempt submitted the job (false: it found one running and attached). */
  submitted: boolean;
  status: JobStatus;
  resumedFromStep: number;
  lastStep: number;
  totalSteps: number | null;
  lastCheckpoint: string | null;
  lastLoss: number | null;
  tokensPerSecond: number | null;
  done?: TrainerEvent;
}

/** Reads the complete lines added to a file since `offset` (a torn last line waits for the next read). */
async function readNewLines(file: string, offset: number): Promise<{ lines: string[]; offset: number }> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return { lines: [], offset };
  }
  try {
    const { size } = await fh.stat();
    if (size <= offset) return { lines: [], offset };
    const buf = Buffer.alloc(size - offset);
    await fh.read(buf, 0, buf.length, offset);
    const end = buf.lastIndexOf(0x0a);
    if (end < 0) return { lines: [], offset };
    return { lines: buf.subarray(0, end).toString('utf8').split('\n').filter(Boolean), offset: offset + end + 1 };
  } finally {
    await fh.close();
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Runs one fine-tune on a cluster engine: attach to the newest job of this run if it is still pending or running,
 * take its result if it succeeded, otherwise submit the next generation. Polls the job's status and follows the
 * trainer's events file, heartbeating on every poll; on cancellation stops the job (the trainer gets SIGTERM and
 * checkpoints) and waits for it to end.
 */
export async function runOnCluster(opts: {
  engine: ClusterEngine;
  base: string;
  launch: (jobId: string) => Launch;
  /** Runs before this attempt submits a job (not when it attaches to one): the memory estimate. */
  beforeSubmit?: () => Promise<void>;
  pollMs: number;
  signal?: AbortSignal;
  heartbeat?: (d: {
    jobId: string;
    phase: JobPhase;
    step: number;
    total: number | null;
    checkpoint: string | null;
    loss: number | null;
  }) => void;
  onEvent?: (e: TrainerEvent) => void;
  log?: (msg: string) => void;
  stopTimeoutMs?: number;
}): Promise<ClusterRun> {
  const { engine, base } = opts;
  const newest = await newestJob(engine, base);
  let jobId: string;
  let submitted = false;
  if (
    newest.status &&
    (newest.status.phase === 'pending' || newest.status.phase === 'running' || newest.status.phase === 'succeeded')
  ) {
    jobId = `${base}-${newest.generation}`;
    opts.log?.(`${engine.name} job ${jobId} is ${newest.status.phase}: attaching to it`);
  } else {
    jobId = `${base}-${newest.generation + 1}`;
    if (newest.status)
      opts.log?.(
        `${engine.name} job ${base}-${newest.generation} ${newest.status.phase}${newest.status.message ? ` (${newest.status.message.slice(0, 300)})` : ''}: submitting ${jobId}, which resumes from the last checkpoint`,
      );
    await opts.beforeSubmit?.();
    const launch = opts.launch(jobId);
    await fs.rm(launch.eventsFile, { force: true });
    submitted = (await engine.submit(jobId, launch)) === 'created';
    if (!submitted) opts.log?.(`${engine.name} job ${jobId} was submitted by another attempt: attaching to it`);
  }
  const eventsFile = opts.launch(jobId).eventsFile;
  const s: Omit<ClusterRun, 'jobId' | 'submitted' | 'status'> = {
    resumedFromStep: 0,
    lastStep: 0,
    totalSteps: null,
    lastCheckpoint: null,
    lastLoss: null,
    tokensPerSecond: null,
  };
  let offset = 0;
  const follow = async () => {
    const r = await readNewLines(eventsFile, offset);
    offset = r.offset;
    for (const line of r.lines) {
      let e: TrainerEvent;
      try {
        e = JSON.parse(line) as TrainerEvent;
      } catch {
        continue;
      }
      if (e.event === 'start') s.resumedFromStep = Number(e.resumed_from_step ?? 0);
      if (e.event === 'step') {
        s.lastStep = Number(e.step);
        if (e.total_steps !== undefined) s.totalSteps = Number(e.total_steps);
        s.lastLoss = Number(e.loss);
        s.tokensPerSecond = Number(e.tokens_per_s);
      }
      if (e.event === 'checkpoint') s.lastCheckpoint = String(e.path);
      if (e.event === 'done') s.done = e;
      opts.onEvent?.(e);
    }
  };
  for (;;) {
    if (opts.signal?.aborted) {
      opts.log?.(`cancelled: stopping ${engine.name} job ${jobId}`);
      await engine.stop(jobId);
      const deadline = Date.now() + (opts.stopTimeoutMs ?? 120_000);
      let st = await engine.status(jobId);
      while (st && (st.phase === 'pending' || st.phase === 'running') && Date.now() < deadline) {
        opts.heartbeat?.({
          jobId,
          phase: st.phase,
          step: s.lastStep,
          total: s.totalSteps,
          checkpoint: s.lastCheckpoint,
          loss: s.lastLoss,
        });
        await sleep(Math.min(opts.pollMs, 2000));
        st = await engine.status(jobId);
      }
      await follow();
      throw new CancelledFailure(
        `fine-tune cancelled: ${engine.name} job ${jobId} ${st?.phase ?? 'gone'} at step ${s.lastStep}; last checkpoint ${s.lastCheckpoint ?? 'none'} kept`,
      );
    }
    const status = await engine.status(jobId);
    if (!status) throw new Error(`${engine.name} job ${jobId} disappeared`);
    await follow();
    opts.heartbeat?.({
      jobId,
      phase: status.phase,
      step: s.lastStep,
      total: s.totalSteps,
      checkpoint: s.lastCheckpoint,
      loss: s.lastLoss,
    });
    if (status.phase !== 'pending' && status.phase !== 'running') return { jobId, submitted, status, ...s };
    await sleep(opts.pollMs, opts.signal);
  }
}
