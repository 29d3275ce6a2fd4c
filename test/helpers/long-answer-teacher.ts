import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An OpenAI-compatible chat endpoint that answers with long deterministic content: an honest test double for a
 * reasoning teacher whose chains of thought run to megabytes. Each choice is at least `bytesPerChoice` bytes of UTF-8
 * fixed by the prompt, the seed and the choice index, with multi-byte characters so that write and read chunk
 * boundaries fall inside them.
 *
 * Requests may be staged: a base URL per lane (`laneURL('a')` → …/a/v1) lets a test hold one caller's requests at a
 * gate while another's go through, and `delayFor` sets each request's latency from whether the same prompt and seed
 * were asked before (a second attempt redoing the first one's work).
 */
export interface TeacherRequestLog {
  lane: string;
  prompt: string;
  seed: number;
  n: number;
  /** The same prompt and seed were asked before (by any lane). */
  repeat: boolean;
  receivedAt: number;
  /** When the whole answer was handed to the socket. */
  answeredAt?: number;
  /** When the connection closed, answered or not (a caller that gave up). */
  closedAt?: number;
}

export interface LongAnswerTeacher {
  /** Base URL of the default lane ('-'). */
  url: string;
  laneURL(lane: string): string;
  /** Requests of `lane` wait here from now on (those already past the gate are answered). */
  hold(lane: string): void;
  release(lane: string): void;
  requests(): TeacherRequestLog[];
  /** The content the endpoint answers for this prompt, seed and choice. */
  contentFor(prompt: string, seed: number, index: number): string;
  /**
   * Makes the answer to a request ahead of time. Megabytes of text take a while to make on a busy machine, and the
   * endpoint runs in the test's process: a test that also forwards a worker's traffic there warms the answers first.
   */
  warm(model: string, prompt: string, seed: number, n: number): void;
  close(): Promise<void>;
}

const WORDS = [
  'so',
  'the',
  'carry',
  'is',
  'one',
  'step',
  'therefore',
  'x²',
  'Σ',
  'café',
  '→',
  'naïve',
  '∴',
  '🙂',
  'check',
  'again',
  'wait',
  '≈',
  'añadir',
  '数',
];
const WORD_BYTES = WORDS.map((w) => Buffer.byteLength(w) + 1);

/** A small seeded generator (mulberry32): the same key always gives the same text. */
function rng(key: string): () => number {
  let a = createHash('sha256').update(key).digest().readUInt32BE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function longContent(prompt: string, seed: number, index: number, bytes: number): string {
  const next = rng(`${prompt}\u0000${seed}\u0000${index}`);
  const parts: string[] = ['<think>'];
  let size = 7;
  while (size < bytes) {
    const k = Math.floor(next() * WORDS.length);
    parts.push(WORDS[k]!);
    size += WORD_BYTES[k]!;
  }
  parts.push(`</think> The answer is ${Math.floor(next() * 1000)}.`);
  return parts.join(' ');
}

class Gate {
  private open = true;
  private waiters: (() => void)[] = [];
  close(): void {
    this.open = false;
  }
  release(): void {
    this.open = true;
    for (const w of this.waiters.splice(0)) w();
  }
  pass(): Promise<void> {
    return this.open ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }
}

export async function startLongAnswerTeacher(opts: {
  bytesPerChoice: number;
  delayFor?: (r: TeacherRequestLog) => number;
}): Promise<LongAnswerTeacher> {
  const log: TeacherRequestLog[] = [];
  const asked = new Set<string>();
  const gates = new Map<string, Gate>();
  const gate = (lane: string) => gates.get(lane) ?? gates.set(lane, new Gate()).get(lane)!;
  // answers are deterministic: made once (megabytes of text take a while on a busy machine) and kept
  const answers = new Map<string, Buffer>();
  const answerFor = (model: string, prompt: string, seed: number, n: number): Buffer => {
    const key = JSON.stringify([model, prompt, seed, n]);
    let text = answers.get(key);
    if (!text) {
      const choices = Array.from({ length: n }, (_, index) => ({
        index,
        message: { role: 'assistant', content: longContent(prompt, seed, index, opts.bytesPerChoice) },
        finish_reason: 'stop',
        logprobs: null,
      }));
      const completion = choices.reduce((t, c) => t + Math.ceil(c.message.content.length / 4), 0);
      text = Buffer.from(
        JSON.stringify({
          id: `chatcmpl-${seed}`,
          object: 'chat.completion',
          created: 0,
          model,
          choices,
          usage: {
            prompt_tokens: Math.ceil(prompt.length / 4),
            completion_tokens: completion,
            total_tokens: Math.ceil(prompt.length / 4) + completion,
          },
        }),
      );
      answers.set(key, text);
    }
    return text;
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const m = /^\/(?:([^/]+)\/)?v1\/chat\/completions$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !m) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"not found","type":"invalid_request_error"}}');
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        model: string;
        messages: { content: string }[];
        n?: number;
        seed?: number;
      };
      const prompt = body.messages[body.messages.length - 1]!.content;
      const seed = body.seed ?? 0;
      const key = `${prompt}\u0000${seed}`;
      const entry: TeacherRequestLog = {
        lane: m[1] ?? '-',
        prompt,
        seed,
        n: body.n ?? 1,
        repeat: asked.has(key),
        receivedAt: Date.now(),
      };
      asked.add(key);
      log.push(entry);
      res.on('close', () => (entry.closedAt ??= Date.now()));
      void gate(entry.lane)
        .pass()
        .then(() => new Promise((r) => setTimeout(r, opts.delayFor?.(entry) ?? 0)))
        .then(() => {
          if (res.destroyed) return;
          const text = answerFor(body.model, prompt, seed, entry.n);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(text, () => (entry.answeredAt = Date.now()));
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/v1`,
    laneURL: (lane) => `${base}/${lane}/v1`,
    hold: (lane) => gate(lane).close(),
    release: (lane) => gate(lane).release(),
    requests: () => log,
    contentFor: (prompt, seed, index) => longContent(prompt, seed, index, opts.bytesPerChoice),
    warm: (model, prompt, seed, n) => void answerFor(model, prompt, seed, n),
    close: async () => {
      for (const g of gates.values()) g.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
