import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A test double of a teacher that generates as it streams: one SSE piece (≈ one token) every `pieceMs`, so a client
 * that hangs up mid-answer really stops the generation, and the log shows how many pieces each request was sent.
 * What it writes depends on the prompt `Compute A+B.`: A ≡ 0 (mod 3) a short correct answer; A ≡ 1 a short thought,
 * then an answer stuck in a loop (one sentence again and again) that holds the right boxed answer; A ≡ 2 a long chain
 * that never repeats itself, until max_tokens. Only streamed, single-choice chat completions are served.
 */
export interface StreamingTeacher {
  url: string;
  /** The next request whose prompt this is sends `stall.after` pieces and then nothing, keeping the connection open. */
  stall?: { prompt: string; after: number };
  log: { prompt: string; seed: number; sent: number; finished: boolean; hungUp: boolean }[];
  close(): Promise<void>;
}

export function answerPieces(prompt: string): { pieces: (i: number) => string | null } {
  const m = /Compute (\d+)\+(\d+)\./.exec(prompt);
  const a = Number(m?.[1] ?? 0);
  const sum = a + Number(m?.[2] ?? 0);
  if (a % 3 === 0) {
    const words = `<think> ${a} plus ${sum - a} is ${sum}. </think> The answer is \\boxed{${sum}}.`.split(' ');
    return { pieces: (i) => (i < words.length ? `${words[i]} ` : null) };
  }
  if (a % 3 === 1) {
    // The thought closes at once; the answer then repeats itself: its cut-off text holds a gradable right answer.
    const head = `<think> ${a} plus ${sum - a} is ${sum}. </think>`.split(' ');
    const loop = `The answer is \\boxed{${sum}} and to be sure I will say it again:`.split(' ');
    return { pieces: (i) => `${i < head.length ? head[i] : loop[(i - head.length) % loop.length]} ` };
  }
  return { pieces: (i) => `${i === 0 ? '<think> ' : ''}step${i}:${(i * 7919) % 104729} ` };
}

export async function startStreamingTeacher(pieceMs = 2): Promise<StreamingTeacher> {
  const log: StreamingTeacher['log'] = [];
  const double: StreamingTeacher = {
    url: '',
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const r = JSON.parse(body) as {
        messages: { role: string; content: string }[];
        seed: number;
        n?: number;
        stream?: boolean;
        max_tokens: number;
      };
      if (!r.stream || (r.n ?? 1) !== 1) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'this double serves streamed single-choice requests only' } }));
        return;
      }
      const prompt = r.messages.at(-1)!.content;
      const entry = { prompt, seed: r.seed, sent: 0, finished: false, hungUp: false };
      log.push(entry);
      const { pieces } = answerPieces(prompt);
      const stallAfter = double.stall?.prompt === prompt ? double.stall.after : undefined;
      if (stallAfter !== undefined) double.stall = undefined;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta: object, finish: string | null, usage?: object) =>
        `data: ${JSON.stringify({
          id: 'chatcmpl-stream',
          object: 'chat.completion.chunk',
          created: 0,
          model: 'streaming-double',
          choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }],
          ...(usage ? { usage } : {}),
        })}\n\n`;
      res.on('close', () => {
        if (!entry.finished) entry.hungUp = true;
        clearInterval(timer);
      });
      const timer = setInterval(() => {
        if (stallAfter !== undefined && entry.sent >= stallAfter) return;
        const piece = entry.sent < r.max_tokens ? pieces(entry.sent) : null;
        if (piece !== null) {
          res.write(chunk({ content: piece }, null));
          entry.sent += 1;
          return;
        }
        clearInterval(timer);
        entry.finished = true;
        res.write(chunk({}, entry.sent >= r.max_tokens ? 'length' : 'stop'));
        res.write(chunk({}, null, { prompt_tokens: 10, completion_tokens: entry.sent, total_tokens: 10 + entry.sent }));
        res.end('data: [DONE]\n\n');
      }, pieceMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  double.url = `http://127.0.0.1:${port}/v1`;
  return double;
}
