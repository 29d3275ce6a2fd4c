/**
 * CLI: run a real local LLM (a GGUF) as an OpenAI-compatible teacher.
 *
 *   node dist/infra/teacher/llama-main.js [--model PATH] [--port 8401] [--host 127.0.0.1] [--name SERVED_NAME]
 *        [--context-size 2048] [--threads N] [--runtime llama.cpp|node-llama-cpp] [--slots 4]
 *        [--max-in-flight 1] [--parallel-sequences 1] [--gpu false|auto|cuda|vulkan|metal] [--api-key-env ENV_VAR]
 *
 * Runtime: llama.cpp's own server from the `xllamacpp` wheel (llamacpp-teacher.ts; `--slots` choices decoded
 * together by continuous batching, `--threads` for the whole server, default every core) unless `--gpu` asks for a
 * GPU: the PyPI wheels of xllamacpp are CPU builds, while node-llama-cpp ships prebuilt CUDA/Vulkan/Metal binaries,
 * so GPU offload without vLLM stays on node-llama-cpp (llama-server.ts; `--max-in-flight`, `--parallel-sequences`).
 *
 * --model defaults to the SmolLM2-135M-Instruct GGUF that `bash infra/models/fetch-smollm2.sh` puts in
 * ${DISTILLERY_CACHE:-~/.cache/distillery}/models/. Prints exactly one JSON line to stdout when ready:
 * {"event":"listening","url":"http://127.0.0.1:8401/v1","port":8401,"model":"SmolLM2-135M-Instruct.Q4_1",...}
 * llama.cpp's own log lines go to stderr. Shuts down gracefully on SIGTERM / SIGINT (a JSON note goes to stderr).
 */
import { LlamaGpu, LlamaTeacherOptions, startLlamaTeacher, type LlamaTeacher } from './llama-server';
import { startLlamaCppTeacher } from './llamacpp-teacher';

export type LlamaRuntime = 'llama.cpp' | 'node-llama-cpp';

export interface LlamaMainOptions extends LlamaTeacherOptions {
  runtime?: LlamaRuntime;
  /** Slots of llama.cpp's server (runtime llama.cpp). */
  slots?: number;
}

/** llama.cpp's server on CPU; node-llama-cpp where a GPU is asked for (its prebuilt binaries carry the GPU backends). */
export function chooseLlamaRuntime(opts: LlamaMainOptions): LlamaRuntime {
  return opts.runtime ?? (opts.gpu !== undefined && opts.gpu !== false ? 'node-llama-cpp' : 'llama.cpp');
}

export function startLlamaRuntime(opts: LlamaMainOptions): Promise<LlamaTeacher> {
  const { runtime: _runtime, slots, ...rest } = opts;
  if (chooseLlamaRuntime(opts) === 'node-llama-cpp') return startLlamaTeacher(rest);
  const { gpu: _gpu, maxInFlight: _m, parallelSequences: _p, ...common } = rest;
  return startLlamaCppTeacher({ ...common, ...(slots !== undefined ? { slots } : {}) });
}

export const DEFAULT_LLAMA_TEACHER_PORT = 8401;

const USAGE =
  'usage: llama-main.js [--model PATH] [--port 8401] [--host 127.0.0.1] [--name SERVED_NAME] [--context-size 2048] ' +
  '[--threads N] [--runtime llama.cpp|node-llama-cpp] [--slots 4] [--max-in-flight 1] [--parallel-sequences 1] [--gpu false|auto|cuda|vulkan|metal] [--api-key-env ENV_VAR]';

export function parseLlamaTeacherArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): LlamaMainOptions {
  const opts: LlamaMainOptions = { port: DEFAULT_LLAMA_TEACHER_PORT };
  const num = (flag: string, v: string | undefined, min: number): number => {
    const x = Number(v);
    if (v === undefined || v === '' || !Number.isInteger(x) || x < min)
      throw new Error(`${flag} expects an integer >= ${min}, got ${v}`);
    return x;
  };
  const str = (flag: string, v: string | undefined): string => {
    if (v === undefined || v === '') throw new Error(`${flag} expects a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--model':
        opts.modelPath = str(flag, value());
        break;
      case '--port':
        opts.port = num(flag, value(), 0);
        break;
      case '--host':
        opts.host = str(flag, value());
        break;
      case '--name':
        opts.model = str(flag, value());
        break;
      case '--context-size':
        opts.contextSize = num(flag, value(), 64);
        break;
      case '--threads':
        opts.threads = num(flag, value(), 1);
        break;
      case '--slots':
        opts.slots = num(flag, value(), 1);
        break;
      case '--runtime': {
        const r = str(flag, value());
        if (r !== 'llama.cpp' && r !== 'node-llama-cpp')
          throw new Error(`--runtime expects llama.cpp or node-llama-cpp, got ${r}`);
        opts.runtime = r;
        break;
      }
      case '--max-in-flight':
        opts.maxInFlight = num(flag, value(), 1);
        break;
      case '--parallel-sequences':
        opts.parallelSequences = num(flag, value(), 1);
        break;
      case '--gpu': {
        const g = str(flag, value());
        if (g === 'false' || g === 'cpu') opts.gpu = false;
        else if (g === 'auto' || g === 'cuda' || g === 'vulkan' || g === 'metal') opts.gpu = g as LlamaGpu;
        else throw new Error(`--gpu expects false, auto, cuda, vulkan or metal, got ${g}`);
        break;
      }
      case '--api-key-env': {
        const name = value();
        if (!name) throw new Error('--api-key-env expects an environment variable name');
        const key = env[name];
        if (!key) throw new Error(`--api-key-env: environment variable ${name} is not set or empty`);
        opts.apiKey = key;
        break;
      }
      case '--help':
      case '-h':
        throw new Error(USAGE);
      default:
        throw new Error(`unknown argument: ${arg}\n${USAGE}`);
    }
  }
  return opts;
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  let opts: LlamaMainOptions;
  try {
    opts = parseLlamaTeacherArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  const server = await startLlamaRuntime(opts);
  process.stdout.write(
    `${JSON.stringify({
      event: 'listening',
      url: server.url,
      port: server.port,
      model: server.model,
      pid: process.pid,
      runtime: chooseLlamaRuntime(opts),
      ...server.info,
    })}\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server
      .close()
      .then(() => {
        process.stderr.write(`${JSON.stringify({ event: 'stopped', signal, stats: server.stats() })}\n`);
        process.exit(0);
      })
      .catch((err: unknown) => {
        process.stderr.write(`error while closing: ${String(err)}\n`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
