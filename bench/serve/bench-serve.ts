/**
 * bench:serve — the local GGUF server as the teacher and the evaluation use it (llamacpp-teacher.ts: the OpenAI front
 * over llama.cpp's server from `xllamacpp`) against llama.cpp's server from the same wheel run directly, same GGUF,
 * same slots and threads, same prompts, seeds, n, max_tokens and sampling. The last line is exactly
 *
 *   ratio=<median over all rounds of ours tok/s ÷ direct tok/s>
 *
 * A = ours: `concurrency` chat requests at once, each with `n` choices, through the front.
 * B = direct: the same requests straight to llama.cpp's server (its native `n`).
 * Generated tokens are counted the same way on both sides, after the clock stops: every choice's text through the
 * server's own tokenizer (/tokenize). Not from `usage`: llama.cpp's native n > 1 reports one choice's tokens only
 * (the per-round line prints both usages so the under-count shows).
 * Each concurrency (1 and BENCH_CONCURRENCY) runs BENCH_ROUNDS rounds in ABBA order after one untimed warm-up per
 * side; raw rounds are printed as they end. Exit 1 when the median ratio is under BENCH_MIN_RATIO.
 *
 * Knobs (environment): BENCH_ROUNDS (4), BENCH_N (4), BENCH_MAX_TOKENS (64), BENCH_CONCURRENCY (4),
 * BENCH_THREADS (every core), BENCH_SLOTS (n × concurrency), BENCH_MIN_RATIO (0.9), BENCH_GGUF (the SmolLM2 GGUF).
 */
import * as os from 'node:os';
import { existsSync } from 'node:fs';
import { startLlamaCppProcess } from '../../infra/teacher/llamacpp-process';
import { startLlamaCppTeacher } from '../../infra/teacher/llamacpp-teacher';
import { defaultLlamaModelPath, SMOLLM2_FETCH_SCRIPT } from '../../infra/teacher/llama-server';
import { envInt, envNumber, median, runAbba, type Round } from '../rounds';

const ROUNDS = envInt('BENCH_ROUNDS', 4);
const N = envInt('BENCH_N', 4);
const MAX_TOKENS = envInt('BENCH_MAX_TOKENS', 64);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 4);
const THREADS = envInt('BENCH_THREADS', Math.max(1, os.availableParallelism()));
const SLOTS = envInt('BENCH_SLOTS', N * CONCURRENCY);
const MIN_RATIO = envNumber('BENCH_MIN_RATIO', 0.9);
const GGUF = process.env.BENCH_GGUF || defaultLlamaModelPath();
const CONTEXT = 512;
const SERVED = 'bench-serve';

const PROMPTS = [
  'Write one sentence about the sea.',
  'What is 17 times 23? Think step by step.',
  'Name three colours and one thing of each colour.',
  'Explain in two sentences why the sky is blue.',
  'Give a short recipe for tea.',
  'List four prime numbers and say why they are prime.',
  'Describe a cat to someone who has never seen one.',
  'What is the capital of France, and what river runs through it?',
];

interface SideResult {
  seconds: number;
  tokens: number;
  usageCompletion: number;
  tokPerSec: number;
}

type Body = Record<string, unknown>;

function requestBody(round: number, i: number, model: string): Body {
  return {
    model,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: PROMPTS[(round * 7 + i) % PROMPTS.length] },
    ],
    n: N,
    temperature: 1,
    top_p: 1,
    max_tokens: MAX_TOKENS,
    seed: 1000 * round + i,
  };
}

async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function main(): Promise<void> {
  if (!existsSync(GGUF))
    throw new Error(`GGUF not found at ${GGUF}: run \`npm run setup\` (or bash ${SMOLLM2_FETCH_SCRIPT})`);
  console.log(
    `bench:serve gguf=${GGUF} n=${N} max_tokens=${MAX_TOKENS} concurrency=1,${CONCURRENCY} rounds=${ROUNDS} threads=${THREADS} slots=${SLOTS} cores=${os.availableParallelism()} load=${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(',')}`,
  );
  const ours = await startLlamaCppTeacher({
    modelPath: GGUF,
    model: SERVED,
    contextSize: CONTEXT,
    slots: SLOTS,
    threads: THREADS,
  });
  const direct = await startLlamaCppProcess({
    modelPath: GGUF,
    alias: SERVED,
    ctxPerSlot: CONTEXT,
    slots: SLOTS,
    threads: THREADS,
  });
  try {
    const countTokens = async (text: string) =>
      ((await postJson(`${direct.url}/tokenize`, { content: text, add_special: false })).tokens as unknown[]).length;
    // Direct gets the sampling the front sends upstream (no top-k / min-p / typical-p, no repeat penalty): the same work.
    const directExtra = { top_k: 0, min_p: 0, typical_p: 1, repeat_penalty: 1, cache_prompt: true };
    const side =
      (which: 'A' | 'B', concurrency: number) =>
      async (round: number): Promise<SideResult> => {
        const t0 = process.hrtime.bigint();
        const replies = await Promise.all(
          Array.from({ length: concurrency }, (_, i) =>
            which === 'A'
              ? postJson(`${ours.url}/chat/completions`, requestBody(round, i, SERVED))
              : postJson(`${direct.url}/v1/chat/completions`, { ...requestBody(round, i, SERVED), ...directExtra }),
          ),
        );
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        let tokens = 0;
        let usageCompletion = 0;
        for (const r of replies) {
          const choices = r.choices as Array<{ message: { content: string } }>;
          if (choices.length !== N) throw new Error(`side ${which} returned ${choices.length} choices, asked for ${N}`);
          for (const c of choices) tokens += await countTokens(c.message.content ?? '');
          usageCompletion += (r.usage as { completion_tokens: number }).completion_tokens;
        }
        return { seconds, tokens, usageCompletion, tokPerSec: tokens / seconds };
      };
    const ratios: number[] = [];
    for (const concurrency of [1, CONCURRENCY]) {
      // Warm-up, untimed: first requests pay for thread pools and graph setup.
      await side('A', concurrency)(0);
      await side('B', concurrency)(0);
      const rounds: Round<SideResult>[] = await runAbba(
        ROUNDS,
        { A: side('A', concurrency), B: side('B', concurrency) },
        (r) => {
          console.log(
            `c=${concurrency} round=${r.round} order=${r.order.join('')} ours=${r.a.tokPerSec.toFixed(1)} tok/s (${r.a.tokens} tok ${r.a.seconds.toFixed(2)} s usage=${r.a.usageCompletion}) ` +
              `direct=${r.b.tokPerSec.toFixed(1)} tok/s (${r.b.tokens} tok ${r.b.seconds.toFixed(2)} s usage=${r.b.usageCompletion}) ratio=${(r.a.tokPerSec / r.b.tokPerSec).toFixed(3)}`,
          );
        },
      );
      const rs = rounds.map((r) => r.a.tokPerSec / r.b.tokPerSec);
      ratios.push(...rs);
      console.log(
        `c=${concurrency} median ours=${median(rounds.map((r) => r.a.tokPerSec)).toFixed(1)} tok/s direct=${median(rounds.map((r) => r.b.tokPerSec)).toFixed(1)} tok/s ratio=${median(rs).toFixed(3)}`,
      );
    }
    const ratio = median(ratios);
    console.log(`ratio=${ratio.toFixed(3)}`);
    if (ratio < MIN_RATIO) process.exitCode = 1;
  } finally {
    await ours.close();
    await direct.close();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
