/**
 * The solve-rate endpoint: an honest test double of an OpenAI-compatible reasoning teacher, for bench:sampling and
 * the adaptive-sampling tests. It does no inference. Each prompt has a solve rate (by default drawn once per prompt
 * from Beta(alpha, beta), seeded by the prompt text: a realistic spread, most prompts easy or hopeless, some between);
 * each choice is correct with that probability and then boxes the sum of the two numbers in the prompt
 * ("Compute 47+85." → 132), else a wrong sum. Choice lengths are long-tailed: lognormal(median, sigma) tokens,
 * wrong answers `wrongLengthFactor` times longer (a model that cannot solve a problem rambles), capped at max_tokens.
 * Everything is drawn from a PRNG seeded by (prompt, seed, choice index), so one request always gets one answer.
 * Every request is logged (prompt, seed, n, answered or refused), so a test counts repeated requests from the log.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SolveRateModel {
  alpha: number;
  beta: number;
  lengthMedian: number;
  lengthSigma: number;
  wrongLengthFactor: number;
  /** Salt of the PRNG. */
  seed: number;
  /**
   * Time before each answer (ms): keeps requests in flight long enough for a chaos test to kill a client among them;
   * a function of the request gives each its own delay (answers then arrive out of order).
   */
  delayMs?: number | ((prompt: string, seed: number | null) => number);
  /** Overrides the Beta draw for a prompt (tests pin prompts to always/never solved). */
  solveRate?: (prompt: string) => number | undefined;
}

export const DEFAULT_SOLVE_RATE_MODEL: SolveRateModel = {
  alpha: 0.6,
  beta: 0.6,
  lengthMedian: 400,
  lengthSigma: 0.8,
  wrongLengthFactor: 1.5,
  seed: 1,
};

export interface LoggedRequest {
  prompt: string;
  seed: number | null;
  n: number;
  answered: boolean;
  completionTokens: number;
}

export interface SolveRateEndpoint {
  url: string;
  log: LoggedRequest[];
  /** Answers this many more requests, then refuses every one with 503 (undefined: no limit). */
  failAfter: number | undefined;
  solveRateOf(prompt: string): number;
  close(): Promise<void>;
}

function prng(key: string): () => number {
  const h = createHash('sha256').update(key).digest();
  let s = h.readUInt32LE(0) | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Marsaglia–Tsang; shape < 1 through the boost Gamma(a) = Gamma(a + 1) · U^(1/a). */
function gamma(shape: number, rand: () => number): number {
  if (shape < 1) return gamma(shape + 1, rand) * Math.pow(1 - rand(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(rand);
    const v = Math.pow(1 + c * x, 3);
    if (v <= 0) continue;
    const u = 1 - rand();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function betaDraw(alpha: number, beta: number, rand: () => number): number {
  const x = gamma(alpha, rand);
  return x / (x + gamma(beta, rand));
}

function sumOf(prompt: string): number {
  const m = /(-?\d+)\s*\+\s*(-?\d+)/.exec(prompt);
  return m ? Number(m[1]) + Number(m[2]) : 0;
}

export async function startSolveRateEndpoint(
  model: Partial<SolveRateModel> = {},
  port = 0,
): Promise<SolveRateEndpoint> {
  const m = { ...DEFAULT_SOLVE_RATE_MODEL, ...model };
  const log: LoggedRequest[] = [];
  const solveRateOf = (prompt: string) =>
    m.solveRate?.(prompt) ?? betaDraw(m.alpha, m.beta, prng(`${m.seed}:rate:${prompt}`));
  const endpoint: SolveRateEndpoint = { url: '', log, failAfter: undefined, solveRateOf, close: async () => undefined };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        messages: { role: string; content: string }[];
        n?: number;
        seed?: number;
        max_tokens?: number;
        model?: string;
      };
      const prompt = [...body.messages].reverse().find((x) => x.role === 'user')?.content ?? '';
      const n = body.n ?? 1;
      const seed = body.seed ?? null;
      if (endpoint.failAfter !== undefined && endpoint.failAfter <= 0) {
        log.push({ prompt, seed, n, answered: false, completionTokens: 0 });
        res
          .writeHead(503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: 'refused by the test double (failAfter)' } }));
        return;
      }
      if (endpoint.failAfter !== undefined) endpoint.failAfter -= 1;
      const rate = solveRateOf(prompt);
      const gold = sumOf(prompt);
      const maxTokens = body.max_tokens ?? 4096;
      let completionTokens = 0;
      const choices = Array.from({ length: n }, (_, index) => {
        const rand = prng(`${m.seed}:${prompt}:${seed}:${index}`);
        const correct = rand() < rate;
        const drawn = Math.round(
          Math.exp(Math.log(m.lengthMedian) + m.lengthSigma * normal(rand)) * (correct ? 1 : m.wrongLengthFactor),
        );
        const tokens = Math.max(8, Math.min(maxTokens, drawn));
        const truncated = drawn >= maxTokens;
        completionTokens += tokens;
        const answer = correct ? gold : gold + 1 + Math.floor(rand() * 9);
        const content = truncated
          ? `<think>${'hmm '.repeat(8)}`
          : `<think>${'step '.repeat(4)}</think>The answer is \\boxed{${answer}}.`;
        return { index, message: { role: 'assistant', content }, finish_reason: truncated ? 'length' : 'stop' };
      });
      const send = () => {
        log.push({ prompt, seed, n, answered: true, completionTokens });
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            id: `sim-${log.length}`,
            object: 'chat.completion',
            created: 0,
            model: body.model ?? 'solve-rate-sim',
            choices,
            usage: {
              prompt_tokens: Math.ceil(prompt.length / 4) * n,
              completion_tokens: completionTokens,
              total_tokens: Math.ceil(prompt.length / 4) * n + completionTokens,
            },
          }),
        );
      };
      const delay = typeof m.delayMs === 'function' ? m.delayMs(prompt, seed) : m.delayMs;
      if (delay) setTimeout(send, delay);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  endpoint.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  endpoint.close = () => new Promise((resolve) => server.close(() => resolve()));
  return endpoint;
}
