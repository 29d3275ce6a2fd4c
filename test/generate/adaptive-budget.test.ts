import { generateShard, shardSamplingFile } from '../../activities/generate/generate-shard';
import { layout } from '../../activities/artifacts/layout';
import { readJsonl } from '../../activities/artifacts/store';
import { runBudgetedWave, waveOrder, type BudgetedPrompt } from '../../activities/generate/adaptive-budget';
import { noProgress, type StopRecord } from '../../activities/generate/adaptive-sampling';
import { checkRunSpec, VerifierSchema } from '../../schemas/run-spec';
import { startSolveRateEndpoint, type SolveRateEndpoint } from '../../bench/sampling/solve-rate-endpoint';
import { shardDir, shardInput, shardRows } from '../helpers/shard-fixture';

// shardDir's prompts are "Compute 10+20.", "Compute 11+21.", …: prompt i is always solved when i % 3 = 0, half the
// time when i % 3 = 1 (promising), never when i % 3 = 2 (hopeless).
const rateOf = (prompt: string) => {
  const m = /Compute (\d+)\+/.exec(prompt);
  return m ? [1, 0.5, 0][(Number(m[1]) - 10) % 3] : undefined;
};

let teacher: SolveRateEndpoint;
// The same teacher (same answers) answering after 0-42 ms a request, so that rounds finish in another order.
let slow: SolveRateEndpoint;
beforeAll(async () => {
  teacher = await startSolveRateEndpoint({ solveRate: rateOf });
  slow = await startSolveRateEndpoint({
    solveRate: rateOf,
    delayMs: (prompt, seed) => ((seed ?? 0) + prompt.length) % 43,
  });
});
afterAll(async () => {
  await teacher.close();
  await slow.close();
});
beforeEach(() => {
  for (const t of [teacher, slow]) {
    t.log.length = 0;
    t.failAfter = undefined;
  }
});

// $1 per completion token (prompt tokens free): spend is counted in tokens.
const pricing = { inputPerMTokens: 0, outputPerMTokens: 1_000_000 };
const adaptive = { minSamples: 1, maxSamples: 8, roundSize: 2, stopAfterAccepted: 2 };
const input = (runDir: string, budgetUSD: number | undefined, teacherExtra: Record<string, unknown> = {}) => ({
  ...shardInput(
    runDir,
    { baseURL: teacher.url, model: 'solve-rate-sim', concurrency: 3, pricing, ...teacherExtra },
    { max_tokens: 4096, adaptive },
  ),
  verifier: VerifierSchema.parse({ type: 'math', keepPerPrompt: 2 }),
  ...(budgetUSD !== undefined ? { budget: { shareUSD: budgetUSD } } : {}),
});

async function stopsOf(runDir: string): Promise<StopRecord['stopped'][]> {
  const out: StopRecord['stopped'][] = [];
  for await (const s of readJsonl<StopRecord['stopped']>(shardSamplingFile(layout.shardSamples(runDir, 0))))
    out.push(s);
  return out;
}
const answeredKeys = (log: SolveRateEndpoint['log']) =>
  log.filter((r) => r.answered).map((r) => `${r.prompt}|${r.seed}|${r.n}`);
const spendOf = async (runDir: string) => (await shardRows(runDir)).reduce((t, r) => t + r.usage.completionTokens, 0);

/** What the same shard spends without a budget, and the cost of its most expensive round. */
async function unbudgeted(prompts: number) {
  const runDir = await shardDir(prompts);
  await generateShard(input(runDir, undefined));
  const rows = await shardRows(runDir);
  const rounds = new Map<string, number>();
  for (const r of rows) {
    const key = `${r.promptId}/${Math.floor(r.sampleIndex / adaptive.roundSize)}`;
    rounds.set(key, (rounds.get(key) ?? 0) + r.usage.completionTokens);
  }
  const firstRounds = [...rounds].filter(([k]) => k.endsWith('/0')).reduce((t, [, v]) => t + v, 0);
  return { spend: await spendOf(runDir), firstRounds, maxRound: Math.max(...rounds.values()) };
}

test('within a budget every prompt gets its first round, then promising prompts get rounds before hopeless ones', async () => {
  const free = await unbudgeted(12);
  // Enough for every first round and about a third of what the further rounds cost without a budget.
  const budget = free.firstRounds + (free.spend - free.firstRounds) / 3;
  const runDir = await shardDir(12);
  const r = await generateShard(input(runDir, budget));
  const stops = await stopsOf(runDir);
  expect(stops).toHaveLength(12);
  expect(stops.every((s) => s.drawn >= adaptive.roundSize)).toBe(true);
  const refused = stops.filter((s) => s.reason === 'budget');
  expect(refused.length).toBeGreaterThan(0);
  expect(r.adaptive?.stopped.budget).toBe(refused.length);
  // Priority: a prompt refused while promising (some correct) was never passed over for one with nothing correct.
  const hopeless = stops.filter((s) => s.accepted === 0);
  for (const p of refused.filter((s) => s.accepted > 0))
    for (const h of hopeless) expect(h.drawn).toBeLessThanOrEqual(p.drawn);
  // The spend, counted from the committed samples, stays within the budget plus at most one window of rounds.
  const spend = await spendOf(runDir);
  expect(spend).toBeLessThanOrEqual(budget + 3 * free.maxRound);
  expect(spend).toBeLessThan(free.spend);
  // Every prompt solved without a budget at the target is still solved (the easy ones stop in their first round).
  const easy = stops.filter((s) => Number(s.promptId.slice(1)) % 3 === 0);
  expect(easy.map((s) => s.reason)).toEqual(easy.map(() => 'target'));
  // Committed samples are exactly indices 0..drawn-1 of each prompt.
  const rows = await shardRows(runDir);
  expect(rows.length).toBe(stops.reduce((t, s) => t + s.drawn, 0));
});

test('a spent share stops every prompt before it asks anything', async () => {
  const runDir = await shardDir(4);
  const r = await generateShard(input(runDir, 0));
  expect(teacher.log).toHaveLength(0);
  expect(r.adaptive).toMatchObject({ drawn: 0, stopped: { budget: 4 } });
  expect(await shardRows(runDir)).toEqual([]);
});

test('a retry after a failure mid-wave makes the same budget decisions and asks no answered request again', async () => {
  const free = await unbudgeted(9);
  const budget = free.firstRounds + (free.spend - free.firstRounds) / 2;
  teacher.log.length = 0;
  const reference = await shardDir(9);
  await generateShard(input(reference, budget));
  const fullLog = answeredKeys(teacher.log);
  teacher.log.length = 0;

  const runDir = await shardDir(9);
  // Dies in the second wave, with rounds of it out: the retry replays the waves from the samples on disk.
  slow.failAfter = 11;
  const err = await generateShard(input(runDir, budget, { maxRetries: 0, baseURL: slow.url })).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect(answeredKeys(slow.log).length).toBe(11);
  slow.failAfter = undefined;
  await generateShard(input(runDir, budget, { maxRetries: 0, baseURL: slow.url }));
  const answered = answeredKeys(slow.log);
  expect(answered.length - new Set(answered).size).toBe(0);
  expect([...answered].sort()).toEqual([...fullLog].sort());
  const rows = await shardRows(runDir);
  expect(rows.length - new Set(rows.map((s) => s.id)).size).toBe(0);
  expect(rows.map((s) => [s.id, s.content])).toEqual((await shardRows(reference)).map((s) => [s.id, s.content]));
  expect(await stopsOf(runDir)).toEqual(await stopsOf(reference));
});

describe('a budgeted wave', () => {
  const plan = { minSamples: 1, maxSamples: 8, stopAfterAccepted: 2, roundSize: 2 };
  const prompt = (position: number, drawn: number, accepted: number): BudgetedPrompt => ({
    position,
    progress: { ...noProgress(), rounds: drawn / 2, drawn, accepted, completionTokens: 10 * drawn },
  });

  test('orders promising prompts by pass rate, then those with nothing correct, ties by position', () => {
    const order = waveOrder([prompt(0, 2, 0), prompt(1, 2, 1), prompt(2, 4, 1), prompt(3, 2, 0), prompt(4, 2, 2)]);
    expect(order.map((p) => p.position)).toEqual([4, 1, 2, 0, 3]);
  });

  test('decides the same whatever the timing, never has more than `concurrency` rounds out, and refuses in order', async () => {
    const wave = Array.from({ length: 40 }, (_, i) => prompt(i, 2, i % 2));
    const costOf = (p: BudgetedPrompt) => 5 + ((p.position * 7) % 11);
    const runOnce = async (delay: (p: BudgetedPrompt) => number) => {
      let out = 0;
      let most = 0;
      const ran: number[] = [];
      const refused: number[] = [];
      const spent = await runBudgetedWave(wave, {
        plan,
        concurrency: 4,
        budgetUSD: 300,
        spent: { usd: 50, samples: 10 },
        // The estimate (4 per round) is not what a round costs (5-15): a rule that read whichever rounds happen to
        // have finished would decide differently from one timing to the next.
        usdPerSample: () => 2,
        io: {
          run: async (p) => {
            most = Math.max(most, ++out);
            await new Promise((r) => setTimeout(r, delay(p)));
            out -= 1;
            ran.push(p.position);
            return { usd: costOf(p), samples: 2 };
          },
          refuse: async (p) => void refused.push(p.position),
        },
      });
      return { ran: ran.sort((a, b) => a - b), refused: refused.sort((a, b) => a - b), spent, most };
    };
    const a = await runOnce(() => 0);
    const b = await runOnce((p) => ((p.position * 13) % 7) * 3);
    const c = await runOnce((p) => (40 - p.position) % 5);
    expect(b.ran).toEqual(a.ran);
    expect(c.ran).toEqual(a.ran);
    expect(b.spent).toEqual(a.spent);
    for (const x of [a, b, c]) expect(x.most).toBeLessThanOrEqual(4);
    // Refusal is a cut: every prompt after the first refused one is refused too.
    expect(a.refused.length).toBeGreaterThan(0);
    expect(a.ran).toEqual([...Array(a.ran.length).keys()]);
    expect(a.spent.usd).toBeLessThanOrEqual(300 + 3 * 15);
    // By hand: round k goes out while 50 + the cost of rounds 0..k-4 + 4 per round still out (k-3..k-1) + 4 ≤ 300.
    let cut = 0;
    for (let k = 0, settled = 50; k < wave.length; k++) {
      if (k >= 4) settled += costOf(wave[k - 4]!);
      if (settled >= 300 || settled + 4 * Math.min(k, 3) + 4 > 300) break;
      cut = k + 1;
    }
    expect(a.ran).toHaveLength(cut);
  });

  test('a failing round stops new rounds and is rethrown once those out have ended', async () => {
    const wave = Array.from({ length: 10 }, (_, i) => prompt(i, 2, 1));
    let started = 0;
    let ended = 0;
    const err = await runBudgetedWave(wave, {
      plan,
      concurrency: 3,
      budgetUSD: 1e9,
      spent: { usd: 0, samples: 0 },
      usdPerSample: () => 1,
      io: {
        run: async (p) => {
          started += 1;
          await new Promise((r) => setTimeout(r, 5));
          ended += 1;
          if (p.position === 1) throw new Error('teacher down');
          return { usd: 2, samples: 2 };
        },
        refuse: async () => undefined,
      },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('teacher down');
    expect(ended).toBe(started);
    expect(started).toBeLessThan(10);
  });
});

test('spec: a budget without pricing is refused, naming the field', () => {
  const base = { name: 'b', dataset: { source: { type: 'builtin', task: 'arithmetic' } } };
  const bad = checkRunSpec({ ...base, teacher: { baseURL: 'http://127.0.0.1:1/v1', model: 'm', budgetUSD: 5 } });
  expect(bad.ok).toBe(false);
  if (!bad.ok) expect(bad.issues.map((i) => i.path)).toContain('teacher.budgetUSD');
  const ok = checkRunSpec({
    ...base,
    teacher: { baseURL: 'http://127.0.0.1:1/v1', model: 'm', budgetUSD: 5, pricing },
  });
  expect(ok.ok).toBe(true);
});
