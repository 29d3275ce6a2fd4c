import {
  ArithOp,
  HELDOUT_PERCENT,
  computeAnswer,
  countCarries,
  extractBoxedAnswer,
  generateArithmeticProblems,
  mulberry32,
  parseArithmeticPrompt,
  solveWithReasoning,
  splitOf,
  traceColumnArithmetic,
} from '../../activities/dataset/arithmetic-task';

describe('solveWithReasoning', () => {
  it('matches the documented format', () => {
    expect(solveWithReasoning(47, '+', 85)).toBe(
      '<think>7+5=12, write 2 carry 1. 4+8+1=13, write 13.</think>\nThe answer is \\boxed{132}.',
    );
    expect(solveWithReasoning(12, '+', 13)).toBe(
      '<think>2+3=5, write 5. 1+1=2, write 2.</think>\nThe answer is \\boxed{25}.',
    );
    expect(solveWithReasoning(85, '-', 47)).toBe(
      '<think>15-7=8, write 8 borrow 1. 8-4-1=3, write 3.</think>\nThe answer is \\boxed{38}.',
    );
    expect(solveWithReasoning(85, '-', 80)).toBe(
      '<think>5-0=5, write 5. 8-8=0, write 0.</think>\nThe answer is \\boxed{5}.',
    );
    expect(solveWithReasoning(123, '+', 9)).toBe(
      '<think>3+9=12, write 2 carry 1. 2+0+1=3, write 3. 1+0=1, write 1.</think>\nThe answer is \\boxed{132}.',
    );
    expect(solveWithReasoning(3, '-', 5)).toBe(
      '<think>3<5, so compute 5-3 and negate. 5-3=2, write 2.</think>\nThe answer is \\boxed{-2}.',
    );
    expect(solveWithReasoning(100, '-', 1)).toContain('\\boxed{99}');
  });

  it('is correct on all 2-digit additions (10..99 x 10..99)', () => {
    let bad = 0;
    let maxLen = 0;
    for (let a = 10; a <= 99; a++) {
      for (let b = 10; b <= 99; b++) {
        const text = solveWithReasoning(a, '+', b);
        if (extractBoxedAnswer(text) !== String(a + b)) bad++;
        maxLen = Math.max(maxLen, Buffer.byteLength(text));
      }
    }
    expect(bad).toBe(0);
    expect(maxLen).toBeLessThan(100); // compact: fits a 256-byte context with the prompt
  });

  it('is correct on all 2-digit subtractions with a >= b', () => {
    let bad = 0;
    for (let a = 10; a <= 99; a++) {
      for (let b = 10; b <= a; b++) {
        if (extractBoxedAnswer(solveWithReasoning(a, '-', b)) !== String(a - b)) bad++;
      }
    }
    expect(bad).toBe(0);
  });

  it('is correct on random multi-digit operands', () => {
    const rng = mulberry32(7);
    for (let i = 0; i < 2000; i++) {
      const a = Math.floor(rng() * 1e7);
      const b = Math.floor(rng() * 1e7);
      const op: ArithOp = rng() < 0.5 ? '+' : '-';
      expect(extractBoxedAnswer(solveWithReasoning(a, op, b))).toBe(String(computeAnswer(a, op, b)));
    }
  });

  it('any injected mistake yields a wrong answer', () => {
    const rng = mulberry32(11);
    let mistakes = 0;
    for (let i = 0; i < 5000; i++) {
      const op: ArithOp = rng() < 0.5 ? '+' : '-';
      let a = Math.floor(rng() * 10000);
      let b = Math.floor(rng() * 10000);
      if (op === '-' && a < b) [a, b] = [b, a];
      const t = traceColumnArithmetic(a, op, b, {
        mistakeAt: (ctx) =>
          rng() < 0.3
            ? ctx.carryIn && rng() < 0.5
              ? { kind: 'forgot-carry' }
              : { kind: 'off-by-one', delta: rng() < 0.5 ? 1 : -1 }
            : null,
      });
      if (t.mistakes.length > 0) {
        mistakes++;
        expect(t.answer).not.toBe(String(computeAnswer(a, op, b)));
      } else {
        expect(t.answer).toBe(String(computeAnswer(a, op, b)));
      }
    }
    expect(mistakes).toBeGreaterThan(1000);
  });
});

describe('generateArithmeticProblems', () => {
  it('is deterministic from the seed and has the documented shape', () => {
    const p1 = generateArithmeticProblems({ seed: 42, count: 50, split: 'train' });
    const p2 = generateArithmeticProblems({ seed: 42, count: 50, split: 'train' });
    const p3 = generateArithmeticProblems({ seed: 43, count: 50, split: 'train' });
    expect(p1).toEqual(p2);
    expect(p1.map((p) => p.id)).not.toEqual(p3.map((p) => p.id));
    expect(new Set(p1.map((p) => p.id)).size).toBe(50);
    for (const p of p1) {
      const parsed = parseArithmeticPrompt(p.prompt)!;
      expect(parsed.op).toBe('+');
      expect(p.id).toBe(`arith-${parsed.a}+${parsed.b}`);
      expect(p.prompt).toBe(`Compute ${parsed.a}+${parsed.b}.`);
      expect(parsed.a).toBeGreaterThanOrEqual(10);
      expect(parsed.a).toBeLessThanOrEqual(99);
      expect(p.answer).toBe(String(parsed.a + parsed.b));
      expect(p.difficulty).toBe(countCarries(parsed.a, '+', parsed.b));
      expect(extractBoxedAnswer(solveWithReasoning(parsed.a, parsed.op, parsed.b))).toBe(p.answer);
    }
  });

  it('train and heldout are disjoint whatever the seeds, including commuted pairs', () => {
    const train = new Set<string>();
    for (const seed of [1, 2, 3]) {
      for (const p of generateArithmeticProblems({ seed, count: 2000, split: 'train', ops: ['+', '-'] }))
        train.add(p.id);
    }
    const heldout = generateArithmeticProblems({ seed: 99, count: 1500, split: 'heldout', ops: ['+', '-'] });
    for (const p of heldout) {
      expect(train.has(p.id)).toBe(false);
      const { a, op, b } = parseArithmeticPrompt(p.prompt)!;
      expect(splitOf(a, op, b)).toBe('heldout');
      if (op === '+') expect(splitOf(b, '+', a)).toBe('heldout');
      if (op === '-') expect(a).toBeGreaterThanOrEqual(b);
    }
    // The heldout fraction of the full 2-digit '+' space is close to HELDOUT_PERCENT.
    let h = 0;
    for (let a = 10; a <= 99; a++) for (let b = 10; b <= 99; b++) if (splitOf(a, '+', b) === 'heldout') h++;
    expect(Math.abs((100 * h) / 8100 - HELDOUT_PERCENT)).toBeLessThan(4);
  });

  it('supports other digit counts and rejects impossible counts', () => {
    const big = generateArithmeticProblems({ seed: 5, count: 100, split: 'heldout', digits: 4, ops: ['-'] });
    expect(big).toHaveLength(100);
    for (const p of big) {
      const { a, b } = parseArithmeticPrompt(p.prompt)!;
      expect(a).toBeGreaterThanOrEqual(1000);
      expect(b).toBeLessThanOrEqual(a);
      expect(p.answer).toBe(String(a - b));
    }
    expect(generateArithmeticProblems({ seed: 5, count: 100, split: 'heldout', digits: 4, ops: ['-'] })).toEqual(big);
    const one = generateArithmeticProblems({ seed: 1, count: 10, split: 'train', digits: 1 });
    expect(one.every((p) => /^Compute \d\+\d\.$/.test(p.prompt))).toBe(true);
    expect(() => generateArithmeticProblems({ seed: 1, count: 100, split: 'heldout', digits: 1 })).toThrow(RangeError);
    expect(generateArithmeticProblems({ seed: 1, count: 0, split: 'train' })).toEqual([]);
  });
});

describe('prompt parsing helpers', () => {
  it('parses questions and boxed answers', () => {
    expect(parseArithmeticPrompt('Compute 47+85.')).toEqual({ a: 47, op: '+', b: 85 });
    expect(parseArithmeticPrompt('compute 85 - 47')).toEqual({ a: 85, op: '-', b: 47 });
    expect(parseArithmeticPrompt('12-3=?')).toEqual({ a: 12, op: '-', b: 3 });
    expect(parseArithmeticPrompt('What is the capital of France?')).toBeNull();
    expect(parseArithmeticPrompt('Meet me on 2024-10 please')).toBeNull();
    expect(extractBoxedAnswer('x \\boxed{1} y \\boxed{ 42 }.')).toBe('42');
    expect(extractBoxedAnswer('no answer')).toBeNull();
  });
});
