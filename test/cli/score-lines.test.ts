import { scoreLines } from '../../cli/score-lines';
import { RunSpecSchema } from '../../schemas/run-spec';
import type { RunSummary } from '../../workflows/distillation';

const summary = {
  evaluation: {
    benchmark: 'arithmetic-2digit-heldout',
    items: 60,
    k: 2,
    scores: [
      { name: 'baseline', pass1: 0.05, stderr: 0.02, samples: 120, correct: 6, incorrect: 30, noAnswer: 84 },
      { name: 'student', pass1: 0.7, stderr: 0.05, samples: 120, correct: 84, incorrect: 36, noAnswer: 0 },
      { name: 'teacher', pass1: 0.9, stderr: 0.03, samples: 120, correct: 108, incorrect: 12, noAnswer: 0 },
    ],
  },
} as unknown as RunSummary;

const spec = (model: string) =>
  RunSpecSchema.parse({
    name: 'x',
    dataset: { source: { type: 'builtin', task: 'arithmetic', count: 10, seed: 1 } },
    teacher: { baseURL: 'http://127.0.0.1:1/v1', model },
    evaluation: {
      benchmark: { type: 'builtin', task: 'arithmetic', count: 60, seed: 2 },
      k: 2,
      temperature: 0.6,
      top_p: 0.95,
      maxNewTokens: 128,
      teacher: true,
    },
  });

test('the printed scores give every model correct / incorrect / no answer beside pass@1', () => {
  const lines = scoreLines(summary, spec('procedural-arithmetic-teacher'));
  expect(lines[0]).toContain('temperature 0.6, top_p 0.95, 128 new tokens');
  const row = (name: string) =>
    lines
      .find((l) => l.trim().startsWith(name))!
      .trim()
      .split(/\s+/);
  expect(row('baseline')).toEqual(['baseline', '5.0%', '±', '2.0', '6', '30', '84', '120']);
  expect(row('student')).toEqual(['student', '70.0%', '±', '5.0', '84', '36', '0', '120']);
});

test('with the procedural teacher the output says its score is a setting, not a measurement', () => {
  const note = scoreLines(summary, spec('procedural-arithmetic-teacher')).find((l) => l.startsWith('note:'))!;
  expect(note).toContain('procedural template teacher');
  expect(note).toContain('4.6% of column steps'); // 0.08 × 0.6 × 0.95
  expect(note).toMatch(/not a measurement/);
  expect(scoreLines(summary, spec('some-real-model')).some((l) => l.startsWith('note:'))).toBe(false);
});
