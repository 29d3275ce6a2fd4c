/**
 * The methods the benchmarks rest on: ABBA order and medians, the latency-model endpoint (a test double whose
 * latency and lengths must follow its model and be the same for the same request), the policy rows of the math
 * corpus, and scoring drops against planted truth.
 */
import OpenAI from 'openai';
import { abbaOrder, envInt, median, runAbba } from '../../bench/rounds';
import {
  planRequest,
  startLatencyModelEndpoint,
  DEFAULT_LATENCY_MODEL,
  type LatencyModel,
} from '../../bench/generate/latency-model-endpoint';
import { policyReason, type CorpusRow } from '../../bench/verify/policy';
import { scoreDrops, type Truth } from '../../bench/dedup/truth';

describe('rounds', () => {
  test('sides alternate A B, B A, A B … and each round holds both results', async () => {
    const calls: string[] = [];
    const rounds = await runAbba(4, {
      A: async (r) => (calls.push(`A${r}`), `a${r}`),
      B: async (r) => (calls.push(`B${r}`), `b${r}`),
    });
    expect(calls).toEqual(['A1', 'B1', 'B2', 'A2', 'A3', 'B3', 'B4', 'A4']);
    expect(rounds.map((r) => [r.a, r.b])).toEqual([
      ['a1', 'b1'],
      ['a2', 'b2'],
      ['a3', 'b3'],
      ['a4', 'b4'],
    ]);
    expect(abbaOrder(2)).toEqual(['B', 'A']);
  });

  test('median of odd and even counts; no values is an error', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(/no values/);
  });

  test('a size knob that is not a positive integer is refused, not replaced by the default', () => {
    expect(envInt('X', 5, {})).toBe(5);
    expect(envInt('X', 5, { X: '12' })).toBe(12);
    expect(() => envInt('X', 5, { X: '0' })).toThrow(/X must be a positive integer/);
    expect(() => envInt('X', 5, { X: 'many' })).toThrow(/X must be a positive integer/);
  });
});

describe('latency-model endpoint (test double)', () => {
  const quiet: LatencyModel = { ...DEFAULT_LATENCY_MODEL, noiseSigma: 0 };

  test('the same request gets the same plan; another seed or prompt gets another', () => {
    const req = { prompt: 'Compute 12+30.', seed: 5, n: 4, maxTokens: 1024 };
    expect(planRequest(DEFAULT_LATENCY_MODEL, req)).toEqual(planRequest(DEFAULT_LATENCY_MODEL, req));
    expect(planRequest(DEFAULT_LATENCY_MODEL, { ...req, seed: 6 })).not.toEqual(
      planRequest(DEFAULT_LATENCY_MODEL, req),
    );
    expect(planRequest(DEFAULT_LATENCY_MODEL, { ...req, prompt: 'Compute 12+31.' })).not.toEqual(
      planRequest(DEFAULT_LATENCY_MODEL, req),
    );
  });

  test('latency is TTFT + per-token time of the longest choice; lengths are long-tailed around the median', () => {
    const lengths: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const p = planRequest(quiet, { prompt: `Compute ${i}+1.`, seed: i, n: 4, maxTokens: 100_000 });
      expect(p.latencyMs).toBeCloseTo(quiet.ttftMs + quiet.msPerToken * Math.max(...p.lengths), 6);
      lengths.push(...p.lengths);
    }
    const s = [...lengths].sort((a, b) => a - b);
    const m = s[s.length >> 1]!;
    expect(m).toBeGreaterThan(0.9 * quiet.lengthMedian);
    expect(m).toBeLessThan(1.1 * quiet.lengthMedian);
    // lognormal σ = 0.8: the 99th percentile is about e^(2.33·0.8) ≈ 6.4 × the median
    expect(s[Math.floor(0.99 * s.length)]! / m).toBeGreaterThan(4.5);
  });

  test('noise has mean 1 and moves latencies both ways', () => {
    const ratios: number[] = [];
    for (let i = 0; i < 4000; i++) {
      const req = { prompt: `Compute ${i}+2.`, seed: i, n: 1, maxTokens: 4096 };
      const p = planRequest(DEFAULT_LATENCY_MODEL, req);
      ratios.push(p.latencyMs / (DEFAULT_LATENCY_MODEL.ttftMs + DEFAULT_LATENCY_MODEL.msPerToken * p.lengths[0]!));
    }
    const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    expect(mean).toBeGreaterThan(0.97);
    expect(mean).toBeLessThan(1.03);
    expect(Math.min(...ratios)).toBeLessThan(0.8);
    expect(Math.max(...ratios)).toBeGreaterThan(1.25);
  });

  test('over HTTP: answers after the planned latency with n choices, the boxed sum, usage and truncation', async () => {
    const model: LatencyModel = {
      ttftMs: 30,
      msPerToken: 2,
      noiseSigma: 0,
      lengthMedian: 60,
      lengthSigma: 0.8,
      seed: 3,
    };
    const ep = await startLatencyModelEndpoint(model);
    try {
      const client = new OpenAI({ baseURL: ep.url, apiKey: 'x', maxRetries: 0 });
      const prompt = 'Compute 47+85.';
      const plan = planRequest(model, { prompt, seed: 11, n: 3, maxTokens: 64 });
      const t0 = performance.now();
      const res = await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: prompt }],
        n: 3,
        max_tokens: 64,
        seed: 11,
      });
      const elapsed = performance.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(plan.latencyMs - 2);
      expect(res.choices).toHaveLength(3);
      res.choices.forEach((c, i) => {
        expect(c.message.content).toMatch(/^<think>\n[\s\S]*\n<\/think>\nThe answer is \$\\boxed\{132\}\$\.$/);
        expect(c.finish_reason).toBe(plan.truncated[i] ? 'length' : 'stop');
      });
      expect(res.usage?.completion_tokens).toBe(
        res.choices.reduce((s, c) => s + Math.ceil(c.message.content!.length / 4), 0),
      );
      expect(ep.stats()).toMatchObject({ requests: 1, choices: 3 });
    } finally {
      await ep.close();
    }
  });
});

describe('policy rows of the math corpus', () => {
  const row = (response: string, gold: string, category = 'x'): CorpusRow => ({
    response,
    gold,
    label: false,
    category,
  });
  test.each([
    [row('\\boxed{\\angle ABC}', '\\angle ABC', 'unparseable_gold'), 'identical_unparseable'],
    [row('\\boxed{\\frac12}', '\\int_0^1 x\\,dx', 'unparseable_gold'), 'integral'],
    [row('<think>so 60</think> The answer is \\boxed{60}', '60^\\circ'), 'degrees'],
    [row('\\boxed{x > 3}', '(3,\\infty)'), 'inequality_vs_interval'],
    [row('\\boxed{(1,2)}', '\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}'), 'vector_vs_tuple'],
    [row('\\boxed{1, 2}', '(1, 2)'), 'tuple_vs_list'],
    [row('\\boxed{\\{1, 2, 2\\}}', '\\{1, 2\\}'), 'multiset'],
    [row('\\boxed{3 1/4}', '3.25'), 'mixed_number_text'],
  ])('%j is a policy row (%s)', (r, why) => {
    expect(policyReason(r)).toBe(why);
  });
  test.each([
    row('\\boxed{4}', '\\mathcal{O}(4)', 'unparseable_gold'),
    row('<think>maybe 60 degrees</think> The answer is \\boxed{\\frac{1}{2}}', '\\frac12'),
    row('\\boxed{(1,2]}', '(1,2)'),
    row('\\boxed{\\{2, 1\\}}', '\\{1, 2\\}'),
    row('\\boxed{2(k+1)}', '2k+2'),
  ])('%j is not', (r) => {
    expect(policyReason(r)).toBeNull();
  });
});

describe('scoring drops against planted truth', () => {
  const truth = new Map<string, Truth>([
    ['e1', { kind: 'exact' }],
    ['n1', { kind: 'near', jaccard: 0.9 }],
    ['n2', { kind: 'near', jaccard: 0.85 }],
    ['n3', { kind: 'near', jaccard: 0.7 }],
    ['o1', { kind: 'original' }],
    ['o2', { kind: 'original' }],
    ['h1', { kind: 'hard_negative' }],
  ]);
  const isDup = (r: string | undefined) => r === 'duplicate' || r === 'near_duplicate';
  const positive = (t: Truth) => t.kind === 'exact' || (t.kind === 'near' && t.jaccard! >= 0.8);
  const ambiguous = (t: Truth) => t.kind === 'near' && t.jaccard! < 0.8;

  test('misses lower recall, wrong drops lower precision, ambiguous rows count neither way', () => {
    const drops = new Map([
      ['e1', 'duplicate'],
      ['n1', 'near_duplicate'],
      ['n3', 'near_duplicate'],
      ['h1', 'near_duplicate'],
      ['o2', 'contaminated'],
    ]);
    const s = scoreDrops(truth, drops, isDup, positive, ambiguous);
    expect(s).toMatchObject({ tp: 2, fp: 1, fn: 1, ambiguousDropped: 1 });
    expect(s.precision).toBeCloseTo(2 / 3);
    expect(s.recall).toBeCloseTo(2 / 3);
  });

  test('dropping nothing has recall 0, not a pass', () => {
    expect(scoreDrops(truth, new Map(), isDup, positive, ambiguous).recall).toBe(0);
  });
});
