import { activityDetail, progressLine } from '../../cli/progress-line';
import type { RunProgress } from '../../workflows/messages';

test('the fine-tune and evaluate heartbeats read as a few words on the progress line', () => {
  expect(activityDetail('fineTune', { step: 23, total: 40, checkpoint: null, loss: 0.41234 })).toBe(
    'step 23/40 loss 0.412',
  );
  expect(activityDetail('fineTune', { step: 0, total: null, checkpoint: null, loss: null })).toBe('step 0');
  expect(activityDetail('openaiFineTune', { status: 'running', step: 3, loss: 1.5 })).toBe(
    'job running step 3 loss 1.500',
  );
  expect(activityDetail('evaluate', { model: 'student', benchmark: 'arith', sample: 1, done: 37 })).toBe(
    'student: 37 answers (sample 1)',
  );
  expect(
    activityDetail('evaluate', {
      model: 'student',
      benchmark: 'arith',
      sample: 1,
      done: 37,
      correct: 80,
      incorrect: 12,
      noAnswer: 5,
    }),
  ).toBe('student: 37 answers (sample 1): so far 80 correct / 12 incorrect / 5 no answer');
  expect(activityDetail('evaluate', { model: 'baseline', phase: 'opening engine' })).toBe('baseline: opening engine');
  expect(activityDetail('evaluate', { phase: 'starting' })).toBe('');
  expect(activityDetail('generateShard', { done: 3 })).toBe('');
  expect(activityDetail('fineTune', null)).toBe('');
});

test('the progress line carries the stage, the counts and the acceptance rate', () => {
  const p = {
    stage: 'finetune',
    generation: { shardsDone: 4, shardCount: 4, samples: 1280 },
    tokens: { prompt: 10_000, completion: 20_400 },
    acceptanceRate: 0.25,
    counts: { filter: { kept: 320 } },
  } as unknown as RunProgress;
  const line = progressLine(p);
  expect(line).toMatch(/^\[finetune\] /);
  expect(line).toContain('shards 4/4');
  expect(line).toContain('samples 1.3k');
  expect(line).toContain('tokens 30.4k');
  expect(line).toContain('accepted 25.0%');
  expect(line).toContain('sft 320');
});

test('after evaluation the progress line gives each model pass@1 and its samples by outcome', () => {
  const p = {
    stage: 'done',
    generation: null,
    tokens: { prompt: 0, completion: 0 },
    acceptanceRate: null,
    counts: {
      'evaluate.baseline': { pass1: 0.05, stderr: 0.02, samples: 120, correct: 6, incorrect: 30, noAnswer: 84 },
      'evaluate.student': { pass1: 0.7, stderr: 0.05, samples: 120, correct: 84, incorrect: 36, noAnswer: 0 },
    },
  } as unknown as RunProgress;
  const line = progressLine(p);
  expect(line).toContain('baseline 5.0% (6/30/84 correct/incorrect/no answer)');
  expect(line).toContain('student 70.0% (84/36/0 correct/incorrect/no answer)');
});
