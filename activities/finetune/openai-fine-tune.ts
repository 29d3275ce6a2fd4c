import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ArtifactRef } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { currentActivity } from '../activity-context';
import { AtomicJsonlWriter, exists, pathOf, readJsonl, verifyRef, writeJsonAtomic } from '../artifacts/store';
import { apiKeyFor } from '../security/worker-policy';

export interface OpenAIFineTuneInput {
  runDir: string;
  sft: ArtifactRef;
  fineTune: RunSpec['fineTune'];
}

export interface OpenAIFineTuneResult {
  studentKind: 'api';
  /** The job's `fine_tuned_model`: what the evaluator asks the same endpoint for. */
  fineTunedModel: string;
  jobId: string;
  fileId: string;
  baseModel: string;
  status: 'succeeded';
  trainedTokens: number | null;
  steps: number;
  finalLoss: number | null;
  /** True when this attempt picked up a job an earlier attempt had created. */
  resumedJob: boolean;
  events: { count: number; warnings: number; errors: number; last: string | null };
  /** JSON: the job, its hyperparameters, the loss curve and every event. */
  report: ArtifactRef;
  // The fields the tiny and trl backends fill, so the workflow can treat every backend alike.
  modelDir: string;
  baselineModelDir: string;
  resumedFromStep: number;
  tokensPerSecond: number | null;
}

/** What the activity writes down beside the run's finetune dir, so a retry never uploads or creates twice. */
interface JobMarker {
  key: string;
  baseURL: string;
  fileId?: string;
  jobId?: string;
  /** Set once an attempt saw the job end failed or cancelled: a later run of the stage starts a new job. */
  ended?: 'failed' | 'cancelled';
  /** Jobs of this key that ended before; never picked up again. */
  previousJobIds?: string[];
}

type Job = OpenAI.FineTuning.Jobs.FineTuningJob;
type JobEvent = OpenAI.FineTuning.Jobs.FineTuningJobEvent;
const TERMINAL = new Set<Job['status']>(['succeeded', 'failed', 'cancelled']);
const METADATA_KEY = 'distillery_key';

/**
 * Fine-tunes through an OpenAI-compatible fine-tuning API: upload the SFT file, create a job, poll it with
 * heartbeats. Exactly one job per run and dataset: the file id and job id are written to `finetune/openai-job.json`
 * as soon as they exist, and a job created just before a crash (before its id was written) is found again by its
 * `metadata.distillery_key` (or its training file id), so a retry polls the same job instead of paying for a second.
 *
 * Cancellation asked for by the workflow cancels the remote job; a lost worker, a heartbeat timeout or a shutdown
 * leave it running for the retry to pick up.
 */
export function createOpenAIFineTune(opts: { env?: NodeJS.ProcessEnv } = {}) {
  return async function openaiFineTune(input: OpenAIFineTuneInput): Promise<OpenAIFineTuneResult> {
    const spec = input.fineTune.openai;
    if (!spec)
      throw ApplicationFailure.nonRetryable(
        'fineTune.backend is "openai" but fineTune.openai is missing',
        'InvalidRunSpec',
      );
    await verifyRef(input.sft);
    const outDir = path.join(input.runDir, 'finetune');
    const markerPath = path.join(outDir, 'openai-job.json');
    const resultPath = path.join(outDir, 'openai-result.json');
    const reportPath = path.join(outDir, 'openai-report.json');
    const key = idempotencyKey(input);
    if (await exists(resultPath)) {
      const done = JSON.parse(await fs.readFile(resultPath, 'utf8')) as OpenAIFineTuneResult & { key?: string };
      if (done.key === key) return stripKey(done);
    }

    const ctx = currentActivity();
    // The key is the worker's, never the spec's: its policy decides whether it may go to this host, and a variable the
    // spec names must be set. Without apiKeyEnv the endpoint is keyless (a local server).
    const apiKey = apiKeyFor(
      { field: 'fineTune.openai.apiKeyEnv', envName: spec.apiKeyEnv, baseURL: spec.baseURL },
      opts.env ?? process.env,
    );
    const client = new OpenAI({
      baseURL: spec.baseURL,
      apiKey: apiKey ?? 'not-needed',
      maxRetries: 4,
      timeout: 120_000,
    });
    const signal = ctx?.cancellationSignal;
    const fail = (err: unknown) => classify(err, spec);

    let marker = await readMarker(markerPath, key, spec.baseURL);
    // A retry on another worker (no shared disk for the marker) still knows the job from the last heartbeat.
    const beat = ctx?.info.heartbeatDetails as { jobId?: string; key?: string } | undefined;
    if (!marker.jobId && !marker.ended && beat?.key === key && beat.jobId) marker.jobId = beat.jobId;
    if (marker.ended && marker.jobId) {
      marker = {
        key,
        baseURL: spec.baseURL,
        fileId: marker.fileId,
        previousJobIds: [...(marker.previousJobIds ?? []), marker.jobId],
      };
      await writeJsonAtomic(markerPath, marker);
    }

    let resumedJob = !!marker.jobId;
    let jobId = marker.jobId;
    let fileId = marker.fileId;
    try {
      if (!jobId) {
        const found = await findJob(client, key, fileId, marker.previousJobIds ?? [], signal);
        if (found) {
          resumedJob = true;
          jobId = found.id;
          fileId = found.training_file;
          ctx?.log.info('found the fine-tuning job an earlier attempt created', { jobId, key });
        } else {
          if (!fileId || !(await fileExists(client, fileId, signal))) {
            fileId = await upload(client, input.sft, path.join(outDir, 'openai-train.jsonl'), key, signal);
            marker = { ...marker, fileId };
            await writeJsonAtomic(markerPath, marker);
          }
          const job = await client.fineTuning.jobs.create(
            {
              model: spec.model,
              training_file: fileId,
              ...(spec.suffix ? { suffix: spec.suffix } : {}),
              seed: input.fineTune.seed,
              metadata: { [METADATA_KEY]: key, distillery_run: path.basename(input.runDir).slice(0, 512) },
              method: { type: 'supervised', supervised: { hyperparameters: spec.hyperparameters } },
            },
            { signal },
          );
          jobId = job.id;
          ctx?.log.info('created fine-tuning job', { jobId, fileId, model: spec.model });
        }
        marker = { ...marker, fileId, jobId };
        await writeJsonAtomic(markerPath, marker);
      }

      const job = await poll(client, jobId!, spec.pollSeconds, key, signal).catch((err: unknown) => {
        if (err instanceof OpenAI.NotFoundError) {
          throw ApplicationFailure.nonRetryable(
            `fine-tuning job ${jobId} (recorded in ${markerPath}) is unknown to ${spec.baseURL}: if the server lost it, delete that file to start a new job. Server said: ${err.message}`,
            'FineTuneJobLost',
          );
        }
        throw err;
      });
      const events = await allEvents(client, jobId!);
      if (job.status !== 'succeeded' || !job.fine_tuned_model) {
        await writeJsonAtomic(markerPath, {
          ...marker,
          ended: job.status === 'cancelled' ? 'cancelled' : 'failed',
        } satisfies JobMarker);
        const why =
          job.error?.message ||
          [...events].reverse().find((e) => e.level === 'error')?.message ||
          `status ${job.status}`;
        throw ApplicationFailure.nonRetryable(
          `fine-tuning job ${job.id} at ${spec.baseURL} ${job.status}${job.error?.code ? ` (${job.error.code})` : ''}: ${why}`,
          job.status === 'cancelled' ? 'FineTuneJobCancelled' : 'FineTuneJobFailed',
        );
      }

      const curve = (await lossFromResultFiles(client, job)) ?? lossFromEvents(events);
      const report = await writeJsonAtomic(reportPath, {
        backend: 'openai',
        baseURL: spec.baseURL,
        key,
        job,
        fileId: job.training_file,
        fineTunedModel: job.fine_tuned_model,
        trainedTokens: job.trained_tokens,
        durationSeconds: job.finished_at ? job.finished_at - job.created_at : null,
        lossCurve: curve,
        events: events.map((e) => ({
          at: e.created_at,
          level: e.level,
          type: e.type ?? 'message',
          message: e.message,
          data: e.data ?? null,
        })),
      });
      const result: OpenAIFineTuneResult = {
        studentKind: 'api',
        fineTunedModel: job.fine_tuned_model,
        jobId: job.id,
        fileId: job.training_file,
        baseModel: job.model,
        status: 'succeeded',
        trainedTokens: job.trained_tokens,
        steps: curve.at(-1)?.step ?? 0,
        finalLoss: curve.at(-1)?.loss ?? null,
        resumedJob,
        events: {
          count: events.length,
          warnings: events.filter((e) => e.level === 'warn').length,
          errors: events.filter((e) => e.level === 'error').length,
          last: events.at(-1)?.message ?? null,
        },
        report,
        modelDir: '',
        baselineModelDir: '',
        resumedFromStep: 0,
        tokensPerSecond: null,
      };
      await writeJsonAtomic(resultPath, { ...result, key });
      return result;
    } catch (err) {
      if (signal?.aborted) throw await onCancel(client, jobId, key, markerPath, { ...marker, fileId });
      throw fail(err);
    }
  };

  /**
   * Only a cancellation the workflow asked for stops the remote job; anything else that aborts this attempt (lost
   * worker, heartbeat timeout, shutdown, pause) leaves it training for the next attempt to pick up.
   */
  async function onCancel(
    client: OpenAI,
    jobId: string | undefined,
    key: string,
    markerPath: string,
    marker: JobMarker,
  ): Promise<Error> {
    const ctx = currentActivity();
    const details = ctx?.cancellationDetails;
    const reason = (ctx?.cancellationSignal.reason as Error | undefined)?.message;
    const requested = details ? details.cancelRequested : reason === 'CANCELLED';
    if (!requested)
      return new CancelledFailure(
        `stopped polling fine-tuning job ${jobId ?? '(not created yet)'} (${reason ?? 'cancelled'}); a retry resumes it`,
      );
    try {
      // Cancelled mid-create: the job may exist although its id never came back.
      jobId ??= (await findJob(client, key, marker.fileId, marker.previousJobIds ?? []))?.id;
      if (!jobId) return new CancelledFailure('fine-tune cancelled before a job was created');
      await client.fineTuning.jobs.cancel(jobId, { timeout: 30_000, maxRetries: 2 });
      await writeJsonAtomic(markerPath, { ...marker, jobId, ended: 'cancelled' } satisfies JobMarker);
    } catch (err) {
      ctx?.log.warn('could not cancel the fine-tuning job', { jobId, error: String(err) });
    }
    return new CancelledFailure(`fine-tuning job ${jobId} cancelled`);
  }
}

/** Same run, same data, same endpoint and settings → same key; anything else is a different job. */
function idempotencyKey(input: OpenAIFineTuneInput): string {
  const o = input.fineTune.openai!;
  const what = JSON.stringify([
    path.basename(input.runDir),
    input.sft.sha256,
    o.baseURL,
    o.model,
    o.suffix ?? null,
    o.hyperparameters,
    input.fineTune.seed,
  ]);
  return `distillery-${createHash('sha256').update(what).digest('hex').slice(0, 32)}`;
}

function stripKey(r: OpenAIFineTuneResult & { key?: string }): OpenAIFineTuneResult {
  const { key: _key, ...rest } = r;
  return rest;
}

async function readMarker(file: string, key: string, baseURL: string): Promise<JobMarker> {
  if (await exists(file)) {
    const m = JSON.parse(await fs.readFile(file, 'utf8')) as JobMarker;
    // A marker of other settings (the spec changed under the same run dir) names a different job.
    if (m.key === key) return m;
  }
  return { key, baseURL };
}

/** The job an earlier attempt created but did not live to write down: ours by metadata key or training file. */
async function findJob(
  client: OpenAI,
  key: string,
  fileId: string | undefined,
  skip: string[],
  signal?: AbortSignal,
): Promise<Job | null> {
  let seen = 0;
  // The metadata filter narrows the list where the provider supports it; the check below holds either way.
  for await (const job of client.fineTuning.jobs.list({ limit: 100, metadata: { [METADATA_KEY]: key } }, { signal })) {
    if (skip.includes(job.id)) continue;
    if (job.metadata?.[METADATA_KEY] === key || (fileId && job.training_file === fileId)) return job;
    // Jobs are listed newest first; ours is among the most recent.
    if (++seen >= 1000) break;
  }
  return null;
}

async function fileExists(client: OpenAI, fileId: string, signal?: AbortSignal): Promise<boolean> {
  try {
    await client.files.retrieve(fileId, { signal });
    return true;
  } catch (err) {
    if (err instanceof OpenAI.NotFoundError) return false;
    throw err;
  }
}

/**
 * Uploads the SFT rows in the API's chat format: `messages` only (the API rejects unknown keys on some providers),
 * ShareGPT rows converted. The file name carries the key, so a person can tell in the provider's dashboard whose
 * upload it is.
 */
async function upload(
  client: OpenAI,
  sft: ArtifactRef,
  trainPath: string,
  key: string,
  signal?: AbortSignal,
): Promise<string> {
  const w = new AtomicJsonlWriter(trainPath);
  const roles: Record<string, string> = {
    human: 'user',
    user: 'user',
    gpt: 'assistant',
    assistant: 'assistant',
    system: 'system',
  };
  try {
    for await (const row of readJsonl<Record<string, unknown>>(pathOf(sft))) {
      const conv = row.conversations as { from: string; value: string }[] | undefined;
      const messages = Array.isArray(row.messages)
        ? row.messages
        : conv?.map((m) => ({ role: roles[m.from] ?? m.from, content: m.value }));
      await w.write({ messages });
    }
    await w.finish();
  } catch (err) {
    await w.abort();
    throw err;
  }
  const file = await client.files.create(
    { file: await toFile(createReadStream(trainPath), `${key}.jsonl`), purpose: 'fine-tune' },
    { signal },
  );
  return file.id;
}

async function poll(
  client: OpenAI,
  jobId: string,
  pollSeconds: number,
  key: string,
  signal?: AbortSignal,
): Promise<Job> {
  const ctx = currentActivity();
  let details: Record<string, unknown> = { key, jobId, status: 'unknown' };
  // Heartbeats must outpace the heartbeat timeout even when the poll interval is long.
  const ticker = setInterval(() => ctx?.heartbeat(details), 2000);
  try {
    for (;;) {
      const job = await client.fineTuning.jobs.retrieve(jobId, { signal });
      const latest = await latestMetrics(client, jobId, signal);
      details = {
        key,
        jobId,
        status: job.status,
        ...latest,
        ...(job.estimated_finish ? { estimatedFinish: job.estimated_finish } : {}),
      };
      ctx?.heartbeat(details);
      if (TERMINAL.has(job.status)) return job;
      await sleep(pollSeconds * 1000, signal);
      if (signal?.aborted) throw new Error(`stopped polling fine-tuning job ${jobId}`);
    }
  } finally {
    clearInterval(ticker);
  }
}

/** The newest step/loss the job has reported, from the first page of its events. */
async function latestMetrics(
  client: OpenAI,
  jobId: string,
  signal?: AbortSignal,
): Promise<{ step?: number; totalSteps?: number; loss?: number }> {
  const page = await client.fineTuning.jobs.listEvents(jobId, { limit: 20 }, { signal });
  for (const e of page.data) {
    const d = e.data as { step?: unknown; total_steps?: unknown; train_loss?: unknown } | undefined;
    if (typeof d?.step === 'number') {
      return {
        step: d.step,
        ...(typeof d.total_steps === 'number' ? { totalSteps: d.total_steps } : {}),
        ...(typeof d.train_loss === 'number' ? { loss: d.train_loss } : {}),
      };
    }
  }
  return {};
}

/** Every event, oldest first. */
async function allEvents(client: OpenAI, jobId: string): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of client.fineTuning.jobs.listEvents(jobId, { limit: 100 })) {
    out.push(e);
    if (out.length >= 100_000) break;
  }
  return out.reverse();
}

function lossFromEvents(events: JobEvent[]): { step: number; loss: number }[] {
  const byStep = new Map<number, number>();
  for (const e of events) {
    const d = e.data as { step?: unknown; train_loss?: unknown } | undefined;
    if (typeof d?.step === 'number' && typeof d.train_loss === 'number') byStep.set(d.step, d.train_loss);
  }
  return [...byStep].sort((a, b) => a[0] - b[0]).map(([step, loss]) => ({ step, loss }));
}

/** The step-metrics CSV OpenAI attaches as a result file (base64 there, plain text on some servers). */
async function lossFromResultFiles(client: OpenAI, job: Job): Promise<{ step: number; loss: number }[] | null> {
  for (const id of job.result_files ?? []) {
    try {
      let text = await (await client.files.content(id)).text();
      if (!text.includes(',')) text = Buffer.from(text.trim(), 'base64').toString('utf8');
      const [header, ...rows] = text.split(/\r?\n/).filter((l) => l.trim());
      const cols = (header ?? '').split(',');
      const si = cols.indexOf('step');
      const li = cols.indexOf('train_loss');
      if (si < 0 || li < 0) continue;
      const curve = rows
        .map((r) => r.split(','))
        .map((c) => ({ step: Number(c[si]), loss: Number(c[li]) }))
        .filter((p) => Number.isFinite(p.step) && Number.isFinite(p.loss));
      if (curve.length) return curve;
    } catch {
      // A result file is a nicety; the events carry the same curve.
    }
  }
  return null;
}

const fixHints: Record<number, string> = {
  400: 'the request was refused: check fineTune.openai.model (is it available for fine-tuning?) and fineTune.openai.hyperparameters',
  403: 'the API key has no access to fine-tuning or to this model',
  404: 'no such path or model: check fineTune.openai.baseURL (it usually ends in /v1) and fineTune.openai.model',
  422: 'the endpoint could not process the request parameters',
};

function classify(err: unknown, spec: NonNullable<RunSpec['fineTune']['openai']>): unknown {
  if (!(err instanceof OpenAI.APIError) || typeof err.status !== 'number') return err;
  if (err.status === 401) {
    const fix = spec.apiKeyEnv
      ? `the key in ${spec.apiKeyEnv} (fineTune.openai.apiKeyEnv) was refused: set it to a valid API key for ${spec.baseURL}`
      : `it wants an API key: name the variable that holds it in fineTune.openai.apiKeyEnv`;
    return ApplicationFailure.nonRetryable(
      `Fine-tuning API at ${spec.baseURL} answered HTTP 401: ${fix}. Server said: ${err.message}`,
      'FineTuneApiAuth',
    );
  }
  const hint = fixHints[err.status];
  if (hint)
    return ApplicationFailure.nonRetryable(
      `Fine-tuning API at ${spec.baseURL} answered HTTP ${err.status}: ${hint}. Server said: ${err.message}`,
      `FineTuneHttp${err.status}`,
    );
  return err;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
