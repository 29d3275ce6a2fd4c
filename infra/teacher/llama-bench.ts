/**
 * Throughput of the local LLM teacher, end to end through its HTTP API (what the generate stage sees).
 *
 *   node dist/infra/teacher/llama-bench.js [--model PATH] [--threads N] [--parallel-sequences 1] [--ns 1,4]
 *        [--max-tokens 128] [--reps 3]
 *
 * Starts the server in this process, sends one warm-up request, then for each n sends `reps` chat completions
 * (R1 sampling: temperature 0.6, top_p 0.95; a fresh seed per rep) and prints one JSON line per n with the completion
 * tokens per wall second, and a summary line. Keep it short on a shared machine.
 */
import { startLlamaTeacher } from './llama-server';

interface BenchArgs {
  modelPath?: string;
  threads?: number;
  parallelSequences?: number;
  ns: number[];
  maxTokens: number;
  reps: number;
}

function parseArgs(argv: string[]): BenchArgs {
  const a: BenchArgs = { ns: [1, 4], maxTokens: 128, reps: 3 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes('=')
      ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)]
      : [argv[i], undefined];
    const v = () => {
      const x = inline !== undefined ? inline : argv[++i];
      if (x === undefined) throw new Error(`${flag} expects a value`);
      return x;
    };
    if (flag === '--model') a.modelPath = v();
    else if (flag === '--threads') a.threads = Number(v());
    else if (flag === '--parallel-sequences') a.parallelSequences = Number(v());
    else if (flag === '--ns') a.ns = v().split(',').map(Number);
    else if (flag === '--max-tokens') a.maxTokens = Number(v());
    else if (flag === '--reps') a.reps = Number(v());
    else throw new Error(`unknown argument: ${argv[i]}`);
  }
  return a;
}

const PROMPT =
  'A shop sells pencils at 3 for 45 cents. Maria buys 12 pencils and pays with a 10 dollar bill. ' +
  'How much change does she get? Think step by step, then give the final answer.';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const teacher = await startLlamaTeacher({
    modelPath: args.modelPath,
    threads: args.threads,
    parallelSequences: args.parallelSequences,
  });
  const ask = async (n: number, seed: number) => {
    const t0 = process.hrtime.bigint();
    const res = await fetch(`${teacher.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: teacher.model,
        messages: [{ role: 'user', content: PROMPT }],
        n,
        temperature: 0.6,
        top_p: 0.95,
        max_tokens: args.maxTokens,
        seed,
      }),
    });
    const body = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, usage: body.usage };
  };
  try {
    await ask(1, 0); // warm-up
    const results: Record<string, number> = {};
    for (const n of args.ns) {
      let tokens = 0;
      let seconds = 0;
      let promptTokens = 0;
      for (let r = 0; r < args.reps; r++) {
        const out = await ask(n, 1000 + r);
        tokens += out.usage.completion_tokens;
        seconds += out.seconds;
        promptTokens = out.usage.prompt_tokens;
      }
      const tps = tokens / seconds;
      results[`n${n}`] = Number(tps.toFixed(1));
      process.stdout.write(
        `${JSON.stringify({ event: 'bench', n, reps: args.reps, promptTokens, completionTokens: tokens, seconds: Number(seconds.toFixed(2)), tokensPerSecond: Number(tps.toFixed(1)) })}\n`,
      );
    }
    process.stdout.write(
      `${JSON.stringify({ event: 'summary', model: teacher.model, ...teacher.info, tokensPerSecond: results })}\n`,
    );
  } finally {
    await teacher.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
