import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import OpenAI from 'openai';
import { ApplicationFailure } from '@temporalio/common';
import { freePort } from '../../infra/temporal';
import { projectRoot, pythonBin } from '../../infra/paths';
import { DEFAULT_LLAMACPP_SLOTS } from '../../core/llamacpp';
import { Semaphore } from '../../core/semaphore';
import { decode, encodePrompt } from './byte-tokenizer';
import { OnnxStudent } from './onnx-student';
import { apiKeyFor } from '../security/worker-policy';

/** What the evaluator is told to score. One of: */
export type EvalModel =
  /** The project's ONNX student (model.onnx + byte tokenizer), run in-process by onnxruntime-node. */
  | { name: string; dir: string }
  /** Any OpenAI-compatible chat endpoint (a teacher, a hosted model, a server someone else runs). */
  | { name: string; endpoint: EndpointSpec }
  /**
   * A student checkpoint that the activity serves itself for the evaluation and stops afterwards: vLLM on the
   * transformers directory where vLLM is installed and a GPU is visible, otherwise a llama.cpp server on the GGUF.
   */
  | { name: string; serve: { gguf?: string; hfDir?: string } };

export interface EndpointSpec {
  baseURL: string;
  model: string;
  /** Name of the env var holding the key (the key itself never enters history). */
  apiKeyEnv?: string;
  systemPrompt?: string;
  /** Concurrent requests to this endpoint. */
  maxInFlight?: number;
  timeoutSeconds?: number;
}

export interface GenerateOptions {
  temperature: number;
  topP: number;
  maxNewTokens: number;
  /** The run's evaluation seed; each sample's own seed is derived from it, the item and the sample index. */
  seed: number;
  sampleIndex: number;
  /** The ONNX engine's random stream for this sample index (kept so ONNX scores stay comparable with earlier runs). */
  rng: () => number;
}

export interface EngineOutput {
  text: string;
  truncated: boolean;
  /** The sampling seed sent with the request (endpoint engines), recorded with the sample. */
  seed?: number;
  /** Set when the model could not be asked at all (prompt longer than its context). */
  skipped?: string;
}

export interface EvalEngine {
  /** What actually served the model: 'onnx', 'endpoint', 'llama.cpp', 'vllm'. */
  kind: string;
  /** Items per generate() call the engine handles well. */
  batch: number;
  generate(prompts: { id: string; prompt: string }[], opts: GenerateOptions): Promise<EngineOutput[]>;
  close(): Promise<void>;
}

export interface EngineContext {
  /** The ONNX student's context length. */
  maxLen: number;
  threads?: number;
  /** CUDA devices of this GPU slot ('' = none): decides vLLM vs llama.cpp. */
  cudaVisibleDevices?: string;
  log?: (msg: string) => void;
  signal?: AbortSignal;
}

export async function openEngine(model: EvalModel, ctx: EngineContext): Promise<EvalEngine> {
  if ('dir' in model) return openOnnxEngine(path.join(model.dir, 'model.onnx'), ctx);
  if ('endpoint' in model)
    return endpointEngine(model.endpoint, 'endpoint', `the apiKeyEnv of evaluation model ${model.name}`);
  return serveCheckpoint(model.name, model.serve, ctx);
}

async function openOnnxEngine(file: string, ctx: EngineContext): Promise<EvalEngine> {
  const student = await OnnxStudent.load(file, ctx.maxLen, ctx.threads);
  return {
    kind: 'onnx',
    batch: 32,
    async generate(prompts, opts) {
      const encoded = prompts.map((p) => encodePrompt(p.prompt));
      // A prompt the student cannot even read (longer than its context) gets no answer, not a crash.
      const fits = encoded.map((e, i) => (e.length < ctx.maxLen ? i : -1)).filter((i) => i >= 0);
      const outs = fits.length
        ? await student.generate(
            fits.map((i) => encoded[i]!),
            { temperature: opts.temperature, topP: opts.topP, maxNewTokens: opts.maxNewTokens, rng: opts.rng },
          )
        : [];
      const byIndex = new Map(fits.map((i, n) => [i, outs[n]!]));
      return encoded.map((e, i) => {
        const out = byIndex.get(i);
        if (!out)
          return { text: '', truncated: true, skipped: `prompt is ${e.length} tokens, the model reads ${ctx.maxLen}` };
        return { text: decode(out.ids), truncated: out.truncated };
      });
    },
    close: () => student.release(),
  };
}

/** A per-sample seed: the same item and sample index get the same seed for every model (same randomness for all). */
export function sampleSeed(seed: number, itemId: string, sampleIndex: number): number {
  let h = 2166136261 ^ seed;
  for (const ch of `${itemId}#${sampleIndex}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return (h >>> 0) % 2_147_483_647;
}

type ChatMessage = { role: 'system' | 'user'; content: string };

export function endpointEngine(
  spec: EndpointSpec,
  kind: string,
  keyField = 'evaluation endpoint apiKeyEnv',
): EvalEngine {
  // Before any request: the worker's key policy decides whether this key may go to this host, and a named key must be set.
  const apiKey = apiKeyFor({ field: keyField, envName: spec.apiKeyEnv, baseURL: spec.baseURL });
  const unauthorized = () =>
    ApplicationFailure.nonRetryable(
      spec.apiKeyEnv
        ? `evaluation endpoint ${spec.baseURL} (model ${spec.model}) answered 401: the key in ${spec.apiKeyEnv} was refused`
        : `evaluation endpoint ${spec.baseURL} (model ${spec.model}) answered 401: it wants an API key, and no apiKeyEnv names one`,
      'EvaluationEndpointUnauthorized',
    );
  const client = new OpenAI({
    baseURL: spec.baseURL,
    apiKey: apiKey ?? 'none',
    maxRetries: 6,
    timeout: (spec.timeoutSeconds ?? 300) * 1000,
  });
  const sem = new Semaphore(spec.maxInFlight ?? 8);
  const ask = async (p: { id: string; prompt: string }, opts: GenerateOptions): Promise<EngineOutput> => {
    const seed = sampleSeed(opts.seed, p.id, opts.sampleIndex);
    const messages: ChatMessage[] = [
      ...(spec.systemPrompt ? [{ role: 'system' as const, content: spec.systemPrompt }] : []),
      { role: 'user', content: p.prompt },
    ];
    await sem.acquire();
    try {
      const res = await client.chat.completions
        .create({
          model: spec.model,
          messages,
          temperature: opts.temperature,
          top_p: opts.topP,
          max_tokens: opts.maxNewTokens,
          seed,
          n: 1,
        })
        .catch((err: unknown) => {
          const status = (err as { status?: number }).status;
          if (status === 401) throw unauthorized();
          // A model the endpoint does not serve will not appear by retrying.
          if (status === 404)
            throw ApplicationFailure.nonRetryable(
              `evaluation endpoint ${spec.baseURL} does not serve model ${spec.model}: ${(err as Error).message}`,
              'EvaluationModelNotFound',
            );
          throw err;
        });
      const choice = res.choices?.[0];
      if (!choice) throw new Error(`evaluation endpoint ${spec.baseURL} returned no choice for item ${p.id}`);
      // Reasoning models may return their chain of thought apart; the verifier reads the answer after it.
      const reasoning = (choice.message as { reasoning_content?: string }).reasoning_content;
      const content = choice.message.content ?? '';
      const text = reasoning ? `<think>${reasoning}</think>${content}` : content;
      return { text, truncated: choice.finish_reason === 'length', seed };
    } finally {
      sem.release();
    }
  };
  return {
    kind,
    batch: Math.max(8, (spec.maxInFlight ?? 8) * 4),
    generate: (prompts, opts) => Promise.all(prompts.map((p) => ask(p, opts))),
    close: async () => undefined,
  };
}

/** vLLM is used where it is installed (in the project's venv) and the slot has a GPU. */
function vllmAvailable(ctx: EngineContext): boolean {
  if (!ctx.cudaVisibleDevices) return false;
  try {
    return spawnSync(pythonBin(), ['-c', 'import vllm'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
  } catch {
    return false;
  }
}

/**
 * The worker's engine for GGUF checkpoints on a CPU slot: `llama.cpp` (its own server, the default) or
 * `node-llama-cpp` (one context per core), from DISTILLERY_CPU_LLAMA_RUNTIME.
 */
function cpuLlamaRuntime(): 'llama.cpp' | 'node-llama-cpp' {
  const v = process.env.DISTILLERY_CPU_LLAMA_RUNTIME ?? 'llama.cpp';
  if (v !== 'llama.cpp' && v !== 'node-llama-cpp')
    throw ApplicationFailure.nonRetryable(
      `DISTILLERY_CPU_LLAMA_RUNTIME=${v}: expected llama.cpp or node-llama-cpp`,
      'WorkerConfigInvalid',
    );
  return v;
}

async function serveCheckpoint(
  name: string,
  serve: { gguf?: string; hfDir?: string },
  ctx: EngineContext,
): Promise<EvalEngine> {
  const port = await freePort();
  const served = `eval-${name}`;
  let child: ChildProcess;
  let kind: string;
  let serverSlots = 1;
  if (serve.hfDir && vllmAvailable(ctx)) {
    kind = 'vllm';
    child = spawn(
      pythonBin(),
      [
        '-m',
        'vllm.entrypoints.openai.api_server',
        '--model',
        serve.hfDir,
        '--served-model-name',
        served,
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
      ],
      {
        env: { ...process.env, CUDA_VISIBLE_DEVICES: ctx.cudaVisibleDevices },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  } else if (serve.gguf) {
    kind = 'llama.cpp';
    const main = path.join(projectRoot, 'dist', 'infra', 'teacher', 'llama-main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\``);
    if (!existsSync(serve.gguf)) throw new Error(`student GGUF ${serve.gguf} does not exist`);
    const cores = Math.max(1, ctx.threads ?? os.availableParallelism());
    const args = [main, '--model', serve.gguf, '--port', String(port), '--name', served];
    if (ctx.cudaVisibleDevices) {
      // GPU slot without vLLM: node-llama-cpp, whose prebuilt binaries carry CUDA (xllamacpp's PyPI wheels are CPU
      // builds); one context with all the slot's cores.
      args.push('--runtime', 'node-llama-cpp', '--gpu', 'auto', '--max-in-flight', '1', '--threads', String(cores));
      serverSlots = 1;
    } else if (cpuLlamaRuntime() === 'node-llama-cpp') {
      // The earlier CPU engine, kept to time against: llama.cpp's threads spin-wait, so one context per core, one
      // thread each.
      args.push('--runtime', 'node-llama-cpp', '--max-in-flight', String(cores), '--threads', '1');
      serverSlots = cores;
    } else {
      // CPU slot: llama.cpp's own server decodes all its slots in one batch per step, so one server gets every core.
      serverSlots = DEFAULT_LLAMACPP_SLOTS;
      args.push('--runtime', 'llama.cpp', '--slots', String(serverSlots), '--threads', String(cores));
    }
    child = spawn(process.execPath, args, { env: process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  } else {
    throw new Error(
      `cannot serve ${name}: no GGUF for llama.cpp${serve.hfDir ? ' and vLLM is not usable here (not installed or no GPU in this slot)' : ''}`,
    );
  }
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 10_000);
    await exited;
    clearTimeout(t);
  };
  const onAbort = () => void stop();
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await waitReady(child, port, kind, ctx);
  } catch (err) {
    await stop();
    throw err;
  }
  ctx.log?.(`evaluation server for ${name}: ${kind} on :${port}`);
  const inner = endpointEngine(
    { baseURL: `http://127.0.0.1:${port}/v1`, model: served, maxInFlight: kind === 'vllm' ? 64 : serverSlots },
    kind,
  );
  return {
    ...inner,
    close: async () => {
      ctx.signal?.removeEventListener('abort', onAbort);
      await stop();
    },
  };
}

/** Ready when the server answers /v1/models; a server that dies first fails with its last log lines. */
async function waitReady(child: ChildProcess, port: number, kind: string, ctx: EngineContext): Promise<void> {
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
  };
  readline.createInterface({ input: child.stdout! }).on('line', keep);
  readline.createInterface({ input: child.stderr! }).on('line', keep);
  const deadline = Date.now() + 15 * 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(
        `${kind} evaluation server exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail.join('\n')}`,
      );
    if (ctx.signal?.aborted) throw new Error('evaluation cancelled while its server was starting');
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v1/models`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${kind} evaluation server not ready after 15 minutes:\n${tail.join('\n')}`);
}
