/** The rejectSample activity, called directly: k per prompt, tie-breaks, pass rates, reasons, resume, failures. */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { SampleRow } from '../../schemas/artifact';
import { writeJsonlAtomic, readJsonl } from '../../activities/artifacts/store';
import { rejectSample, type VerifierConfig } from '../../activities/verify/reject-sample';
import { sandboxProblem } from '../../activities/verify/sandbox';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-verify-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function sample(
  promptId: string,
  i: number,
  content: string,
  answer: string,
  extra: Partial<SampleRow> & Record<string, unknown> = {},
): SampleRow {
  return {
    id: `${promptId}#${i}@h`,
    promptId,
    sampleIndex: i,
    configHash: 'h',
    prompt: `prompt ${promptId}`,
    answer,
    content,
    finishReason: 'stop',
    usage: { promptTokens: 10, completionTokens: content.length },
    teacher: { model: 't' },
    sampling: { temperature: 0.6, top_p: 0.95, max_tokens: 100, seed: 0 },
    latencyMs: 1,
    ...extra,
  };
}

async function rows<T>(uri: { uri: string; sha256: string; count: number }): Promise<T[]> {
  const out: T[] = [];
  for await (const r of readJsonl<T>(uri)) out.push(r);
  return out;
}

test('math: keeps ≤ k correct per prompt (shorter first), records pass rates and every reject with its reason', async () => {
  const samples = [
    sample('p1', 0, '<think>long reasoning here</think> \\boxed{4}', '4'),
    sample('p1', 1, '<think>short</think> \\boxed{4}', '4'),
    sample('p1', 2, '<think>mid reasoning</think> \\boxed{4}', '4'),
    sample('p1', 3, '<think>x</think> \\boxed{5}', '4'),
    sample('p2', 0, '<think>x</think> \\boxed{1}', '2'),
    sample('p2', 1, '<think>truncated', '2'),
    sample('p3', 0, '\\boxed{3}', '\\int_0^1 x\\,dx'),
  ];
  const ref = await writeJsonlAtomic(path.join(dir, 'samples.jsonl'), samples);
  const r = await rejectSample({
    runDir: dir,
    samples: ref,
    verifier: { type: 'math', keepPerPrompt: 2, prefer: 'shorter' },
  });
  expect(r).toMatchObject({ samplesIn: 7, accepted: 2, rejected: 5, prompts: 3, promptsSolved: 1 });
  expect(r.reasons).toEqual({ over_keep_per_prompt: 1, incorrect: 2, no_answer: 1, unparseable_gold: 1 });
  const accepted = await rows<SampleRow & { verdict: { extracted: string } }>(r.acceptedRef);
  expect(accepted.map((s) => s.id)).toEqual(['p1#1@h', 'p1#2@h']);
  expect(accepted[0].verdict.extracted).toBe('4');
  const rejects = await rows<{ id: string; reason: string; detail: string }>(r.rejectsRef);
  expect(rejects.find((x) => x.id === 'p3#0@h')!.detail).toMatch(/not comparable/);
  const rates = await rows<{ promptId: string; passRate: number; verdicts: Record<string, number> }>(r.passRatesRef);
  expect(rates.find((x) => x.promptId === 'p1')).toMatchObject({
    passRate: 0.75,
    verdicts: { correct: 3, incorrect: 1 },
  });
  expect(rates.find((x) => x.promptId === 'p2')).toMatchObject({
    passRate: 0,
    verdicts: { incorrect: 1, no_answer: 1 },
  });

  // prefer: first keeps generation order
  const first = await rejectSample({
    runDir: dir,
    samples: ref,
    verifier: { type: 'math', keepPerPrompt: 2, prefer: 'first' },
  });
  expect((await rows<SampleRow>(first.acceptedRef)).map((s) => s.id)).toEqual(['p1#0@h', 'p1#1@h']);
});

test('samples carry their own task type; a duplicate id fails the stage', async () => {
  const samples = [
    sample('q1', 0, 'The answer is (B).', 'B', { task: 'choice' }),
    sample('q2', 0, '<think>.</think>Paris', 'Paris', { task: 'exact' }),
    sample('q3', 0, 'yes', '/^yes$/', { task: 'regex' }),
    sample('q4', 0, '\\boxed{0.5}', '\\frac12'),
  ];
  const ref = await writeJsonlAtomic(path.join(dir, 'samples.jsonl'), samples);
  const r = await rejectSample({
    runDir: dir,
    samples: ref,
    verifier: { type: 'math', keepPerPrompt: 1, prefer: 'shorter' },
  });
  expect(r).toMatchObject({ accepted: 4, rejected: 0 });
  const dup = await writeJsonlAtomic(path.join(dir, 'dup.jsonl'), [samples[0], samples[0]]);
  await expect(
    rejectSample({ runDir: dir, samples: dup, verifier: { type: 'math', keepPerPrompt: 1, prefer: 'shorter' } }),
  ).rejects.toThrow(/duplicate sample id/);
});

describe('code tasks in the sandbox', () => {
  beforeAll(async () => {
    const problem = await sandboxProblem();
    if (problem) throw new Error(`sandbox unavailable: ${problem}`);
  });

  test('run in parallel, verdicts cached as they complete; a retried attempt resumes from the cache', async () => {
    const tests = JSON.stringify({ cases: [{ input: '2 3\n', output: '5' }] });
    const good = '```python\na, b = map(int, input().split())\nprint(a + b)\n```';
    const bad = '```python\nprint(6)\n```';
    const loop = '```python\nwhile True: pass\n```';
    const samples = [
      sample('c1', 0, good, tests),
      sample('c1', 1, bad, tests),
      sample('c2', 0, loop, tests),
      sample('c2', 1, good.replace('a + b', 'b + a'), tests),
    ];
    const ref = await writeJsonlAtomic(path.join(dir, 'samples.jsonl'), samples);
    const verifier: VerifierConfig = {
      type: 'code',
      keepPerPrompt: 1,
      prefer: 'shorter',
      concurrency: 2,
      code: { timeoutSeconds: 2, cpuSeconds: 1 },
    };
    const r = await rejectSample({ runDir: dir, samples: ref, verifier });
    expect(r).toMatchObject({ samplesIn: 4, accepted: 2, rejected: 2, resumedVerdicts: 0, reasons: { incorrect: 2 } });
    const rejects = await rows<{ id: string; detail: string; row: { failure: string } }>(r.rejectsRef);
    expect(rejects.find((x) => x.id === 'c2#0@h')!.row.failure).toMatch(/cpu_limit|timeout/);
    expect(rejects.find((x) => x.id === 'c1#1@h')!.row.failure).toBe('wrong_answer');

    // a killed attempt leaves a torn last line: it is cut off and only that sample is verified again
    const cache = path.join(dir, 'verify', 'verdicts.cache.jsonl');
    const lines = fs.readFileSync(cache, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(4);
    fs.writeFileSync(cache, lines.slice(0, 3).join('\n') + '\n' + lines[3].slice(0, 20));
    const again = await rejectSample({ runDir: dir, samples: ref, verifier });
    expect(again).toMatchObject({ accepted: 2, rejected: 2, resumedVerdicts: 3 });
    expect(again.acceptedRef.sha256).toBe(r.acceptedRef.sha256);
    // a different verifier config does not reuse the cache
    const other = await rejectSample({
      runDir: dir,
      samples: ref,
      verifier: { ...verifier, code: { timeoutSeconds: 3, cpuSeconds: 1 } },
    });
    expect(other.resumedVerdicts).toBe(0);
  });
});

test('a judge endpoint that answers 4xx fails the stage without retries', async () => {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'model not found' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const ref = await writeJsonlAtomic(path.join(dir, 'samples.jsonl'), [sample('j1', 0, 'An essay.', 'a good essay')]);
    const e = await rejectSample({
      runDir: dir,
      samples: ref,
      verifier: { type: 'judge', keepPerPrompt: 1, prefer: 'first', judge: { baseURL, model: 'nope', maxRetries: 0 } },
    }).catch((x) => x);
    expect(e).toBeInstanceOf(ApplicationFailure);
    expect(e).toMatchObject({ nonRetryable: true, type: 'JudgeRequestRejected' });
    expect(e.message).toContain('HTTP 404');
  } finally {
    server.close();
  }
});
