import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import {
  decideGate,
  decidePromotion,
  scoresByBenchmark,
  type GatePolicy,
  type GateScore,
  type Incumbent,
} from '../../core/gate';
import {
  getPromoted,
  promote,
  promotedPath,
  PromotionConflict,
  readIncumbent,
  readPromoted,
  writePromoted,
} from '../../activities/evaluate/promoted';

const s = (mean: number, stderr = 0): GateScore => ({ mean, stderr });

describe('decideGate', () => {
  const policy: GatePolicy = { primary: 'arith', minImprovement: 0.05, maxRegression: 0.02 };
  type Row = [string, GatePolicy, Record<string, GateScore>, Record<string, GateScore>, boolean, string[]];
  const rows: Row[] = [
    // name, policy, baseline, candidate, promote, failed checks (benchmark:check)
    ['clear win, no other benchmark', policy, { arith: s(0.2) }, { arith: s(0.6) }, true, []],
    [
      'improvement exactly δ passes (0.35 − 0.30 in floating point is 0.04999…)',
      policy,
      { arith: s(0.3) },
      { arith: s(0.35) },
      true,
      [],
    ],
    ['improvement below δ', policy, { arith: s(0.3) }, { arith: s(0.34) }, false, ['arith:primary_improvement']],
    [
      'worse on the primary: fails improvement and regression',
      policy,
      { arith: s(0.5) },
      { arith: s(0.4) },
      false,
      ['arith:primary_improvement', 'arith:no_regression'],
    ],
    [
      'another benchmark drops by exactly ε: allowed',
      policy,
      { arith: s(0.2), gsm8k: s(0.5) },
      { arith: s(0.6), gsm8k: s(0.48) },
      true,
      [],
    ],
    [
      'another benchmark drops by more than ε',
      policy,
      { arith: s(0.2), gsm8k: s(0.5) },
      { arith: s(0.6), gsm8k: s(0.47) },
      false,
      ['gsm8k:no_regression'],
    ],
    [
      'another benchmark improves: fine',
      policy,
      { arith: s(0.2), gsm8k: s(0.5) },
      { arith: s(0.6), gsm8k: s(0.7) },
      true,
      [],
    ],
    [
      'candidate not scored on a baseline benchmark: fail closed',
      policy,
      { arith: s(0.2), gsm8k: s(0.5) },
      { arith: s(0.6) },
      false,
      ['gsm8k:present'],
    ],
    [
      'extra candidate benchmark without a baseline: ignored',
      policy,
      { arith: s(0.2) },
      { arith: s(0.6), new: s(0.1) },
      true,
      [],
    ],
    ['no primary score', policy, { gsm8k: s(0.5) }, { gsm8k: s(0.5) }, false, ['arith:present']],
    ['primary missing on the candidate', policy, { arith: s(0.2) }, {}, false, ['arith:present']],
    // z: Δ = 0.10, s.e.(Δ) = √(0.03² + 0.04²) = 0.05; z = 1.96 needs Δ > 0.098 → pass
    ['significant at z = 1.96', { ...policy, z: 1.96 }, { arith: s(0.4, 0.03) }, { arith: s(0.5, 0.04) }, true, []],
    // z = 2.5 needs Δ > 0.125 → fail, though Δ ≥ δ
    [
      'not significant at z = 2.5',
      { ...policy, z: 2.5 },
      { arith: s(0.4, 0.03) },
      { arith: s(0.5, 0.04) },
      false,
      ['arith:primary_significance'],
    ],
    // no standard errors at all: the z check needs a strictly positive improvement
    [
      'z with zero standard errors and δ = 0, no change',
      { primary: 'arith', minImprovement: 0, z: 2 },
      { arith: s(0.5) },
      { arith: s(0.5) },
      false,
      ['arith:primary_significance'],
    ],
    [
      'δ = 0 without z: a tie promotes',
      { primary: 'arith', minImprovement: 0 },
      { arith: s(0.5) },
      { arith: s(0.5) },
      true,
      [],
    ],
    // default ε is 0.01: a 0.011 drop elsewhere fails
    [
      'default ε = 0.01',
      { primary: 'arith' },
      { arith: s(0.2), math: s(0.3) },
      { arith: s(0.3), math: s(0.289) },
      false,
      ['math:no_regression'],
    ],
  ];

  test.each(rows)('%s', (_name, pol, baseline, candidate, expected, failed) => {
    const d = decideGate({ policy: pol, baseline, candidate });
    expect(d.promote).toBe(expected);
    expect(d.checks.filter((c) => !c.pass).map((c) => `${c.benchmark}:${c.check}`)).toEqual(failed);
    // one reason per check, after the headline
    expect(d.reasons).toHaveLength(d.checks.length + 1);
    expect(d.reasons[0]).toMatch(expected ? /^promote/ : /^keep the current model/);
  });

  test('reasons read as the decision was taken', () => {
    const d = decideGate({
      policy: { ...policy, z: 1.96 },
      baseline: { arith: s(0.4, 0.03), gsm8k: s(0.5) },
      candidate: { arith: s(0.5, 0.04), gsm8k: s(0.47) },
    });
    expect(d.reasons).toEqual([
      'keep the current model: 1 check(s) failed',
      'PASS arith: 40.00% → 50.00% (+10.00 pts), needs ≥ +5.00 pts',
      'PASS arith: improvement +10.00 pts vs 1.96 × s.e. 5.00 pts = +9.80 pts',
      'PASS arith: 40.00% → 50.00% (+10.00 pts), may drop at most 2.00 pts',
      'FAIL gsm8k: 50.00% → 47.00% (−3.00 pts), may drop at most 2.00 pts',
    ]);
  });

  test('rejects a nonsensical policy', () => {
    expect(() => decideGate({ policy: { primary: 'a', minImprovement: -1 }, baseline: {}, candidate: {} })).toThrow(
      RangeError,
    );
    expect(() =>
      decideGate({ policy: { primary: 'a', maxRegression: Number.NaN }, baseline: {}, candidate: {} }),
    ).toThrow(RangeError);
  });
});

test('scoresByBenchmark: one model pass@1 per benchmark from the evaluate result', () => {
  const score = (name: string, mean: number) => ({ name, pass1: s(mean, 0.01) });
  const result = {
    benchmark: 'arith',
    scores: [score('baseline', 0.1), score('student', 0.6)],
    benchmarks: [
      { name: 'arith', scores: [score('baseline', 0.1), score('student', 0.6)] },
      { name: 'gsm8k', scores: [score('baseline', 0.3), score('student', 0.25)] },
    ],
  };
  expect(scoresByBenchmark(result, 'student')).toEqual({ arith: s(0.6, 0.01), gsm8k: s(0.25, 0.01) });
  // an evaluate result from before `benchmarks`: the primary only
  expect(scoresByBenchmark({ benchmark: 'arith', scores: result.scores }, 'baseline')).toEqual({ arith: s(0.1, 0.01) });
  // decide on it: the student gains 50 points on arith but loses 5 on gsm8k (ε = 0.02) → not promoted
  const d = decideGate({
    policy: { primary: 'arith', minImprovement: 0.05, maxRegression: 0.02 },
    baseline: scoresByBenchmark(result, 'baseline'),
    candidate: scoresByBenchmark(result, 'student'),
  });
  expect(d.promote).toBe(false);
  expect(d.checks.filter((c) => !c.pass).map((c) => c.benchmark)).toEqual(['gsm8k']);
});

describe('decidePromotion: against the baseline and the promoted model', () => {
  const policy: GatePolicy = { primary: 'arith', minImprovement: 0.05, maxRegression: 0.02 };
  const base = { arith: s(0.1), gsm8k: s(0.3) };
  type Row = [string, GatePolicy, Record<string, GateScore>, Incumbent | null, boolean, string[]];
  const rows: Row[] = [
    // name, policy, candidate, incumbent, promote, failed checks (against:benchmark:check)
    ['nothing promoted yet: the baseline gate alone', policy, { arith: s(0.5), gsm8k: s(0.3) }, null, true, []],
    [
      'better than the promoted model',
      policy,
      { arith: s(0.5), gsm8k: s(0.3) },
      { runId: 'r1', scores: { arith: s(0.4), gsm8k: s(0.3) } },
      true,
      [],
    ],
    [
      'a tie with the promoted model promotes (δ is not asked of it)',
      policy,
      { arith: s(0.5), gsm8k: s(0.3) },
      { runId: 'r1', scores: { arith: s(0.5), gsm8k: s(0.3) } },
      true,
      [],
    ],
    [
      'beats its baseline but is weaker than the promoted model',
      policy,
      { arith: s(0.5), gsm8k: s(0.3) },
      { runId: 'r1', scores: { arith: s(0.51), gsm8k: s(0.3) } },
      false,
      ['promoted:arith:primary_improvement'],
    ],
    [
      'loses more than ε to the promoted model elsewhere',
      policy,
      { arith: s(0.5), gsm8k: s(0.3) },
      { runId: 'r1', scores: { arith: s(0.4), gsm8k: s(0.33) } },
      false,
      ['promoted:gsm8k:no_regression'],
    ],
    [
      'the promoted model could not be scored: fail closed',
      policy,
      { arith: s(0.5), gsm8k: s(0.3) },
      { runId: 'r1', unavailable: 'gone' },
      false,
      ['promoted:arith:present'],
    ],
    [
      'still fails its baseline gate when better than the promoted model',
      policy,
      { arith: s(0.12), gsm8k: s(0.3) },
      { runId: 'r1', scores: { arith: s(0.05), gsm8k: s(0.3) } },
      false,
      ['baseline:arith:primary_improvement'],
    ],
    // z is the bar against the baseline only: Δ vs baseline 0.4 with s.e. 0.05 is significant; the tie with the incumbent passes
    [
      'z applies to the baseline, not to the promoted model',
      { ...policy, z: 1.96 },
      { arith: s(0.5, 0.04), gsm8k: s(0.3) },
      { runId: 'r1', scores: { arith: s(0.5, 0.04), gsm8k: s(0.3) } },
      true,
      [],
    ],
  ];

  test.each(rows)('%s', (_name, pol, candidate, incumbent, expected, failed) => {
    const d = decidePromotion({
      policy: pol,
      baseline: { ...base, arith: s(0.1, pol.z ? 0.03 : 0) },
      candidate,
      incumbent,
    });
    expect(d.promote).toBe(expected);
    expect(d.checks.filter((c) => !c.pass).map((c) => `${c.against ?? 'baseline'}:${c.benchmark}:${c.check}`)).toEqual(
      failed,
    );
    expect(d.reasons).toHaveLength(d.checks.length + 1);
    expect(d.reasons[0]).toMatch(expected ? /^promote/ : /^keep the current model/);
    if (incumbent) expect(d.reasons.some((r) => r.includes('vs promoted r1'))).toBe(true);
  });
});

describe('the promoted pointer', () => {
  let root = '';
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'promoted-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test('written atomically under <artifactRoot>/promoted/<name>.json, keeps the one it replaced', async () => {
    expect(await readPromoted(root, 'arith/run')).toBeNull();
    const first = await writePromoted(root, {
      name: 'arith/run',
      runId: 'r1',
      modelDir: '/m/1',
      scores: { arith: s(0.5, 0.02) },
      promotedAt: '2025-01-01T00:00:00.000Z',
    });
    expect(promotedPath(root, 'arith/run')).toBe(path.join(root, 'promoted', 'arith_run.json'));
    expect(first.ref.uri).toBe(`file://${path.join(root, 'promoted', 'arith_run.json')}`);
    expect(await readPromoted(root, 'arith/run')).toEqual({
      name: 'arith/run',
      runId: 'r1',
      modelDir: '/m/1',
      scores: { arith: s(0.5, 0.02) },
      promotedAt: '2025-01-01T00:00:00.000Z',
      previous: null,
    });
    await writePromoted(
      root,
      {
        name: 'arith/run',
        runId: 'r2',
        modelDir: '/m/2',
        scores: { arith: s(0.6) },
        promotedAt: '2025-01-02T00:00:00.000Z',
      },
      { expectPrevious: 'r1' },
    );
    const p = await readPromoted(root, 'arith/run');
    expect(p).toMatchObject({
      runId: 'r2',
      previous: { runId: 'r1', modelDir: '/m/1', promotedAt: '2025-01-01T00:00:00.000Z' },
    });
    // no temp files left beside it
    expect(fs.readdirSync(path.join(root, 'promoted'))).toEqual(['arith_run.json']);
  });

  test('a retry of the same run is idempotent; a concurrent promotion is refused', async () => {
    await writePromoted(root, { name: 'n', runId: 'r1', modelDir: '/m/1', scores: {} });
    await writePromoted(root, { name: 'n', runId: 'r2', modelDir: '/m/2', scores: {} }, { expectPrevious: 'r1' });
    // r2's activity retried: still r2, still pointing back at r1
    await writePromoted(root, { name: 'n', runId: 'r2', modelDir: '/m/2', scores: {} }, { expectPrevious: 'r1' });
    expect(await readPromoted(root, 'n')).toMatchObject({ runId: 'r2', previous: { runId: 'r1' } });
    // r3 decided against r1's scores, but r2 promoted meanwhile
    await expect(
      writePromoted(root, { name: 'n', runId: 'r3', modelDir: '/m/3', scores: {} }, { expectPrevious: 'r1' }),
    ).rejects.toThrow(PromotionConflict);
    await expect(
      writePromoted(root, { name: 'n', runId: 'r3', modelDir: '/m/3', scores: {} }, { expectPrevious: null }),
    ).rejects.toThrow(/promoted by r2 meanwhile/);
    expect((await readPromoted(root, 'n'))!.runId).toBe('r2');
    expect((await getPromoted({ artifactRoot: root, name: 'n' }))!.modelDir).toBe('/m/2');
    expect(await getPromoted({ artifactRoot: root, name: 'other' })).toBeNull();
  });

  test('promote(): writes the pointer only when the gate passes', async () => {
    const base = {
      artifactRoot: root,
      name: 'line',
      runId: 'r1',
      modelDir: '/m/1',
      policy: { primary: 'arith', minImprovement: 0.05 },
    };
    const no = await promote({ ...base, baseline: { arith: s(0.5) }, candidate: { arith: s(0.52) } });
    expect(no.promote).toBe(false);
    expect(no.pointer).toBeNull();
    expect(await readPromoted(root, 'line')).toBeNull();
    const yes = await promote({
      ...base,
      baseline: { arith: s(0.5) },
      candidate: { arith: s(0.7, 0.03) },
      evaluation: { k: 4, seed: 0 },
    });
    expect(yes.promote).toBe(true);
    expect(yes.pointer!.uri).toMatch(/promoted\/line\.json$/);
    const p = await readPromoted(root, 'line');
    expect(p).toMatchObject({
      runId: 'r1',
      modelDir: '/m/1',
      scores: { arith: s(0.7, 0.03) },
      gate: { reasons: yes.reasons },
      evaluation: { k: 4, seed: 0 },
    });
  });

  test('concurrent promotions with the same expectation: exactly one moves the pointer (compare-and-swap under a lock)', async () => {
    const tries = [...Array(8).keys()].map((i) =>
      writePromoted(
        root,
        { name: 'race', runId: `r${i}`, modelDir: `/m/${i}`, scores: {} },
        { expectPrevious: null },
      ).then(
        () => `r${i}`,
        (e: unknown) => e,
      ),
    );
    const results = await Promise.all(tries);
    const won = results.filter((r): r is string => typeof r === 'string');
    expect(won).toHaveLength(1);
    expect(results.filter((r) => r instanceof PromotionConflict)).toHaveLength(7);
    expect((await readPromoted(root, 'race'))!.runId).toBe(won[0]);
    expect(fs.readdirSync(path.join(root, 'promoted'))).toEqual(['race.json']);
  });

  test('a stale lock left by a dead writer is broken; a live one is waited for', async () => {
    const file = promotedPath(root, 'stale');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(`${file}.lock`, '');
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(`${file}.lock`, old, old);
    await writePromoted(root, { name: 'stale', runId: 'r1', modelDir: '/m/1', scores: {} }, { expectPrevious: null });
    expect((await readPromoted(root, 'stale'))!.runId).toBe('r1');
    fs.writeFileSync(`${file}.lock`, '');
    const waiting = writePromoted(
      root,
      { name: 'stale', runId: 'r2', modelDir: '/m/2', scores: {} },
      { expectPrevious: 'r1' },
    );
    await new Promise((r) => setTimeout(r, 300));
    expect((await readPromoted(root, 'stale'))!.runId).toBe('r1');
    fs.rmSync(`${file}.lock`);
    await waiting;
    expect((await readPromoted(root, 'stale'))!.runId).toBe('r2');
  });

  test('promote(): a conflict fails non-retryably as PromotionConflict and leaves the pointer alone', async () => {
    await writePromoted(root, { name: 'line', runId: 'other', modelDir: '/m/other', scores: { arith: s(0.3) } });
    const input = {
      artifactRoot: root,
      name: 'line',
      runId: 'r2',
      modelDir: '/m/2',
      policy: { primary: 'arith', minImprovement: 0 },
      baseline: { arith: s(0.1) },
      candidate: { arith: s(0.6) },
    };
    const err = await promote({
      ...input,
      incumbent: { runId: 'r1', scores: { arith: s(0.5) } },
      expectPrevious: 'r1',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({
      type: 'PromotionConflict',
      nonRetryable: true,
      message: expect.stringMatching(/promoted by other meanwhile \(expected r1\)/),
    });
    expect((await readPromoted(root, 'line'))!.runId).toBe('other');
    // with the right expectation it promotes, and records how the student is served
    const ok = await promote({
      ...input,
      incumbent: { runId: 'other', scores: { arith: s(0.3) } },
      expectPrevious: 'other',
      student: { kind: 'tiny' },
    });
    expect(ok.promote).toBe(true);
    expect(await readPromoted(root, 'line')).toMatchObject({
      runId: 'r2',
      student: { kind: 'tiny' },
      previous: { runId: 'other' },
    });
  });

  test('readIncumbent: how to serve the promoted model, inferred for old pointers, unavailable when its files are gone', async () => {
    expect(await readIncumbent({ artifactRoot: root, name: 'none' })).toBeNull();
    const tiny = path.join(root, 'runs', 'a', 'model');
    fs.mkdirSync(tiny, { recursive: true });
    fs.writeFileSync(path.join(tiny, 'model.onnx'), 'onnx');
    await writePromoted(root, { name: 'old', runId: 'a', modelDir: tiny, scores: {} });
    expect(await readIncumbent({ artifactRoot: root, name: 'old' })).toEqual({
      runId: 'a',
      modelDir: tiny,
      student: { kind: 'tiny' },
    });
    const hf = path.join(root, 'runs', 'b', 'model');
    fs.mkdirSync(hf, { recursive: true });
    fs.writeFileSync(path.join(hf, 'model.gguf'), 'gguf');
    await writePromoted(root, { name: 'hf', runId: 'b', modelDir: hf, scores: {}, student: { kind: 'hf' } });
    expect(await readIncumbent({ artifactRoot: root, name: 'hf' })).toEqual({
      runId: 'b',
      modelDir: hf,
      student: { kind: 'hf', gguf: path.join(hf, 'model.gguf') },
    });
    fs.rmSync(path.join(tiny, 'model.onnx'));
    expect(await readIncumbent({ artifactRoot: root, name: 'old' })).toMatchObject({
      runId: 'a',
      unavailable: expect.stringMatching(/neither model\.onnx nor model\.gguf/),
    });
    await writePromoted(root, {
      name: 'gone',
      runId: 'c',
      modelDir: path.join(root, 'nowhere'),
      scores: {},
      student: { kind: 'tiny' },
    });
    expect(await readIncumbent({ artifactRoot: root, name: 'gone' })).toMatchObject({
      unavailable: expect.stringMatching(/model\.onnx does not exist/),
    });
  });
});
