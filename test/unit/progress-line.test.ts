import { activityDetail, progressLine } from '../../cli/progress-line';
import type { RunProgress } from '../../workflows/messages';

test('the fine-tune and evaluate heartbeats read as a few words on the progress line', () => {
  expect(activityDetail('fineTune', { step: 23, total: 40, checkpoint: null, loss: 0.41234 })).toBe('step 23/40 loss 0.412');
  expect(activityDetail('fineTune', { step: 0, total: null, checkpoint: null, loss: null })).toBe('step 0');
  expect(activityDetail('openaiFineTune', { status: 'running', step: 3, loss: 1.5 })).toBe('job running step 3 loss 1.500');
  expect(activityDetail('evaluate', { model: 'student', benchmark: 'arith', sample: 1, done: 37 })).toBe('student: 37 answers (sample 1)');
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
