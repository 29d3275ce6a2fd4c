import type http from 'node:http';
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runTrainer } from '../../activities/finetune/trainer-process';
import { pythonBin, trainerScript } from '../paths';
import type { FileStore } from './batch-api';
import { readRequest } from './batch-api';
import { HttpError, invalid, sendJson } from './http-common';
import { validateTrainingFile } from './fine-tuning-file';

/**
 * OpenAI's fine-tuning API for the local teacher, backed by real training: a job validates its uploaded JSONL,
 * waits in a one-at-a-time queue, then runs the project's tiny trainer (infra/trainer/train_tiny.py) on it, with
 * its step/loss lines as `metrics` events and a `step_metrics.csv` result file. The model directory (weights,
 * tokenizer, ONNX) stays under `dir/<job id>/model`.
 *
 *   POST /v1/fine_tuning/jobs                 {model, training_file, suffix?, seed?, metadata?, hyperparameters? | method?}
 *   GET  /v1/fine_tuning/jobs                 ?limit&after&metadata[k]=v   newest first
 *   GET  /v1/fine_tuning/jobs/{id}
 *   GET  /v1/fine_tuning/jobs/{id}/events     ?limit&after                 newest first
 *   POST /v1/fine_tuning/jobs/{id}/cancel
 *
 * Base models: `tiny-gpt` (d_model 128, 4 layers, 4 heads, 256 positions), `tiny-gpt-micro` (32, 1, 2, 128),
 * `tiny-gpt-d<D>-l<L>-h<H>-t<T>`, or an earlier job's `ft:…` model (training continues from its weights).
 * Jobs live in memory: a restarted server has forgotten them (their model directories stay on disk).
 */

type Status = 'validating_files' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
const TERMINAL: ReadonlySet<Status> = new Set(['succeeded', 'failed', 'cancelled']);

interface Hyperparameters {
  n_epochs: number;
  batch_size: number;
  learning_rate_multiplier: number;
}

interface Job {
  id: string;
  object: 'fine_tuning.job';
  model: string;
  created_at: number;
  finished_at: number | null;
  fine_tuned_model: string | null;
  organization_id: string;
  result_files: string[];
  status: Status;
  validation_file: string | null;
  training_file: string;
  hyperparameters: Hyperparameters;
  trained_tokens: number | null;
  error: { code: string; message: string; param: string | null } | null;
  user_provided_suffix: string | null;
  seed: number;
  estimated_finish: number | null;
  integrations: unknown[];
  metadata: Record<string, string> | null;
  method: { type: 'supervised'; supervised: { hyperparameters: Hyperparameters } };
}

interface JobEvent {
  id: string;
  object: 'fine_tuning.job.event';
  created_at: number;
  level: 'info' | 'warn' | 'error';
  message: string;
  data: Record<string, unknown> | null;
  type: 'message' | 'metrics';
}

interface ModelShape {
  d_model: number;
  n_layer: number;
  n_head: number;
  max_len: number;
}

const BASE_MODELS: Record<string, ModelShape> = {
  'tiny-gpt': { d_model: 128, n_layer: 4, n_head: 4, max_len: 256 },
  'tiny-gpt-micro': { d_model: 32, n_layer: 1, n_head: 2, max_len: 128 },
};
/** The trainer's defaults, which `auto` stands for. */
const AUTO: Hyperparameters = { n_epochs: 3, batch_size: 16, learning_rate_multiplier: 1 };
const BASE_LR = 2e-3;

export interface FineTuningApiOptions {
  files: FileStore;
  /** Where jobs keep their training file, checkpoints and model. Default: a fresh directory under the OS temp dir. */
  dir?: string;
  /** How long a validated job stays `queued` before it trains (a real provider takes minutes). Default 0. */
  startDelayMs?: number;
  /** Torch threads of the trainer. Default min(4, cores). */
  threads?: number;
}

const now = () => Math.floor(Date.now() / 1000);
const newId = (prefix: string) => `${prefix}-${randomBytes(12).toString('hex')}`;

export function createFineTuningApi(opts: FineTuningApiOptions) {
  const jobs = new Map<string, Job>();
  const events = new Map<string, JobEvent[]>();
  const aborts = new Map<string, AbortController>();
  const modelDirs = new Map<string, string>();
  const running = new Set<Promise<void>>();
  // One job trains at a time: the trainer uses every thread it is given.
  let queue: Promise<void> = Promise.resolve();
  let rootDir: Promise<string> | undefined;
  const root = () =>
    (rootDir ??= opts.dir
      ? fs.mkdir(opts.dir, { recursive: true }).then(() => opts.dir!)
      : fs.mkdtemp(path.join(os.tmpdir(), 'distillery-fine-tuning-')));

  function emit(
    job: Job,
    message: string,
    extra: { level?: JobEvent['level']; type?: JobEvent['type']; data?: Record<string, unknown> } = {},
  ) {
    const list = events.get(job.id)!;
    list.push({
      id: newId('ftevent'),
      object: 'fine_tuning.job.event',
      created_at: now(),
      level: extra.level ?? 'info',
      message,
      data: extra.data ?? null,
      type: extra.type ?? 'message',
    });
  }

  function finish(job: Job, status: 'failed' | 'cancelled', error?: Job['error']) {
    if (TERMINAL.has(job.status)) return;
    job.status = status;
    job.finished_at = now();
    job.estimated_finish = null;
    if (error) {
      job.error = error;
      emit(job, error.message, { level: 'error' });
    } else emit(job, 'Fine-tuning job cancelled');
  }

  function baseShape(model: string): { shape: ModelShape; root: string; initFrom?: string } | null {
    if (BASE_MODELS[model]) return { shape: BASE_MODELS[model]!, root: model };
    const m = /^tiny-gpt-d(\d+)-l(\d+)-h(\d+)-t(\d+)$/.exec(model);
    if (m) return { shape: { d_model: +m[1]!, n_layer: +m[2]!, n_head: +m[3]!, max_len: +m[4]! }, root: model };
    const parent = [...jobs.values()].find((j) => j.fine_tuned_model === model && j.status === 'succeeded');
    if (parent) return { ...baseShape(parent.model)!, initFrom: modelDirs.get(parent.id) };
    return null;
  }

  async function train(job: Job, base: { shape: ModelShape; root: string; initFrom?: string }): Promise<void> {
    // Validation is asynchronous at OpenAI too: the create call answers before the file is read.
    await new Promise((r) => setTimeout(r, 20));
    if (job.status !== 'validating_files') return;
    const content = opts.files.get(job.training_file)!.content;
    emit(job, `Validating training file: ${job.training_file}`);
    const problem = validateTrainingFile(content);
    if (problem)
      return finish(job, 'failed', {
        code: 'invalid_training_file',
        param: 'training_file',
        message: `The job failed due to an invalid training file. ${problem}`,
      });
    job.status = 'queued';
    emit(job, 'Files validated, moving job to queued state');

    const previous = queue;
    let release!: () => void;
    queue = new Promise<void>((r) => (release = r));
    try {
      await previous;
      if (opts.startDelayMs) await new Promise((r) => setTimeout(r, opts.startDelayMs));
      if (job.status !== 'queued') return;
      await runJob(job, base, content);
    } finally {
      release();
    }
  }

  async function runJob(
    job: Job,
    base: { shape: ModelShape; root: string; initFrom?: string },
    content: string,
  ): Promise<void> {
    const jobDir = path.join(await root(), job.id);
    await fs.mkdir(jobDir, { recursive: true });
    await fs.writeFile(path.join(jobDir, 'training.jsonl'), content);
    const hp = job.hyperparameters;
    const config = {
      data: 'training.jsonl',
      output_dir: '.',
      model: base.shape,
      ...(base.initFrom ? { init_from: base.initFrom } : {}),
      epochs: hp.n_epochs,
      batch_size: hp.batch_size,
      lr: BASE_LR * hp.learning_rate_multiplier,
      seed: job.seed,
      checkpoint_every: 50,
      threads: opts.threads ?? Math.min(4, os.cpus().length),
    };
    await fs.writeFile(path.join(jobDir, 'config.json'), JSON.stringify(config, null, 2));
    const abort = new AbortController();
    aborts.set(job.id, abort);
    job.status = 'running';
    emit(job, 'Fine-tuning job started');
    const started = Date.now();
    let done: Record<string, unknown> | undefined;
    const curve: { step: number; loss: number }[] = [];
    let run;
    try {
      run = await runTrainer({
        python: pythonBin(),
        script: trainerScript('train_tiny.py'),
        args: ['--config', path.join(jobDir, 'config.json'), '--no-resume'],
        env: { ...process.env, CUDA_VISIBLE_DEVICES: '', PYTHONUNBUFFERED: '1' },
        signal: abort.signal,
        graceMs: 5000,
        onEvent: (e) => {
          if (e.event === 'step') {
            const step = Number(e.step);
            const total = Number(e.total_steps);
            const loss = Number(e.loss);
            curve.push({ step, loss });
            const perStep = (Date.now() - started) / 1000 / step;
            job.estimated_finish = now() + Math.ceil(perStep * (total - step));
            emit(job, `Step ${step}/${total}: training loss=${loss.toFixed(4)}`, {
              type: 'metrics',
              data: {
                step,
                train_loss: loss,
                total_steps: total,
                learning_rate: e.lr,
                tokens: e.tokens,
                epoch: e.epoch,
              },
            });
          }
          if (e.event === 'checkpoint')
            emit(job, `Checkpoint created at step ${Number(e.step)}`, { data: { step: Number(e.step) } });
          if (e.event === 'done') done = e;
        },
      });
    } catch (err) {
      return finish(job, 'failed', {
        code: 'server_error',
        param: null,
        message: `The trainer could not start: ${(err as Error).message}`,
      });
    } finally {
      aborts.delete(job.id);
    }
    // A cancel (or the server closing) lands while the trainer runs: the status is no longer the one set above.
    if (TERMINAL.has(job.status as Status)) return;
    if (run.exitCode !== 0 || !done) {
      const reason = run.stderrTail
        .split('\n')
        .filter((l) => l.trim())
        .slice(-3)
        .join(' ')
        .replace(/\[train_tiny\] /g, '');
      // The trainer exits 2 for data it cannot use: that is the training file's fault, not the service's.
      return finish(
        job,
        'failed',
        run.exitCode === 2
          ? {
              code: 'invalid_training_file',
              param: 'training_file',
              message: `The job failed due to an invalid training file. ${reason}`,
            }
          : {
              code: 'training_failed',
              param: null,
              message: `Training stopped (exit ${run.exitCode ?? run.signal}): ${reason}`,
            },
      );
    }
    modelDirs.set(job.id, String(done.model_dir));
    const csv =
      [
        'step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy',
        ...curve.map((p) => `${p.step},${p.loss},,,`),
      ].join('\n') + '\n';
    job.result_files = [opts.files.add(csv, 'step_metrics.csv', 'fine-tune-results').id];
    job.trained_tokens = Number(done.tokens ?? 0);
    job.fine_tuned_model = `ft:${base.root}:${job.user_provided_suffix ?? 'distillery'}:${job.id.slice(6, 14)}`;
    emit(job, `New fine-tuned model created: ${job.fine_tuned_model}`, {
      data: { model_dir: done.model_dir, onnx: done.onnx, final_loss: done.final_loss },
    });
    job.status = 'succeeded';
    job.finished_at = now();
    job.estimated_finish = null;
    emit(job, 'The job has successfully completed');
  }

  function parseHyperparameters(raw: unknown): Hyperparameters {
    const hp = (raw ?? {}) as Record<string, unknown>;
    if (typeof hp !== 'object' || Array.isArray(hp))
      throw invalid("Invalid 'hyperparameters': expected an object.", 'hyperparameters');
    const pick = (key: keyof Hyperparameters, ok: (v: number) => boolean, what: string): number => {
      const v = hp[key];
      if (v === undefined || v === null || v === 'auto') return AUTO[key];
      if (typeof v !== 'number' || !ok(v))
        throw invalid(
          `Invalid 'hyperparameters.${key}': expected ${what} or 'auto'.`,
          `hyperparameters.${key}`,
          'invalid_value',
        );
      return v;
    };
    return {
      n_epochs: pick('n_epochs', (v) => Number.isInteger(v) && v >= 1 && v <= 50, 'an integer from 1 to 50'),
      batch_size: pick('batch_size', (v) => Number.isInteger(v) && v >= 1 && v <= 256, 'an integer from 1 to 256'),
      learning_rate_multiplier: pick(
        'learning_rate_multiplier',
        (v) => v > 0 && v <= 10,
        'a number above 0, at most 10',
      ),
    };
  }

  async function create(req: http.IncomingMessage): Promise<Job> {
    let body: Record<string, unknown>;
    try {
      body = (await (await readRequest(req)).json()) as Record<string, unknown>;
    } catch {
      throw invalid('We could not parse the JSON body of your request.');
    }
    if (!body || typeof body !== 'object') throw invalid('The request body must be a JSON object.');
    if (typeof body.model !== 'string' || !body.model)
      throw invalid("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
    if (typeof body.training_file !== 'string')
      throw invalid("Missing required parameter: 'training_file'.", 'training_file', 'missing_required_parameter');
    const file = opts.files.get(body.training_file);
    if (!file)
      throw invalid(
        `Invalid training_file: ${body.training_file}. The file does not exist.`,
        'training_file',
        'invalid_training_file',
      );
    if (file.purpose !== 'fine-tune')
      throw invalid(
        `Invalid training_file: ${file.id} has purpose '${file.purpose}', expected 'fine-tune'.`,
        'training_file',
        'invalid_training_file',
      );
    const base = baseShape(body.model);
    if (!base)
      throw new HttpError(
        400,
        `Model ${body.model} is not available for fine-tuning or does not exist.`,
        'invalid_request_error',
        'model',
        'model_not_available',
      );
    const suffix = body.suffix ?? null;
    if (suffix !== null && (typeof suffix !== 'string' || suffix.length > 64 || !/^[A-Za-z0-9_-]*$/.test(suffix))) {
      throw invalid(
        "Invalid 'suffix': at most 64 characters of letters, digits, '-' and '_'.",
        'suffix',
        'invalid_value',
      );
    }
    const metadata = body.metadata ?? null;
    if (metadata !== null) {
      const entries = typeof metadata === 'object' && !Array.isArray(metadata) ? Object.entries(metadata) : null;
      if (
        !entries ||
        entries.length > 16 ||
        entries.some(([k, v]) => k.length > 64 || typeof v !== 'string' || v.length > 512)
      ) {
        throw invalid(
          "Invalid 'metadata': at most 16 string values, keys up to 64 and values up to 512 characters.",
          'metadata',
          'invalid_value',
        );
      }
    }
    const method = body.method as { type?: string; supervised?: { hyperparameters?: unknown } } | undefined;
    if (method && method.type !== 'supervised')
      throw invalid(`Invalid 'method.type': only 'supervised' is supported here.`, 'method.type', 'invalid_value');
    if (method?.supervised?.hyperparameters && body.hyperparameters) {
      throw invalid(
        "Specify hyperparameters in 'method' or in 'hyperparameters', not both.",
        'hyperparameters',
        'invalid_value',
      );
    }
    const hyperparameters = parseHyperparameters(method?.supervised?.hyperparameters ?? body.hyperparameters);
    if (body.seed !== undefined && body.seed !== null && !(Number.isInteger(body.seed) && (body.seed as number) >= 0))
      throw invalid("Invalid 'seed': expected a non-negative integer.", 'seed', 'invalid_type');
    const job: Job = {
      id: newId('ftjob'),
      object: 'fine_tuning.job',
      model: body.model,
      created_at: now(),
      finished_at: null,
      fine_tuned_model: null,
      organization_id: 'org-distillery-local',
      result_files: [],
      status: 'validating_files',
      validation_file: null,
      training_file: file.id,
      hyperparameters,
      trained_tokens: null,
      error: null,
      user_provided_suffix: suffix as string | null,
      seed: (body.seed as number | undefined) ?? randomInt(2 ** 31),
      estimated_finish: null,
      integrations: [],
      metadata: metadata as Record<string, string> | null,
      method: { type: 'supervised', supervised: { hyperparameters } },
    };
    jobs.set(job.id, job);
    events.set(job.id, []);
    emit(job, `Created fine-tuning job: ${job.id}`);
    const p = train(job, base).catch((err: unknown) =>
      finish(job, 'failed', {
        code: 'server_error',
        param: null,
        message: `Internal error: ${err instanceof Error ? err.message : String(err)}`,
      }),
    );
    running.add(p);
    void p.finally(() => running.delete(p));
    return job;
  }

  /** A page of a newest-first list, with OpenAI's cursor semantics (`after` = last id of the previous page). */
  function page<T extends { id: string }>(all: T[], q: URLSearchParams) {
    let rest = all;
    const after = q.get('after');
    if (after) rest = rest.slice(rest.findIndex((x) => x.id === after) + 1);
    const limit = Math.min(100, Math.max(1, Number(q.get('limit')) || 20));
    return { object: 'list', data: rest.slice(0, limit), has_more: rest.length > limit };
  }

  /** Answers the request if it is a fine-tuning API call; false otherwise. */
  async function handle(
    method: string,
    urlPath: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<boolean> {
    if (!urlPath.startsWith('/v1/fine_tuning/jobs')) return false;
    const q = new URL(req.url ?? '/', 'http://local').searchParams;
    if (urlPath === '/v1/fine_tuning/jobs') {
      if (method === 'POST') {
        sendJson(res, 200, await create(req));
        return true;
      }
      if (method !== 'GET')
        throw new HttpError(405, `Method ${method} not allowed on ${urlPath}.`, 'invalid_request_error');
      // metadata[k]=v filters (qs bracket syntax, as the openai client sends it).
      const filters = [...q.entries()].flatMap(([k, v]) => {
        const m = /^metadata\[(.+)\]$/.exec(k);
        return m ? [[m[1]!, v] as const] : [];
      });
      const all = [...jobs.values()].reverse().filter((j) => filters.every(([k, v]) => j.metadata?.[k] === v));
      sendJson(res, 200, page(all, q));
      return true;
    }
    const m = /^\/v1\/fine_tuning\/jobs\/([^/]+)(\/events|\/cancel)?$/.exec(urlPath);
    if (!m)
      throw new HttpError(404, `Invalid URL (${method} ${urlPath})`, 'invalid_request_error', null, 'unknown_url');
    const job = jobs.get(m[1]!);
    if (!job)
      throw new HttpError(
        404,
        `Could not find fine-tune job: ${m[1]}`,
        'invalid_request_error',
        'fine_tune_id',
        'fine_tune_not_found',
      );
    if (m[2] === '/events') {
      if (method !== 'GET')
        throw new HttpError(405, `Method ${method} not allowed on ${urlPath}.`, 'invalid_request_error');
      sendJson(res, 200, page([...events.get(job.id)!].reverse(), q));
      return true;
    }
    if (m[2] === '/cancel') {
      if (method !== 'POST')
        throw new HttpError(405, `Method ${method} not allowed on ${urlPath}.`, 'invalid_request_error');
      if (job.status === 'succeeded' || job.status === 'failed')
        throw invalid(
          `Job ${job.id} has already ${job.status === 'succeeded' ? 'completed' : 'failed'} and cannot be cancelled.`,
          null,
          'job_not_cancellable',
        );
      finish(job, 'cancelled');
      aborts.get(job.id)?.abort();
      sendJson(res, 200, job);
      return true;
    }
    if (method !== 'GET')
      throw new HttpError(405, `Method ${method} not allowed on ${urlPath}.`, 'invalid_request_error');
    sendJson(res, 200, job);
    return true;
  }

  const baseDirs = new Map<string, Promise<string>>();
  /** A base model's untrained initial weights (seed 0) as a model dir with model.onnx, written once on first use. */
  function baseModelDir(model: string, shape: ModelShape): Promise<string> {
    let p = baseDirs.get(model);
    if (!p) {
      p = (async () => {
        const dir = path.join(await root(), 'base-models', model);
        if (
          await fs.stat(path.join(dir, 'model.onnx')).then(
            () => true,
            () => false,
          )
        )
          return dir;
        const config = path.join(await root(), 'base-models', `${model}.config.json`);
        await fs.mkdir(path.dirname(config), { recursive: true });
        await fs.writeFile(config, JSON.stringify({ model: shape, seed: 0, data: 'none', output_dir: dir }));
        await promisify(execFile)(pythonBin(), [
          trainerScript('export_onnx.py'),
          '--init-only',
          '--no-check',
          '--output',
          dir,
          '--config',
          config,
        ]);
        return dir;
      })();
      baseDirs.set(model, p);
      p.catch(() => baseDirs.delete(model));
    }
    return p;
  }

  return {
    handle,
    created: () => jobs.size,
    /** Does /v1/chat/completions serve this model: a succeeded job's fine-tuned model, or a base model? */
    serves(model: string): boolean {
      const base = baseShape(model);
      return !!base && (!base.initFrom || !!this.modelDir(model));
    },
    /** The model dir that answers chat completions for `model` (its ONNX export), or undefined. */
    async servedModelDir(model: string): Promise<string | undefined> {
      const fineTuned = this.modelDir(model);
      if (fineTuned) return fineTuned;
      const base = baseShape(model);
      return base && !base.initFrom ? baseModelDir(model, base.shape) : undefined;
    },
    /** Where a succeeded job's model is on disk, by job id or fine-tuned model name. */
    modelDir(jobOrModel: string): string | undefined {
      const job = jobs.get(jobOrModel) ?? [...jobs.values()].find((j) => j.fine_tuned_model === jobOrModel);
      return job ? modelDirs.get(job.id) : undefined;
    },
    /** Fails every unfinished job (as a provider outage would), stops running trainers and waits for them to exit. */
    async close(): Promise<void> {
      for (const job of jobs.values())
        finish(job, 'failed', {
          code: 'server_error',
          param: null,
          message: 'The fine-tuning service shut down before the job finished.',
        });
      for (const abort of aborts.values()) abort.abort();
      await Promise.allSettled([...running]);
    },
  };
}
