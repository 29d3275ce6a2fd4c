import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createFineTune, type FineTuneResult } from '../../activities/finetune/fine-tune';
import { sftRunDir, smallFineTune } from '../helpers/trainer-fixture';

/**
 * The fine-tune activity on CPU with the real trainer: the trainer is SIGKILLed mid-way (as a lost worker or an
 * OOM kill would), the activity's retry resumes from the last complete checkpoint: the step counter continues,
 * and no step before that checkpoint is trained again.
 */
test('a killed trainer resumes from its last checkpoint on the retry', async () => {
  const { runDir, sft } = await sftRunDir(400);
  const fineTune = createFineTune({ cudaVisibleDevices: '', threads: 2 });
  const input = { runDir, sft, fineTune: smallFineTune({ maxSteps: 45, checkpointEvery: 10 }) };
  const checkpoints = path.join(runDir, 'finetune', 'checkpoints');

  const first = new MockActivityEnvironment({ attempt: 1 });
  const firstSteps: number[] = [];
  first.on('heartbeat', (d: { step?: number }) => d?.step && firstSteps.push(d.step));
  const attempt1 = first.run(fineTune, input).catch((e: Error) => e);
  // Kill the trainer once a checkpoint past step 10 is complete.
  for (;;) {
    const done = existsSync(checkpoints) ? readdirSync(checkpoints).filter((d) => /^step-\d+$/.test(d)) : [];
    if (done.some((d) => Number(d.slice(5)) >= 20)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  execFileSync('pkill', ['-KILL', '-f', `train_tiny.py --config ${path.join(runDir, 'finetune', 'config.json')}`]);
  const failure = await attempt1;
  expect(failure).toBeInstanceOf(Error);
  expect(String((failure as Error).message)).toMatch(/trainer exited with SIGKILL/);
  const lastCheckpoint = Math.max(
    ...readdirSync(checkpoints)
      .filter((d) => /^step-\d+$/.test(d))
      .map((d) => Number(d.slice(5))),
  );
  const killedAt = Math.max(...firstSteps);

  const second = new MockActivityEnvironment({ attempt: 2 });
  const secondSteps: number[] = [];
  second.on('heartbeat', (d: { step?: number }) => d?.step && secondSteps.push(d.step));
  const result = (await second.run(fineTune, input)) as FineTuneResult;

  console.log(
    `killed at step ${killedAt}, last complete checkpoint ${lastCheckpoint}, retry resumed from ${result.resumedFromStep}, finished at ${result.steps}`,
  );
  expect(result.resumedFromStep).toBe(lastCheckpoint);
  expect(result.steps).toBe(45);
  // The retry trained only steps after the checkpoint: redone work ≤ one checkpoint interval.
  expect(Math.min(...secondSteps)).toBe(lastCheckpoint + 1);
  expect(killedAt - lastCheckpoint).toBeLessThanOrEqual(10);
  const report = JSON.parse(readFileSync(path.join(runDir, 'finetune', 'train_report.json'), 'utf8'));
  expect(report).toBeTruthy();
  expect(existsSync(path.join(result.modelDir, 'model.onnx'))).toBe(true);
});
