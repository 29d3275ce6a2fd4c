import OpenAI from 'openai';
import http from 'node:http';
import {
  computeAnswer,
  extractBoxedAnswer,
  generateArithmeticProblems,
  parseArithmeticPrompt,
  solveWithReasoning,
} from '../../activities/dataset/arithmetic-task';
import { errorProbabilityPerStep, proceduralTeacherRespond } from '../../infra/teacher/procedural-teacher';
import { TeacherServer, approxTokens, startTeacherServer } from '../../infra/teacher/server';
import { parseTeacherArgs } from '../../infra/teacher/main';

const MODEL = 'procedural-arithmetic-teacher';

function isCorrect(prompt: string, content: string): boolean {
  const q = parseArithmeticPrompt(prompt)!;
  return extractBoxedAnswer(content) === String(computeAnswer(q.a, q.op, q.b));
}

/** Raw HTTP helper for cases the SDK hides. */
function rawRequest(
  url: string,
  method: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe('procedural teacher (pure)', () => {
  it('is greedy and exact at temperature 0', () => {
    for (const p of generateArithmeticProblems({ seed: 3, count: 200, split: 'train', ops: ['+', '-'] })) {
      const out = proceduralTeacherRespond({ prompt: p.prompt, temperature: 0, seed: 1, choiceIndex: 0 });
      const { a, op, b } = parseArithmeticPrompt(p.prompt)!;
      expect(out.content).toBe(solveWithReasoning(a, op, b));
      expect(out.mistakes).toBe(0);
    }
  });

  it('error rate grows with temperature and mistakes always make the answer wrong', () => {
    expect(errorProbabilityPerStep(0)).toBe(0);
    expect(errorProbabilityPerStep(1)).toBeCloseTo(0.08);
    expect(errorProbabilityPerStep(1.5)).toBeCloseTo(0.12);
    expect(errorProbabilityPerStep(2, 0.5)).toBeCloseTo(0.08);
    expect(errorProbabilityPerStep(100)).toBe(0.5);
    const problems = generateArithmeticProblems({ seed: 4, count: 300, split: 'train' });
    const wrongAt = (temperature: number) => {
      let wrong = 0;
      for (const p of problems) {
        for (let i = 0; i < 4; i++) {
          const out = proceduralTeacherRespond({ prompt: p.prompt, temperature, seed: 9, choiceIndex: i });
          expect(out.givenAnswer === p.answer).toBe(out.mistakes === 0);
          expect(extractBoxedAnswer(out.content)).toBe(out.givenAnswer);
          if (out.givenAnswer !== p.answer) wrong++;
        }
      }
      return wrong / (problems.length * 4);
    };
    const w05 = wrongAt(0.5);
    const w1 = wrongAt(1);
    const w15 = wrongAt(1.5);
    expect(w05).toBeLessThan(w1);
    expect(w1).toBeLessThan(w15);
    expect(w1).toBeGreaterThan(0.08); // ≈ 1-(0.92)^2 = 15%
    expect(w1).toBeLessThan(0.25);
  });

  it('answers unparseable questions with "I don\'t know"', () => {
    const out = proceduralTeacherRespond({ prompt: 'Write a poem.', temperature: 1, seed: 1, choiceIndex: 0 });
    expect(out.content).toBe("<think>I cannot solve this.</think>\nI don't know.");
    expect(out.problem).toBeNull();
    const sep = proceduralTeacherRespond({
      prompt: 'Write a poem.',
      seed: 1,
      choiceIndex: 0,
      reasoningFormat: 'separate',
    });
    expect(sep.content).toBe("I don't know.");
    expect(sep.reasoningContent).toBe('I cannot solve this.');
  });
});

describe('teacher server via the openai client', () => {
  let server: TeacherServer;
  let client: OpenAI;

  beforeAll(async () => {
    server = await startTeacherServer({ port: 0, apiKey: 'x' });
    client = new OpenAI({ baseURL: server.url, apiKey: 'x', maxRetries: 0 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('exposes /v1 url, models and health', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
    const health = await rawRequest(server.url.replace(/\/v1$/, '/health'), 'GET');
    expect(health.status).toBe(200);
    expect(health.json.status).toBe('ok');
  });

  it('n=4 at temperature 1: 4 distinct choices, reproducible with the same seed', async () => {
    const req = {
      model: MODEL,
      messages: [
        { role: 'system' as const, content: 'You are a careful mathematician.' },
        { role: 'user' as const, content: 'Compute 47+85.' },
      ],
      n: 4,
      temperature: 1,
      seed: 1234,
    };
    const r1 = await client.chat.completions.create(req);
    const r2 = await client.chat.completions.create(req);
    expect(r1.object).toBe('chat.completion');
    expect(r1.model).toBe(MODEL);
    expect(r1.id).toMatch(/^chatcmpl-/);
    expect(typeof r1.created).toBe('number');
    expect(r1.choices).toHaveLength(4);
    expect(r1.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    const contents = r1.choices.map((c) => c.message.content);
    expect(new Set(contents).size).toBe(4);
    for (const c of r1.choices) {
      expect(c.message.role).toBe('assistant');
      expect(c.finish_reason).toBe('stop');
      expect(c.message.content).toMatch(/^<think>[\s\S]+<\/think>\n[\s\S]*\\boxed\{-?\d+\}/);
    }
    expect(r2.choices.map((c) => c.message.content)).toEqual(contents);
    const completionTokens = contents.reduce((s, c) => s + approxTokens(c ?? ''), 0);
    expect(r1.usage).toMatchObject({ completion_tokens: completionTokens });
    expect(r1.usage!.total_tokens).toBe(r1.usage!.prompt_tokens + r1.usage!.completion_tokens);
    expect(r1.usage!.prompt_tokens).toBe(approxTokens('You are a careful mathematician.\nCompute 47+85.'));

    const r3 = await client.chat.completions.create({ ...req, seed: 999 });
    expect(r3.choices.map((c) => c.message.content)).not.toEqual(contents);
  });

  it('all correct at temperature 0, some errors at temperature 1.5', async () => {
    const problems = generateArithmeticProblems({ seed: 7, count: 30, split: 'heldout', ops: ['+', '-'] });
    let wrong0 = 0;
    let wrong15 = 0;
    let total15 = 0;
    for (const p of problems) {
      const messages = [{ role: 'user' as const, content: p.prompt }];
      const r0 = await client.chat.completions.create({ model: MODEL, messages, n: 2, temperature: 0, seed: 5 });
      for (const c of r0.choices) if (!isCorrect(p.prompt, c.message.content ?? '')) wrong0++;
      expect(r0.choices[0].message.content).toBe(r0.choices[1].message.content); // greedy
      const r15 = await client.chat.completions.create({ model: MODEL, messages, n: 8, temperature: 1.5, seed: 5 });
      for (const c of r15.choices) {
        total15++;
        if (!isCorrect(p.prompt, c.message.content ?? '')) wrong15++;
      }
    }
    expect(wrong0).toBe(0);
    expect(wrong15).toBeGreaterThan(0);
    expect(wrong15 / total15).toBeLessThan(0.5);
  });

  it('unparseable questions get a rejectable answer', async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Tell me a joke.' }],
    });
    expect(r.choices[0].message.content).toBe("<think>I cannot solve this.</think>\nI don't know.");
  });

  it('reasoning_format "separate" returns DeepSeek-style reasoning_content', async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Compute 47+85.' }],
      temperature: 0,
      reasoning_format: 'separate',
    } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    const msg = r.choices[0].message as OpenAI.Chat.ChatCompletionMessage & { reasoning_content?: string };
    expect(msg.reasoning_content).toBe('7+5=12, write 2 carry 1. 4+8+1=13, write 13.');
    expect(msg.content).toBe('The answer is \\boxed{132}.');
  });

  it('max_tokens small → finish_reason length; stop sequences cut content', async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Compute 47+85.' }],
      max_tokens: 3,
      n: 2,
    });
    for (const c of r.choices) {
      expect(c.finish_reason).toBe('length');
      expect((c.message.content ?? '').length).toBeLessThanOrEqual(12);
    }
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(6);

    const s = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Compute 47+85.' }],
      temperature: 0,
      stop: ['</think>'],
    });
    expect(s.choices[0].message.content).toBe('<think>7+5=12, write 2 carry 1. 4+8+1=13, write 13.');
    expect(s.choices[0].finish_reason).toBe('stop');
  });

  it('streams chunks like OpenAI', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Compute 12+13.' }],
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(solveWithReasoning(12, '+', 13));
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ completion_tokens: approxTokens(text) });
  });

  it('401 with a wrong or missing key', async () => {
    const bad = new OpenAI({ baseURL: server.url, apiKey: 'wrong', maxRetries: 0 });
    await expect(
      bad.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Compute 1+1.' }] }),
    ).rejects.toMatchObject({ status: 401, code: 'invalid_api_key', type: 'invalid_request_error' });
    const none = await rawRequest(`${server.url}/models`, 'GET');
    expect(none.status).toBe(401);
    expect(none.json.error).toHaveProperty('message');
  });

  it('400 with an OpenAI-style error for n=0, bad JSON and missing messages', async () => {
    let err: any;
    try {
      await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Compute 1+1.' }],
        n: 0,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.error).toMatchObject({ type: 'invalid_request_error', param: 'n' });
    expect(typeof err.error.message).toBe('string');
    expect(err.error).toHaveProperty('code');

    const auth = { authorization: 'Bearer x' };
    const badJson = await rawRequest(`${server.url}/chat/completions`, 'POST', '{not json', auth);
    expect(badJson.status).toBe(400);
    expect(Object.keys(badJson.json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    const missing = await rawRequest(`${server.url}/chat/completions`, 'POST', JSON.stringify({ model: MODEL }), auth);
    expect(missing.status).toBe(400);
    expect(missing.json.error.param).toBe('messages');
    const badTemp = await rawRequest(
      `${server.url}/chat/completions`,
      'POST',
      JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 3 }),
      auth,
    );
    expect(badTemp.status).toBe(400);
  });

  it('404 for an unknown model or path', async () => {
    await expect(
      client.chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'Compute 1+1.' }] }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    const r = await rawRequest(`${server.url}/embeddings`, 'POST', '{}', { authorization: 'Bearer x' });
    expect(r.status).toBe(404);
    expect(r.json.error.type).toBe('invalid_request_error');
  });
});

describe('teacher server concurrency and latency', () => {
  it('queues beyond maxInFlight and adds the fixed latency', async () => {
    const server = await startTeacherServer({ latencyMs: 100, maxInFlight: 2 });
    try {
      const client = new OpenAI({ baseURL: server.url, apiKey: 'anything', maxRetries: 0 });
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `Compute ${i}+1.` }] }),
        ),
      );
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(280); // 3 waves of 100 ms
      const st = server.stats();
      expect(st.inFlightPeak).toBe(2);
      expect(st.requests).toBe(6);
      expect(st.completions).toBe(6);
      expect(st.queuedPeak).toBeGreaterThanOrEqual(1);
    } finally {
      await server.close();
    }
  });
});

describe('teacher CLI args', () => {
  it('parses flags and reads the key from the named env var', () => {
    expect(parseTeacherArgs(['--port', '8400', '--latency-ms', '0', '--api-key-env', 'K'], { K: 'secret' })).toEqual({
      port: 8400,
      latencyMs: 0,
      apiKey: 'secret',
    });
    expect(parseTeacherArgs(['--max-in-flight=3', '--model', 'm'], {})).toEqual({
      port: 8400,
      maxInFlight: 3,
      model: 'm',
    });
    expect(() => parseTeacherArgs(['--api-key-env', 'MISSING'], {})).toThrow(/MISSING/);
    expect(() => parseTeacherArgs(['--bogus'], {})).toThrow(/unknown/);
  });
});

describe('teacher CLI process', () => {
  it('prints one "listening" JSON line, serves, and exits 0 on SIGTERM', async () => {
    // The compiled CLI (npm test builds dist/ first).
    const path = await import('node:path');
    const { spawn } = await import('node:child_process');
    const main = path.resolve(__dirname, '../../dist/infra/teacher/main.js');
    const child = spawn(
      process.execPath,
      [main, '--port', '0', '--latency-ms', '0', '--api-key-env', 'TEACHER_TEST_KEY'],
      {
        env: { ...process.env, TEACHER_TEST_KEY: 'k' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      let stdout = '';
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (stdout.includes('\n')) resolve(stdout.split('\n')[0]);
        });
        child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
      });
      const ev = JSON.parse(line);
      expect(ev.event).toBe('listening');
      expect(ev.url).toMatch(/\/v1$/);
      const client = new OpenAI({ baseURL: ev.url, apiKey: 'k', maxRetries: 0 });
      const r = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Compute 9+9.' }],
        temperature: 0,
      });
      expect(extractBoxedAnswer(r.choices[0].message.content ?? '')).toBe('18');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stdout.trim().split('\n')).toHaveLength(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
