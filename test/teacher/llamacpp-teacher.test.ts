/**
 * The llama.cpp runtime of the local teacher (llamacpp-teacher.ts over llama.cpp's server from `xllamacpp`): what
 * it adds to llama.cpp's own server. Usage summed over n choices (llama.cpp's native n counts one), logprobs passed
 * through, a clear error when the wheel is missing, and no server left behind after close().
 * The shared guarantees (n distinct choices, seeds, length, stop, errors, SIGTERM) are in llama-teacher.test.ts,
 * which runs the CLI on this runtime.
 *
 * Needs the SmolLM2 GGUF and xllamacpp in the project's venv (`npm run setup`): skipped with a note when they are
 * missing, and failed instead under CI=true.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cacheDir } from '../../infra/paths';
import * as path from 'node:path';
import { startLlamaCppProcess, type LlamaCppProcess } from '../../infra/teacher/llamacpp-process';
import { parseLogprobs, startLlamaCppTeacher, sumUsage, upstreamBody } from '../../infra/teacher/llamacpp-teacher';
import { defaultLlamaModelPath, parseLlamaChatRequest, type LlamaTeacher } from '../../infra/teacher/llama-server';

const GGUF = defaultLlamaModelPath();
const PY = process.env.DISTILLERY_PYTHON ?? path.join(cacheDir(), 'venv', 'bin', 'python');
const haveWheel = existsSync(PY) && spawnSync(PY, ['-c', 'import xllamacpp'], { stdio: 'ignore' }).status === 0;
const ready = existsSync(GGUF) && haveWheel;
const missing = `needs ${GGUF} and xllamacpp in ${PY}: run \`npm run setup\``;

describe('llama.cpp front: request mapping (no model needed)', () => {
  const req = parseLlamaChatRequest(
    {
      model: 'm',
      messages: [
        { role: 'developer', content: 'x' },
        { role: 'user', content: 'y' },
      ],
      n: 3,
      seed: 9,
      stop: 'END',
    },
    'm',
  );

  it('sends each choice as its own request with its own seed and plain top-p sampling', () => {
    const bodies = [0, 1, 2].map((i) => upstreamBody(req, { logprobs: false, topLogprobs: 0 }, i, 'm'));
    expect(new Set(bodies.map((b) => b.seed)).size).toBe(3);
    for (const b of bodies) {
      expect(b).toMatchObject({
        n: 1,
        top_k: 0,
        min_p: 0,
        typical_p: 1,
        repeat_penalty: 1,
        stop: ['END'],
        messages: [
          { role: 'system', content: 'x' },
          { role: 'user', content: 'y' },
        ],
      });
      expect(b).not.toHaveProperty('logprobs');
    }
    expect(upstreamBody(req, { logprobs: true, topLogprobs: 5 }, 0, 'm')).toMatchObject({
      logprobs: true,
      top_logprobs: 5,
    });
  });

  it('validates logprobs like OpenAI and sums usage over every choice', () => {
    expect(parseLogprobs({})).toEqual({ logprobs: false, topLogprobs: 0 });
    expect(parseLogprobs({ logprobs: true, top_logprobs: 20 })).toEqual({ logprobs: true, topLogprobs: 20 });
    for (const bad of [
      { logprobs: 'yes' },
      { logprobs: true, top_logprobs: 21 },
      { logprobs: true, top_logprobs: 1.5 },
      { top_logprobs: 3 },
    ]) {
      expect(() => parseLogprobs(bad)).toThrow(expect.objectContaining({ status: 400 }));
    }
    expect(sumUsage(27, [{ tokens: 10 }, { tokens: 7 }, { tokens: 3 }])).toEqual({
      prompt_tokens: 27,
      completion_tokens: 20,
      total_tokens: 47,
    });
  });
});

if (!ready) {
  if (process.env.CI === 'true') {
    test('prerequisites of the llama.cpp runtime are installed (CI)', () => {
      throw new Error(`llama.cpp runtime tests cannot run under CI: ${missing}`);
    });
  } else {
    console.warn(`llama.cpp runtime model tests SKIPPED: ${missing}`);
  }
}

(ready ? describe : describe.skip)('llama.cpp runtime: SmolLM2 through llama.cpp server of xllamacpp', () => {
  let teacher: LlamaTeacher;
  let direct: LlamaCppProcess;
  beforeAll(async () => {
    teacher = await startLlamaCppTeacher({ modelPath: GGUF, model: 'smol', contextSize: 256, slots: 3, threads: 1 });
    direct = await startLlamaCppProcess({ modelPath: GGUF, alias: 'smol', ctxPerSlot: 256, slots: 3, threads: 1 });
  }, 180_000);
  afterAll(async () => {
    await teacher?.close();
    await direct?.close();
  });

  const post = async (url: string, body: unknown) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const body = {
    model: 'smol',
    messages: [{ role: 'user', content: 'Write one sentence about the sea.' }],
    n: 3,
    temperature: 1,
    max_tokens: 12,
    seed: 4,
  };

  it('counts the completion tokens of every choice (llama.cpp alone counts one), from the tokens themselves', async () => {
    const ours = await post(`${teacher.url}/chat/completions`, { ...body, logprobs: true, top_logprobs: 3 });
    expect(ours.status).toBe(200);
    expect(ours.body.choices).toHaveLength(3);
    // The sampled tokens, listed one by one in logprobs, are the independent count.
    const perChoice = ours.body.choices.map((c: any) => c.logprobs.content.length as number);
    for (const k of perChoice) expect(k).toBeGreaterThan(0);
    const sampled = perChoice.reduce((s: number, k: number) => s + k, 0);
    expect(ours.body.usage.completion_tokens).toBe(sampled);
    expect(ours.body.usage.total_tokens).toBe(ours.body.usage.prompt_tokens + sampled);
    expect(teacher.stats().completionTokens).toBe(sampled);

    // llama.cpp's server with its native n on the same request: fewer tokens reported than it sampled.
    const native = await post(`${direct.url}/v1/chat/completions`, { ...body, logprobs: true });
    expect(native.status).toBe(200);
    const nativeSampled = native.body.choices.reduce((s: number, c: any) => s + c.logprobs.content.length, 0);
    expect(native.body.usage.completion_tokens).toBeLessThan(nativeSampled);
  }, 180_000);

  it('passes logprobs and top_logprobs through per choice in OpenAI shape', async () => {
    const r = await post(`${teacher.url}/chat/completions`, {
      ...body,
      n: 2,
      logprobs: true,
      top_logprobs: 4,
      max_tokens: 6,
    });
    expect(r.status).toBe(200);
    for (const c of r.body.choices) {
      expect(c.logprobs.content.length).toBeGreaterThan(0);
      for (const t of c.logprobs.content) {
        expect(typeof t.token).toBe('string');
        expect(t.logprob).toBeLessThanOrEqual(0);
        expect(t.top_logprobs).toHaveLength(4);
        const lps = t.top_logprobs.map((x: any) => x.logprob as number);
        expect([...lps].sort((a, b) => b - a)).toEqual(lps);
      }
    }
    const none = await post(`${teacher.url}/chat/completions`, { ...body, n: 1, max_tokens: 4 });
    expect(none.body.choices[0].logprobs).toBeNull();
    const bad = await post(`${teacher.url}/chat/completions`, { ...body, top_logprobs: 2 });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ type: 'invalid_request_error', param: 'top_logprobs' });
  }, 180_000);

  it('stops llama.cpp server process on close()', async () => {
    const t = await startLlamaCppTeacher({
      modelPath: GGUF,
      model: 'smol-close',
      contextSize: 128,
      slots: 1,
      threads: 1,
    });
    const pids = () =>
      readdirSync('/proc')
        .filter((p: string) => /^\d+$/.test(p))
        .filter((p: string) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('smol-close');
          } catch {
            return false;
          }
        });
    expect(pids().length).toBe(1);
    await t.close();
    expect(pids()).toEqual([]);
    await expect(fetch(t.url.replace(/\/v1$/, '/health'))).rejects.toThrow();
  }, 180_000);
});

(haveWheel || process.env.CI === 'true' ? describe : describe.skip)('llama.cpp runtime without its wheel', () => {
  it('fails with an error that names the missing wheel and the fix', async () => {
    const bare = spawnSync('python3', ['-c', 'import xllamacpp'], { stdio: 'ignore' });
    if (bare.status === 0) return console.warn('system python3 has xllamacpp: nothing to check');
    const saved = process.env.DISTILLERY_PYTHON;
    process.env.DISTILLERY_PYTHON = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], {
      encoding: 'utf8',
    }).stdout.trim();
    try {
      await expect(
        startLlamaCppProcess({ modelPath: __filename, ctxPerSlot: 128, slots: 1, threads: 1 }),
      ).rejects.toThrow(/xllamacpp is not installed.*npm run setup/s);
    } finally {
      if (saved === undefined) delete process.env.DISTILLERY_PYTHON;
      else process.env.DISTILLERY_PYTHON = saved;
    }
  });
});
