/** Exact match, multiple choice, regex, the LLM judge, and task routing in verifySample / verifySampleAsync. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  JudgeError,
  judgeMessages,
  judgeSample,
  parseJudgeReply,
  type JudgeConfig,
} from '../../activities/verify/judge';
import { choiceLetter, extractChoice, verifyChoice, verifyExact, verifyRegex } from '../../activities/verify/simple';
import { verifySample, verifySampleAsync } from '../../activities/verify/verify-sample';

describe('exact match', () => {
  test.each([
    ['Paris', 'Paris', 'correct'],
    ['<think>\nmaybe Lyon\n</think>\n\nParis', 'Paris', 'correct'],
    ['<think>\nmaybe\n</think>\n\n**Paris**.', 'Paris', 'correct'],
    ['<think>\nx\n</think>\nLet me explain the reasoning.\n\nParis', 'Paris', 'correct'],
    ['The final answer is $\\boxed{Paris}$', 'Paris', 'correct'],
    ['The answer is Paris.', 'Paris', 'correct'],
    ['  new   york ', 'new york', 'correct'],
    ['paris', 'Paris', 'incorrect'],
    ['Paris, or maybe Lyon', 'Paris', 'incorrect'],
    ['<think>\nParis', 'Paris', 'no_answer'],
    ['', 'Paris', 'no_answer'],
    ['Paris', '   ', 'unparseable_gold'],
  ])('%j vs %j → %s', (response, gold, verdict) => {
    expect(verifyExact(response, gold).verdict).toBe(verdict);
  });

  test('ignoreCase', () => {
    expect(verifyExact('paris', 'Paris', { ignoreCase: true }).verdict).toBe('correct');
  });

  test('backward compatible: verifySample(sample, "exact")', () => {
    expect(verifySample({ content: '<think>\n4+4\n</think>\n8', answer: '8' }, 'exact')).toMatchObject({
      correct: true,
      verdict: 'correct',
      extracted: '8',
    });
    expect(verifySample({ content: '<think>\n4+4\n</think>\n9', answer: '8' }, 'exact')).toMatchObject({
      correct: false,
      verdict: 'incorrect',
    });
  });
});

describe('multiple choice', () => {
  test.each([
    ['B', 'B'],
    ['(B)', 'B'],
    ['B)', 'B'],
    ['B.', 'B'],
    ['\\text{(B)}', 'B'],
    ['\\textbf{(B) }12', 'B'],
    ['Answer: B', 'B'],
    ['(E) 24', 'E'],
    ['Bob', null],
    ['12', null],
    ['', null],
    ['K', null],
  ])('gold %j → letter %j', (gold, letter) => {
    expect(choiceLetter(gold)).toBe(letter);
  });

  test.each([
    ['The answer is B.', 'B', 'correct'],
    ['The answer is (B).', 'B', 'correct'],
    ['Therefore the answer is B) 12.', 'B', 'correct'],
    ['**Answer:** (D)', 'D', 'correct'],
    ['Answer: **C**', 'C', 'correct'],
    ['The correct option is C because it is larger.', 'C', 'correct'],
    ['$\\boxed{\\text{(B)}}$', 'B', 'correct'],
    ['\\boxed{B}', 'B', 'correct'],
    ['\\boxed{(B) 12}', 'B', 'correct'],
    ['<think>\nIt might be (A)... no.\n</think>\n\n(B)', 'B', 'correct'],
    ['<think>\nIt is (B).\n</think>\n\nB) 12', 'B', 'correct'],
    ['<think>\nthe answer is B\n</think>\n\nThe answer is C.', 'B', 'incorrect'],
    ['(A) is wrong, (C) is wrong, so the answer is (B).', 'B', 'correct'],
    ['(A) is wrong, (C) is wrong, so the answer is (D).', 'B', 'incorrect'],
    ['The answer is B or C.', 'B', 'no_answer'],
    ['The answer is a prime number.', 'A', 'no_answer'],
    ['<think>\nthe answer is B', 'B', 'no_answer'],
    ['I am not sure.', 'B', 'no_answer'],
    ['The answer is B.', '17', 'unparseable_gold'],
  ])('%j vs %j → %s', (response, gold, verdict) => {
    expect(verifyChoice(response, gold).verdict).toBe(verdict);
  });

  test('extracted letter is stored', () => {
    expect(extractChoice('So the answer is (c).')).toEqual({ letter: 'C', method: 'answer_phrase' });
    expect(verifySample({ content: 'The answer is (B).', answer: '(B)' }, 'choice')).toMatchObject({
      correct: true,
      extracted: 'B',
    });
  });
});

describe('regex', () => {
  test.each([
    ['The result is 42.', '/\\b42\\b/', 'correct'],
    ['<think>\n42\n</think>\nThe result is 41.', '/\\b42\\b/', 'incorrect'],
    ['YES', '/^yes$/i', 'correct'],
    ['yes, definitely', '/^yes$/i', 'incorrect'],
    ['color', 'colou?r', 'correct'],
    ['anything', '/[unclosed/', 'unparseable_gold'],
    ['anything', '', 'unparseable_gold'],
    ['<think>\nyes', '/yes/', 'no_answer'],
  ])('%j ~ %j → %s', (response, gold, verdict) => {
    expect(verifyRegex(response, gold).verdict).toBe(verdict);
  });

  test('a catastrophic pattern on a long response is stopped, the worker carries on', () => {
    const t0 = Date.now();
    const v = verifyRegex('a'.repeat(40) + '!', '/^(a+)+$/', { timeoutMs: 200 });
    expect(v.verdict).toBe('incorrect');
    expect(v.reason).toMatch(/stopped|timed out/i);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(verifyRegex('aaa', '/^(a+)+$/').verdict).toBe('correct');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// LLM judge against a local OpenAI-compatible stub
// ---------------------------------------------------------------------------------------------------------------

interface StubReq {
  model: string;
  messages: Array<{ role: string; content: string }>;
}

describe('LLM judge', () => {
  let server: http.Server;
  let baseURL = '';
  const seen: StubReq[] = [];
  let mode: 'ok' | 'unauthorized' | 'server_error' | 'garbage' = 'ok';

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const r = JSON.parse(body) as StubReq;
        seen.push(r);
        if (mode === 'unauthorized') {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'bad key', type: 'invalid_request_error' } }));
          return;
        }
        if (mode === 'server_error') {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'boom' } }));
          return;
        }
        const user = r.messages.find((m) => m.role === 'user')!.content;
        // a toy grader: correct iff the response part mentions the reference answer
        const ref = /## REFERENCE ANSWER\n([^\n]*)/.exec(user)![1];
        const resp = /## RESPONSE[^\n]*\n([\s\S]*?)\n\n## |## RESPONSE[^\n]*\n([\s\S]*)$/.exec(user)!;
        const ok = (resp[1] ?? resp[2]).includes(ref);
        const content =
          mode === 'garbage'
            ? 'I think it is fine.'
            : '```json\n' +
              JSON.stringify({
                rationale: ok ? 'matches the reference' : 'does not match',
                verdict: ok ? 'correct' : 'incorrect',
              }) +
              '\n```';
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'x',
            object: 'chat.completion',
            created: 0,
            model: r.model,
            choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content } }],
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    mode = 'ok';
    seen.length = 0;
  });
  const cfg = (): JudgeConfig => ({
    baseURL,
    model: 'judge-stub',
    rubric: 'Be strict.',
    maxRetries: 0,
    timeoutSeconds: 10,
  });

  test('verdict and rationale; the rubric, task, reference and final answer reach the model', async () => {
    const v = await judgeSample(
      { prompt: 'Name the capital of France.', response: '<think>\nhmm\n</think>\nIt is Paris.', gold: 'Paris' },
      cfg(),
    );
    expect(v).toEqual({ verdict: 'correct', rationale: 'matches the reference', model: 'judge-stub' });
    expect(seen[0].messages[0].content).toContain('Be strict.');
    expect(seen[0].messages[1].content).toContain('Name the capital of France.');
    expect(seen[0].messages[1].content).not.toContain('hmm'); // final answer only by default
    expect((await judgeSample({ response: 'It is Lyon.', gold: 'Paris' }, cfg())).verdict).toBe('incorrect');
  });

  test('4xx is non-retryable, 5xx retryable', async () => {
    mode = 'unauthorized';
    await expect(judgeSample({ response: 'x', gold: 'y' }, cfg())).rejects.toMatchObject({
      name: 'JudgeError',
      retryable: false,
      status: 401,
    });
    mode = 'server_error';
    const e = await judgeSample({ response: 'x', gold: 'y' }, cfg()).catch((err) => err);
    expect(e).toBeInstanceOf(JudgeError);
    expect(e.retryable).toBe(true);
  });

  test('an unreadable reply fails closed', async () => {
    mode = 'garbage';
    const v = await verifySampleAsync({ content: 'Paris', answer: 'Paris' }, { type: 'judge', judge: cfg() });
    expect(v).toMatchObject({ correct: false, verdict: 'judge_unreadable' });
  });

  test('math with an unparseable gold goes to the judge when configured, else is rejected with the reason', async () => {
    const sample = {
      content: 'So the angle is $\\boxed{\\angle ABC}$.',
      answer: '\\angle ABC',
      prompt: 'Which angle?',
    };
    const without = await verifySampleAsync(sample, { type: 'math' });
    expect(without).toMatchObject({ correct: false, verdict: 'unparseable_gold' });
    const withJudge = await verifySampleAsync(sample, { type: 'math', judge: cfg() });
    expect(withJudge).toMatchObject({
      correct: true,
      verdict: 'correct',
      task: 'judge',
      judge: { model: 'judge-stub', verdict: 'correct' },
    });
    expect(withJudge.reason).toMatch(/^math checker could not use the gold/);
    expect(seen.at(-1)!.messages[1].content).toContain('could not use the reference answer');
    // a parseable gold never reaches the judge
    seen.length = 0;
    expect(
      (await verifySampleAsync({ content: '\\boxed{4}', answer: '4' }, { type: 'math', judge: cfg() })).verdict,
    ).toBe('correct');
    expect(seen).toHaveLength(0);
  });

  test('reply parsing', () => {
    expect(parseJudgeReply('{"verdict": "INCORRECT", "rationale": "no"}')).toEqual({
      verdict: 'incorrect',
      rationale: 'no',
    });
    expect(parseJudgeReply('<think>{"verdict":"correct"}</think> Verdict: incorrect')?.verdict).toBe('incorrect');
    expect(parseJudgeReply('hello')).toBeNull();
    expect(judgeMessages({ response: 'x'.repeat(20000) }, { maxResponseChars: 100 })[1].content.length).toBeLessThan(
      1000,
    );
  });
});

describe('task routing', () => {
  test('a sample carries its own task type', () => {
    expect(verifySample({ content: 'The answer is (B).', answer: 'B', task: 'choice' }, 'math').verdict).toBe(
      'correct',
    );
    expect(verifySample({ content: '\\boxed{1/2}', answer: '0.5' }, 'math').verdict).toBe('correct');
    expect(verifySample({ content: 'ok', answer: '/^ok$/', task: 'regex' }, { type: 'math' }).verdict).toBe('correct');
  });

  test('code and judge need the async path', () => {
    expect(() => verifySample({ content: 'x', answer: '{}', task: 'code' }, 'math')).toThrow(/verifySampleAsync/);
  });

  test('judge task without a judge is rejected, never accepted', async () => {
    expect(await verifySampleAsync({ content: 'x', answer: 'y' }, { type: 'judge' })).toMatchObject({
      correct: false,
      verdict: 'unparseable_gold',
    });
  });
});
