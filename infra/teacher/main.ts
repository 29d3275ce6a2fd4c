/**
 * CLI: run the procedural teacher as an OpenAI-compatible server.
 *
 *   node dist/infra/teacher/main.js [--port 8400] [--host 127.0.0.1] [--latency-ms 0] [--max-in-flight N]
 *        [--model NAME] [--api-key-env ENV_VAR] [--base-error-rate 0.08] [--no-style-variation]
 *
 * Prints exactly one JSON line to stdout when ready: {"event":"listening","url":"http://127.0.0.1:8400/v1",...}
 * Shuts down gracefully on SIGTERM / SIGINT (a shutdown note goes to stderr).
 */
import { TeacherServerOptions, startTeacherServer } from './server';

export function parseTeacherArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): TeacherServerOptions {
  const opts: TeacherServerOptions = { port: 8400 };
  const num = (flag: string, v: string | undefined): number => {
    const x = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(x)) throw new Error(`${flag} expects a number, got ${v}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--port':
        opts.port = num(flag, value());
        break;
      case '--host':
        opts.host = value();
        break;
      case '--latency-ms':
        opts.latencyMs = num(flag, value());
        break;
      case '--max-in-flight':
        opts.maxInFlight = num(flag, value());
        break;
      case '--model':
        opts.model = value();
        break;
      case '--base-error-rate':
        opts.baseErrorRate = num(flag, value());
        break;
      case '--no-style-variation':
        opts.styleVariation = false;
        break;
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
        throw new Error(
          'usage: main.js [--port 8400] [--host 127.0.0.1] [--latency-ms 0] [--max-in-flight N] [--model NAME] ' +
            '[--api-key-env ENV_VAR] [--base-error-rate 0.08] [--no-style-variation]',
        );
      default:
        throw new Error(`unknown argument: ${arg}`);
    }
  }
  return opts;
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  let opts: TeacherServerOptions;
  try {
    opts = parseTeacherArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  const server = await startTeacherServer(opts);
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', url: server.url, port: server.port, model: server.model, pid: process.pid })}\n`,
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
