/** @jest-environment ./test/helpers/outer-realm-env.js */
import { generateShard } from '../../activities/generate/generate-shard';
import { choiceSeed, promptSeed } from '../../activities/generate/sample-ids';
import { startTeacherServer } from '../../infra/teacher/server';
import { rejectSample } from '../../activities/verify/reject-sample';
import { checkRunSpec, VerifierSchema } from '../../schemas/run-spec';
import { shardDir, shardInput, shardRows } from '../helpers/shard-fixture';
import { startStreamingTeacher, type StreamingTeacher } from '../helpers/streaming-teacher';

// shardDir's prompts are "Compute 10+20.", "Compute 11+21.", …: with A = 10 + i, the streaming double answers
// A ≡ 0 (mod 3) briefly and correctly, A ≡ 1 in a loop that holds the right boxed answer, A ≡ 2 at length.
let teacher: StreamingTeacher;
beforeAll(async () => (teacher = await startStreamingTeacher()));
afterAll(async () => teacher.close());
beforeEach(() => (teacher.log.length = 0));

const MAX_TOKENS = 3000;
const kindOf = (prompt: string) => ['ok', 'loop', 'long'][Number(/Compute (\d+)/.exec(prompt)![1]) % 3]!;
const input = (runDir: string, abortWasted: Record<string, unknown> | undefined) =>
  shardInput(
    runDir,
    { baseURL: teacher.url, model: 'streaming-double', concurrency: 6 },
    { n: 2, max_tokens: MAX_TOKENS, ...(abortWasted ? { abortWasted } : {}) },
  );

test('a looping or over-long generation is cancelled mid-stream; its sample is kept, rejected, and its tokens saved', async () => {
  const runDir = await shardDir(6);
  const r = await generateShard(input(runDir, { maxChars: 1500 }));
  const rows = await shardRows(runDir);
  expect(rows).toHaveLength(12);
  for (const row of rows) {
    const kind = kindOf(row.prompt);
    expect([row.promptId, row.finishReason]).toEqual([
      row.promptId,
      { ok: 'stop', loop: 'aborted_loop', long: 'aborted_length' }[kind],
    ]);
    // a cancelled stream reports no usage; both choices of these prompts were cut, so the prompt's tokens are estimated
    expect(row.usage.promptTokens).toBe(kind === 'ok' ? 10 : Math.ceil(row.prompt.length / 4));
  }
  // The server's own log: every cancelled request was hung up on long before max_tokens; the short ones finished.
  expect(teacher.log).toHaveLength(12);
  for (const e of teacher.log) {
    const kind = kindOf(e.prompt);
    expect({ kind, hungUp: e.hungUp }).toEqual({ kind, hungUp: kind !== 'ok' });
    if (kind !== 'ok') expect(e.sent).toBeLessThan(MAX_TOKENS / 4);
  }
  // What a sample says it saved is at least what the server really did not generate (it may have sent a few pieces
  // the client never read).
  for (const row of rows.filter((s) => s.aborted)) {
    const e = teacher.log.filter(
      (l) => l.prompt === row.prompt && l.seed === choiceSeed(promptSeed(11, row.promptId), row.sampleIndex),
    );
    expect(e).toHaveLength(1);
    expect(row.aborted!.savedTokens).toBeGreaterThanOrEqual(MAX_TOKENS - e[0]!.sent);
    expect(row.aborted!.savedTokens).toBeLessThanOrEqual(MAX_TOKENS);
  }
  const sentOf = (kind: string) => teacher.log.filter((e) => kindOf(e.prompt) === kind).reduce((t, e) => t + e.sent, 0);
  console.log(
    `pieces the teacher generated: loop ${sentOf('loop')}, long ${sentOf('long')}, ok ${sentOf('ok')}; ` +
      `saved (max_tokens left) ${r.aborted?.savedTokens}`,
  );
  expect(r.aborted).toEqual({
    loop: 4,
    length: 4,
    savedTokens: rows.filter((s) => s.aborted).reduce((t, s) => t + s.aborted!.savedTokens, 0),
  });
  // The loop's cut-off text holds the right boxed answer: the verifier must still reject it, as cancelled.
  expect(rows.filter((s) => kindOf(s.prompt) === 'loop').every((s) => s.content.includes(`\\boxed{${s.answer}}`))).toBe(
    true,
  );
  const v = await rejectSample({
    runDir,
    samples: r.samplesRef,
    verifier: VerifierSchema.parse({ type: 'math', keepPerPrompt: 2 }),
  });
  expect({ in: v.samplesIn, accepted: v.accepted, rejected: v.rejected }).toEqual({ in: 12, accepted: 4, rejected: 8 });
  expect(v.reasons).toEqual({ aborted: 8 });
  expect(r.requests).toBe(12);
});

test('the same seeds cut the same samples at the same place; each choice is a request of its own with its own seed', async () => {
  const a = await shardDir(3);
  const b = await shardDir(3);
  await generateShard(input(a, { maxChars: 800 }));
  const seeds = teacher.log.map((e) => `${e.prompt}|${e.seed}`);
  expect(new Set(seeds).size).toBe(6);
  await generateShard(input(b, { maxChars: 800 }));
  const strip = (rows: Awaited<ReturnType<typeof shardRows>>) =>
    rows.map(({ id, content, finishReason, usage, aborted }) => ({ id, content, finishReason, usage, aborted }));
  expect(strip(await shardRows(b))).toEqual(strip(await shardRows(a)));
});

test('with both checks off nothing is cancelled: the loop runs to max_tokens', async () => {
  const runDir = await shardDir(2);
  // The double serves streams only, so this run streams with loop detection off and no length limit.
  const r = await generateShard(input(runDir, { loops: false }));
  const rows = await shardRows(runDir);
  expect(rows.map((s) => s.finishReason)).toEqual(['length', 'length', 'length', 'length']);
  expect(r.aborted).toBeUndefined();
  expect(teacher.log.filter((e) => kindOf(e.prompt) === 'loop').every((e) => e.sent === MAX_TOKENS)).toBe(true);
});

test('the spec refuses abortWasted with the Batch API or with logprobs, naming why', () => {
  const base = {
    name: 'x',
    teacher: { baseURL: 'http://127.0.0.1:1/v1', model: 'm' },
    dataset: { source: { type: 'builtin', task: 'arithmetic' } },
  };
  const batch = checkRunSpec({
    ...base,
    teacher: { ...base.teacher, mode: 'batch' },
    sampling: { abortWasted: {} },
  });
  expect(batch.ok).toBe(false);
  expect(JSON.stringify(!batch.ok && batch.issues)).toContain('needs teacher.mode online');
  const lp = checkRunSpec({ ...base, sampling: { abortWasted: {}, logprobs: 5 } });
  expect(lp.ok).toBe(false);
  expect(JSON.stringify(!lp.ok && lp.issues)).toContain('partial soft targets');
});

test("the local teacher's stream goes through the same path: nothing wasted, nothing cancelled, answers verified", async () => {
  const local = await startTeacherServer({});
  try {
    const runDir = await shardDir(4);
    const r = await generateShard(
      shardInput(runDir, { baseURL: local.url }, { n: 3, max_tokens: 400, abortWasted: { maxChars: 5000 } }),
    );
    const rows = await shardRows(runDir);
    expect(rows).toHaveLength(12);
    expect(rows.every((s) => s.finishReason === 'stop' && /\\boxed\{\d+\}/.test(s.content))).toBe(true);
    expect(r.aborted).toBeUndefined();
    // one streamed request per choice
    expect(local.stats().completions).toBe(12);
    expect(r.completionTokens).toBe(rows.reduce((t, s) => t + s.usage.completionTokens, 0));
    expect(r.completionTokens).toBeGreaterThan(0);
    expect(rows.every((s) => s.usage.promptTokens > 0 && s.usage.completionTokens > 0)).toBe(true);
    expect(r.requests).toBe(12);
  } finally {
    await local.close();
  }
});

test('a stream that stalls mid-answer is cut after requestTimeoutSeconds and asked again; the retry is counted', async () => {
  const runDir = await shardDir(1);
  teacher.stall = { prompt: 'Compute 10+20.', after: 5 };
  const r = await generateShard(
    shardInput(
      runDir,
      { baseURL: teacher.url, model: 'streaming-double', requestTimeoutSeconds: 0.5 },
      { n: 2, max_tokens: MAX_TOKENS, abortWasted: {} },
    ),
  );
  const rows = await shardRows(runDir);
  expect(rows.map((s) => s.finishReason)).toEqual(['aborted_loop', 'aborted_loop']);
  // 2 choices, one of them asked twice (the stalled stream was hung up on)
  expect(teacher.log).toHaveLength(3);
  expect(teacher.log.filter((e) => e.hungUp)).toHaveLength(3);
  expect(r.requests).toBe(3);
});
