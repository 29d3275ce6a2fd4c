import {
  benchmarkMetrics,
  consAtK,
  defaultPassKs,
  lengthStats,
  majorityVote,
  meanWithStderr,
  outcomeCounts,
  passAt1,
  passAtK,
  passAtKUnbiased,
  quantile,
  type ItemSamples,
  type Vote,
} from '../../activities/evaluate/metrics';

/** Every expected value below is computed by hand in the comment next to it. */

describe('unbiased pass@k (Chen et al. 2021)', () => {
  test.each([
    // n, c, k, expected
    // 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7   (product form: (1-2/4)(1-2/5) = 0.5·0.6 = 0.3 → 0.7)
    [5, 2, 2, 0.7],
    // k = 1 is plain accuracy: 1 - C(3,1)/C(4,1) = 1 - 3/4 = 0.25 = c/n
    [4, 1, 1, 0.25],
    // 1 - C(7,5)/C(10,5) = 1 - 21/252 = 1 - 1/12 = 11/12
    [10, 3, 5, 11 / 12],
    // n - c = 1 < k = 2: every pair holds a correct sample → 1
    [3, 2, 2, 1],
    // no correct sample → 0
    [6, 0, 3, 0],
    // all correct → 1
    [4, 4, 4, 1],
    // k = n with one correct: the only k-subset is all samples → 1
    [5, 1, 5, 1],
    // C(199,100)/C(200,100) = (200-100)/200 = 1/2 → 0.5 (binomials of ~1e59: the product form needs none)
    [200, 1, 100, 0.5],
    // C(1998,1000)/C(2000,1000) = (1000·999)/(2000·1999) = 999/3998 → 1 - 999/3998 = 2999/3998
    [2000, 2, 1000, 2999 / 3998],
  ])('n=%i c=%i k=%i → %f', (n, c, k, expected) => {
    expect(passAtKUnbiased(n, c, k)).toBeCloseTo(expected, 12);
  });

  test('rejects k > n, c > n, non-integers', () => {
    expect(() => passAtKUnbiased(3, 1, 4)).toThrow(RangeError);
    expect(() => passAtKUnbiased(3, 4, 1)).toThrow(RangeError);
    expect(() => passAtKUnbiased(3, 1, 0)).toThrow(RangeError);
    expect(() => passAtKUnbiased(3.5, 1, 1)).toThrow(RangeError);
  });

  test('over items: mean of per-item estimates with the standard error across items', () => {
    const correct = [
      [true, false, true, false], // n=4 c=2: pass@2 = 1 - C(2,2)/C(4,2) = 1 - 1/6 = 5/6
      [false, false, false, false], // 0
      [true, true, true, true], // 1
    ];
    // mean = (5/6 + 0 + 1)/3 = 11/18
    // deviations from 11/18: 4/18, -11/18, 7/18 → squares (16 + 121 + 49)/324 = 186/324
    // sample variance = 186/324/2 = 93/324; s.e. = √(93/324/3) = √31/18
    const e = passAtK(correct, 2);
    expect(e.mean).toBeCloseTo(11 / 18, 12);
    expect(e.stderr).toBeCloseTo(Math.sqrt(31) / 18, 12);
    // k = 1 equals pass@1: per item 0.5, 0, 1 → mean 0.5; squares 0 + .25 + .25 = .5; var .25; s.e. √(.25/3)
    expect(passAtK(correct, 1).mean).toBeCloseTo(0.5, 12);
    expect(passAtK(correct, 1).stderr).toBeCloseTo(Math.sqrt(0.25 / 3), 12);
    expect(passAt1(correct)).toEqual(passAtK(correct, 1));
    expect(() => passAtK([[true], [true, false]], 2)).toThrow(/item 0 has only 1/);
  });

  test('default k values: 1, powers of two, n', () => {
    expect(defaultPassKs(8)).toEqual([1, 2, 4, 8]);
    expect(defaultPassKs(6)).toEqual([1, 2, 4, 6]);
    expect(defaultPassKs(1)).toEqual([1]);
    expect(defaultPassKs(0)).toEqual([]);
  });
});

describe('cons@k (majority vote)', () => {
  const v = (answer: string | null, correct = false): Vote => ({ answer, correct });

  test('a clear majority wins', () => {
    expect(majorityVote([v('7', true), v('7', true), v('8')])).toBe(1); // 7 has 2 votes, 8 has 1 → 7 (correct)
    expect(majorityVote([v('8'), v('7', true), v('8')])).toBe(0); // 8 has 2 votes → wrong
  });

  test('ties: fractional by default, earliest sample with "first"', () => {
    // 7 (correct) and 8 (wrong) one vote each: 1 of 2 tied answers correct → 0.5
    expect(majorityVote([v('7', true), v('8')])).toBe(0.5);
    // 'first': the answer seen first wins; 7 came first → 1, 8 came first → 0
    expect(majorityVote([v('7', true), v('8')], 'first')).toBe(1);
    expect(majorityVote([v('8'), v('7', true)], 'first')).toBe(0);
    // three-way tie, one correct → 1/3
    expect(majorityVote([v('a', true), v('b'), v('c')])).toBeCloseTo(1 / 3, 12);
    // two wrong answers tie at 2 votes, the correct one has 1 → 0 either way
    const votes = [v('5'), v('5'), v('6'), v('6'), v('7', true)];
    expect(majorityVote(votes)).toBe(0);
    expect(majorityVote(votes, 'first')).toBe(0);
    // ties are decided by the first vote of each answer, not the last: 9 (first at 0) vs 4 (first at 1)
    expect(majorityVote([v('9', true), v('4'), v('4'), v('9', true)], 'first')).toBe(1);
  });

  test('samples with no answer do not vote', () => {
    expect(majorityVote([v(null), v(null), v('9', true)])).toBe(1); // the only vote is 9
    expect(majorityVote([v(null), v(null)])).toBe(0); // nobody answered → 0
    // 3 nulls, then 3 (wrong) and 4 (correct) tie at 1 → 0.5
    expect(majorityVote([v(null), v(null), v(null), v('3'), v('4', true)])).toBe(0.5);
  });

  test('over items: mean and standard error', () => {
    const items = [
      [v('1', true), v('1', true), v('2')], // 1
      [v('3', true), v('4')], // tie → 0.5
      [v('5'), v('6'), v('5')], // 0
    ];
    // per item 1, 0.5, 0 → mean 0.5; squares .25 + 0 + .25 = .5; variance .25; s.e. = √(.25/3)
    const e = consAtK(items);
    expect(e.mean).toBeCloseTo(0.5, 12);
    expect(e.stderr).toBeCloseTo(Math.sqrt(0.25 / 3), 12);
    // 'first': item 2 → 3 wins (first) → 1; per item 1, 1, 0 → mean 2/3; deviations 1/3, 1/3, -2/3 → squares 6/9;
    // variance 1/3; s.e. = √(1/9) = 1/3
    const f = consAtK(items, 'first');
    expect(f.mean).toBeCloseTo(2 / 3, 12);
    expect(f.stderr).toBeCloseTo(1 / 3, 12);
  });
});

describe('standard errors and lengths', () => {
  test('meanWithStderr', () => {
    expect(meanWithStderr([])).toEqual({ mean: 0, stderr: 0 });
    expect(meanWithStderr([0.3])).toEqual({ mean: 0.3, stderr: 0 });
    // [1,0,0,0]: mean 1/4; deviations 3/4, -1/4 ×3 → squares 9/16 + 3/16 = 12/16; variance 12/16/3 = 1/4;
    // s.e. = √(1/4 / 4) = 1/4
    const e = meanWithStderr([1, 0, 0, 0]);
    expect(e.mean).toBeCloseTo(0.25, 12);
    expect(e.stderr).toBeCloseTo(0.25, 12);
  });

  test('quantiles interpolate between closest ranks (type 7)', () => {
    // [1,2,3,4]: median at h = 3·0.5 = 1.5 → 2 + 0.5·(3-2) = 2.5; p90 at h = 2.7 → 3 + 0.7·(4-3) = 3.7
    expect(quantile([4, 1, 3, 2], 0.5)).toBeCloseTo(2.5, 12);
    expect(quantile([4, 1, 3, 2], 0.9)).toBeCloseTo(3.7, 12);
    expect(quantile([5], 0.9)).toBe(5);
  });

  test('lengthStats', () => {
    // [10,20,30,40,100]: mean 200/5 = 40; median x[2] = 30; p90 at h = 4·0.9 = 3.6 → 40 + 0.6·(100-40) = 76
    // deviations -30,-20,-10,0,60 → squares 900+400+100+0+3600 = 5000; variance 5000/4 = 1250; s.e. √(1250/5) = √250
    const s = lengthStats([100, 10, 40, 20, 30]);
    expect(s).toEqual({
      count: 5,
      mean: 40,
      stderr: expect.any(Number),
      median: 30,
      p90: expect.any(Number),
      min: 10,
      max: 100,
    });
    expect(s.p90).toBeCloseTo(76, 12);
    expect(s.stderr).toBeCloseTo(Math.sqrt(250), 12);
    expect(lengthStats([])).toEqual({ count: 0, mean: 0, stderr: 0, median: 0, p90: 0, min: 0, max: 0 });
  });
});

describe('benchmarkMetrics', () => {
  const s = (correct: boolean, answer: string | null, chars: number, truncated = false) => ({
    correct,
    answer,
    chars,
    truncated,
  });
  const items: ItemSamples[] = [
    { id: 'a', difficulty: 0, samples: [s(true, '1', 10), s(true, '1', 20)] }, // pass1 1, cons 1, pass@2 1
    { id: 'b', difficulty: 0, samples: [s(false, '5', 30), s(true, '2', 40)] }, // pass1 .5, cons tie .5, pass@2 1
    { id: 'c', difficulty: 1, samples: [s(false, null, 50, true), s(false, '9', 60)] }, // 0, 0, 0
    { id: 'd', samples: [s(true, '3', 70), s(false, '4', 80)] }, // no difficulty: overall only; .5, .5, 1
  ];

  test('overall and by difficulty', () => {
    const m = benchmarkMetrics(items);
    expect(m.items).toBe(4);
    expect(m.samples).toBe(8);
    expect(m.k).toBe(2);
    expect(m.truncated).toBe(1);
    // pass@1 per item 1, .5, 0, .5 → mean 0.5; squares .25 + 0 + .25 + 0 = .5; variance .5/3; s.e. √(.5/3/4)
    expect(m.pass1.mean).toBeCloseTo(0.5, 12);
    expect(m.pass1.stderr).toBeCloseTo(Math.sqrt(0.5 / 3 / 4), 12);
    // pass@2 per item 1, 1, 0, 1 → mean 3/4
    expect(Object.keys(m.passAtK)).toEqual(['1', '2']);
    expect(m.passAtK['2']!.mean).toBeCloseTo(0.75, 12);
    // cons@2 per item 1, .5, 0, .5 → 0.5
    expect(m.consAtK.mean).toBeCloseTo(0.5, 12);
    // lengths 10..80: mean 45, median (40+50)/2 = 45, p90 at h = 7·0.9 = 6.3 → 70 + 0.3·10 = 73
    expect(m.answerChars.mean).toBeCloseTo(45, 12);
    expect(m.answerChars.median).toBeCloseTo(45, 12);
    expect(m.answerChars.p90).toBeCloseTo(73, 12);

    expect(Object.keys(m.byDifficulty)).toEqual(['0', '1']);
    const d0 = m.byDifficulty['0']!;
    // difficulty 0: items a, b → pass@1 (1 + .5)/2 = .75; cons (1 + .5)/2 = .75; pass@2 1
    expect(d0.items).toBe(2);
    expect(d0.pass1.mean).toBeCloseTo(0.75, 12);
    expect(d0.consAtK.mean).toBeCloseTo(0.75, 12);
    expect(d0.passAtK['2']!.mean).toBe(1);
    const d1 = m.byDifficulty['1']!;
    expect(d1.items).toBe(1);
    expect(d1.pass1).toEqual({ mean: 0, stderr: 0 });
    expect(d1.truncated).toBe(1);
  });

  test('samples by outcome: correct, incorrect (an answer was found), no answer found; they add up to the samples', () => {
    const m = benchmarkMetrics(items);
    expect(m.outcomes).toEqual({ correct: 4, incorrect: 3, noAnswer: 1 });
    expect(m.byDifficulty['1']!.outcomes).toEqual({ correct: 0, incorrect: 1, noAnswer: 1 });
    expect(outcomeCounts([])).toEqual({ correct: 0, incorrect: 0, noAnswer: 0 });
  });

  test('explicit ks above k are dropped', () => {
    expect(Object.keys(benchmarkMetrics(items, { ks: [1, 2, 8] }).passAtK)).toEqual(['1', '2']);
  });
});
