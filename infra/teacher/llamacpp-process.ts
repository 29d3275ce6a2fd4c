/**
 * llama.cpp's own HTTP server (the C++ `llama-server` built into the PyPI wheel `xllamacpp`, installed by
 * `npm run setup`) as a child process: one GGUF, `slots` parallel slots decoded together by continuous batching,
 * `threads` CPU threads shared by all slots. Started by infra/teacher/xllamacpp_serve.py, which prints one
 * `listening` line when the model is loaded; stopped by SIGTERM (the server drains its loop), or, should this
 * process die first, by its stdin closing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { projectRoot, pythonBin } from '../paths';

export const XLLAMACPP_SERVE_SCRIPT = path.join(projectRoot, 'infra', 'teacher', 'xllamacpp_serve.py');

export interface LlamaCppProcessOptions {
  modelPath: string;
  /** Parallel slots: requests decoded together. */
  slots: number;
  /** KV cache tokens per slot (prompt + completion of one request). */
  ctxPerSlot: number;
  threads: number;
  /** Layers offloaded to a GPU (0: CPU only; the PyPI wheels are CPU builds). */
  gpuLayers?: number;
  /** Name the server reports as its model. */
  alias?: string;
  /** Every log line of the server (llama.cpp logs to stderr). Default: kept only for error messages. */
  log?: (line: string) => void;
  /** Give up waiting for the model to load after this long. Default 10 minutes. */
  readyTimeoutMs?: number;
}

export interface LlamaCppProcess {
  /** e.g. http://127.0.0.1:41234 (no /v1) */
  url: string;
  pid: number;
  loadSeconds: number;
  /** Tokens the model was trained with (from the server's model list), or 0 when it does not say. */
  trainContextSize: number;
  /** True once the process has exited. */
  exited(): boolean;
  close(): Promise<void>;
}

export async function startLlamaCppProcess(opts: LlamaCppProcessOptions): Promise<LlamaCppProcess> {
  if (!existsSync(opts.modelPath)) throw new Error(`GGUF model not found at ${opts.modelPath}`);
  const py = pythonBin();
  const config = {
    model: opts.modelPath,
    host: '127.0.0.1',
    port: 0,
    slots: opts.slots,
    ctx_per_slot: opts.ctxPerSlot,
    threads: opts.threads,
    gpu_layers: opts.gpuLayers ?? 0,
    alias: opts.alias ?? '',
  };
  const child: ChildProcess = spawn(py, [XLLAMACPP_SERVE_SCRIPT, JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    opts.log?.(line);
  });
  let exitedFlag = false;
  const exitedPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exitedFlag = true;
      resolve();
    }),
  );
  // An error on the pipe to a dead child must not crash this process.
  child.stdin!.on('error', () => undefined);

  const kill = async () => {
    if (exitedFlag) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exitedPromise;
    clearTimeout(t);
  };

  let listening: { url: string; load_seconds: number };
  try {
    listening = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `llama.cpp server (xllamacpp) not ready after ${(opts.readyTimeoutMs ?? 600_000) / 1000} s:\n${tail.join('\n')}`,
            ),
          ),
        opts.readyTimeoutMs ?? 600_000,
      );
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        let ev: { event?: string; url?: string; load_seconds?: number };
        try {
          ev = JSON.parse(line) as typeof ev;
        } catch {
          return;
        }
        if (ev.event === 'listening' && typeof ev.url === 'string') {
          clearTimeout(timer);
          resolve({ url: ev.url, load_seconds: ev.load_seconds ?? 0 });
        }
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(
            `llama.cpp server (xllamacpp via ${py}) exited (${code ?? signal}) before it was ready:\n${tail.join('\n')}`,
          ),
        );
      });
    });
  } catch (e) {
    await kill();
    throw e;
  }
  const url = listening.url.replace(/\/+$/, '');
  let trainContextSize = 0;
  try {
    // Readiness: the server answers /health once its model is loaded; the model list carries the training context.
    const health = await fetch(`${url}/health`);
    if (!health.ok) throw new Error(`llama.cpp server /health answered ${health.status}`);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as {
      data?: Array<{ meta?: { n_ctx_train?: number } }>;
    };
    trainContextSize = models.data?.[0]?.meta?.n_ctx_train ?? 0;
  } catch (e) {
    await kill();
    throw e;
  }
  return {
    url,
    pid: child.pid!,
    loadSeconds: listening.load_seconds,
    trainContextSize,
    exited: () => exitedFlag,
    close: kill,
  };
}
