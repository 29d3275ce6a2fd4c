/**
 * The latency-model endpoint: an honest test double of an OpenAI-compatible inference server, for bench:generate.
 * It does no inference. It answers POST /v1/chat/completions (non-streaming) after the time a real server would
 * take for the same reply, by a model of such a server:
 *
 *   each choice's length L_i (tokens) ~ lognormal(median, sigma), capped at max_tokens (finish_reason "length");
 *   latency = (TTFT + msPerToken × max_i L_i) × noise,  noise ~ lognormal(0, noiseSigma) with mean 1
 *   (the n choices of a request are decoded side by side, so the longest one decides).
 *
 * Everything is drawn from a PRNG seeded by the request itself (the last user message, the seed, n, max_tokens)
 * and the endpoint's --seed: the same request gets the same lengths and the same latency, whichever client sends it
 * and in whichever order, so two clients sending the same requests get the same work from it.
 * A choice's content is a <think> block of filler text of the drawn length and the sum of the two numbers in the
 * prompt boxed ("Compute 47+85." → 132), so the stages after generation see well-formed samples.
 * Usage: prompt_tokens = ceil(prompt chars / 4), completion_tokens = Σ ceil(content chars / 4).
 *
 *   node dist/bench/generate/latency-model-endpoint.js [--port 0] [--ttft-ms 20] [--ms-per-token 8]
 *        [--noise-sigma 0.25] [--length-median 150] [--length-sigma 0.8] [--seed 1]
 *
 * Prints one JSON line when ready: {"event":"listening","url":"http://127.0.0.1:PORT/v1",...}; stops on SIGTERM.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LatencyModel {
  /** Time to first token (ms). */
  ttftMs: number;
  /** Time per output token of the longest choice (ms). */
  msPerToken: number;
  /** Sigma of the lognormal factor (mean 1) on the whole latency; 0 = none. */
  noiseSigma: number;
  /** Median length of a choice in tokens. */
  lengthMedian: number;
  /** Sigma of log(length): the tail (0.8: the 99th percentile is about 6.4 × the median). */
  lengthSigma: number;
  /** Salt of the PRNG. */
  seed: number;
}

export const DEFAULT_LATENCY_MODEL: LatencyModel = {
  ttftMs: 20,
  msPerToken: 8,
  noiseSigma: 0.25,
  lengthMedian: 150,
  lengthSigma: 0.8,
  seed: 1,
};

export interface RequestPlan {
  /** Tokens per choice (after the max_tokens cap). */
  lengths: number[];
  truncated: boolean[];
  latencyMs: number;
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

function normal(rnd: () => number): number {
  const u = Math.max(rnd(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
}

/** The lengths and latency of one request: a pure function of the model and the request. */
export function planRequest(
  model: LatencyModel,
  req: { prompt: string; seed: number; n: number; maxTokens: number },
): RequestPlan {
  const rnd = prng(`${model.seed}\u0000${req.seed}\u0000${req.n}\u0000${req.maxTokens}\u0000${req.prompt}`);
  const lengths: number[] = [];
  const truncated: boolean[] = [];
  for (let i = 0; i < req.n; i++) {
    const drawn = Math.max(1, Math.round(model.lengthMedian * Math.exp(model.lengthSigma * normal(rnd))));
    lengths.push(Math.min(drawn, req.maxTokens));
    truncated.push(drawn > req.maxTokens);
  }
  const noise =
    model.noiseSigma > 0 ? Math.exp(model.noiseSigma * normal(rnd) - (model.noiseSigma * model.noiseSigma) / 2) : 1;
  const latencyMs = (model.ttftMs + model.msPerToken * Math.max(0, ...lengths)) * noise;
  return { lengths, truncated, latencyMs };
}

// Filler for the reasoning: cheap to cut to any length (one slice of a fixed text).
const WORDS =
  'so we add the units first then carry one into the tens and check the sum again by subtracting back wait let me verify each digit'.split(
    ' ',
  );
const FILLER = (() => {
  const rnd = prng('filler');
  let s = '';
  while (s.length < 1 << 16) s += WORDS[Math.floor(rnd() * WORDS.length)] + ' ';
  return s;
})();

function content(prompt: string, tokens: number, rnd: () => number): string {
  const m = /(-?\d+)\s*([+-])\s*(-?\d+)/.exec(prompt);
  const answer = m ? (m[2] === '+' ? Number(m[1]) + Number(m[3]) : Number(m[1]) - Number(m[3])) : 0;
  const tail = `\n</think>\nThe answer is $\\boxed{${answer}}$.`;
  const head = '<think>\n';
  const chars = Math.min(FILLER.length - 1, Math.max(0, tokens * 4 - head.length - tail.length));
  const at = Math.floor(rnd() * (FILLER.length - chars - 1));
  return head + FILLER.slice(at, at + chars) + tail;
}

export interface LatencyModelEndpoint {
  url: string;
  close(): Promise<void>;
  stats(): { requests: number; choices: number; completionTokens: number };
}

function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: unknown; content?: unknown };
    if (m?.role === 'user') return typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? '');
  }
  return '';
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startLatencyModelEndpoint(
  model: LatencyModel,
  port = 0,
  host = '127.0.0.1',
): Promise<LatencyModelEndpoint> {
  const counters = { requests: 0, choices: 0, completionTokens: 0 };
  let nextId = 0;
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
    if (req.method === 'GET' && url === '/health') return send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && url === '/v1/models')
      return send(res, 200, { object: 'list', data: [{ id: 'latency-model', object: 'model', owned_by: 'bench' }] });
    if (req.method !== 'POST' || url !== '/v1/chat/completions')
      return send(res, 404, { error: { message: `no route ${req.method} ${url}`, type: 'invalid_request_error' } });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: {
        model?: unknown;
        messages?: unknown;
        n?: unknown;
        max_tokens?: unknown;
        max_completion_tokens?: unknown;
        seed?: unknown;
        stream?: unknown;
      };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } });
      }
      if (body.stream)
        return send(res, 400, {
          error: { message: 'the latency-model endpoint does not stream', type: 'invalid_request_error' },
        });
      const prompt = lastUserText(body.messages);
      const n = Number.isInteger(body.n) ? Number(body.n) : 1;
      const maxTokens = Number(body.max_tokens ?? body.max_completion_tokens ?? 4096);
      const seed = Number.isFinite(Number(body.seed)) ? Number(body.seed) : 0;
      if (n < 1 || n > 128 || !Number.isInteger(maxTokens) || maxTokens < 1)
        return send(res, 400, {
          error: { message: 'n must be 1..128 and max_tokens a positive integer', type: 'invalid_request_error' },
        });
      const plan = planRequest(model, { prompt, seed, n, maxTokens });
      const rnd = prng(`${model.seed}\u0000content\u0000${seed}\u0000${prompt}`);
      const texts = plan.lengths.map((l) => content(prompt, l, rnd));
      const completionTokens = texts.reduce((s, t) => s + Math.ceil(t.length / 4), 0);
      const reply = () => {
        counters.requests++;
        counters.choices += n;
        counters.completionTokens += completionTokens;
        send(res, 200, {
          id: `chatcmpl-latency-${nextId++}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: typeof body.model === 'string' ? body.model : 'latency-model',
          system_fingerprint: 'fp_latency_model',
          choices: texts.map((t, index) => ({
            index,
            message: { role: 'assistant', content: t, refusal: null },
            logprobs: null,
            finish_reason: plan.truncated[index] ? 'length' : 'stop',
          })),
          usage: {
            prompt_tokens: Math.ceil(prompt.length / 4),
            completion_tokens: completionTokens,
            total_tokens: Math.ceil(prompt.length / 4) + completionTokens,
          },
        });
      };
      if (plan.latencyMs > 0) setTimeout(reply, plan.latencyMs);
      else reply();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${bound}/v1`,
    stats: () => ({ ...counters }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function parseArgs(argv: string[]): { model: LatencyModel; port: number } {
  const model = { ...DEFAULT_LATENCY_MODEL };
  let port = 0;
  const flags: Record<string, (v: number) => void> = {
    '--port': (v) => (port = v),
    '--ttft-ms': (v) => (model.ttftMs = v),
    '--ms-per-token': (v) => (model.msPerToken = v),
    '--noise-sigma': (v) => (model.noiseSigma = v),
    '--length-median': (v) => (model.lengthMedian = v),
    '--length-sigma': (v) => (model.lengthSigma = v),
    '--seed': (v) => (model.seed = v),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const set = flags[argv[i]!];
    const v = Number(argv[i + 1]);
    if (!set) throw new Error(`unknown argument ${argv[i]} (known: ${Object.keys(flags).join(' ')})`);
    if (argv[i + 1] === undefined || !Number.isFinite(v) || v < 0)
      throw new Error(`${argv[i]} expects a non-negative number, got ${argv[i + 1]}`);
    set(v);
  }
  if (model.lengthMedian < 1) throw new Error('--length-median must be at least 1');
  return { model, port };
}

if (require.main === module) {
  let opts: ReturnType<typeof parseArgs>;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  startLatencyModelEndpoint(opts.model, opts.port)
    .then((ep) => {
      process.stdout.write(
        `${JSON.stringify({ event: 'listening', url: ep.url, model: opts.model, pid: process.pid })}\n`,
      );
      const stop = () => void ep.close().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    })
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
}
