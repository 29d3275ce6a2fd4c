import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { createFineTune } from '../../activities/finetune/fine-tune';
import { layout } from '../../activities/artifacts/layout';
import { pathOf, readJsonl } from '../../activities/artifacts/store';
import { encodeSampleLogprobs, type TokenLogprob } from '../../activities/generate/logprobs-sidecar';
import { pythonBin, trainerScript } from '../../infra/paths';
import { sftRunDir, smallFineTune } from '../helpers/trainer-fixture';

/**
 * The kd objective in the tiny trainer: the loss against its dense reference (Python unit tests), the sidecar
 * aligned with the rows the student trains on, and the tokenizer check that stops a teacher of another family
 * before the first step.
 */
const slot = { cudaVisibleDevices: '', threads: 1 };
const spec = (teacher: string) => ({ teacher: { model: teacher }, sampling: { logprobs: 3 } });
const kdFineTune = smallFineTune({ maxSteps: 3, objective: { type: 'kd', temperature: 2, alpha: 0.7 } });

test('sparse KD loss equals the dense reference (1e-6), scales by T², keeps the tail, has finite gradients', () => {
  const out = execFileSync(pythonBin(), ['-m', 'unittest', '-v', 'test_kd_loss', 'test_kd_targets'], {
    cwd: path.dirname(trainerScript('kd_loss.py')),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
  // unittest reports on stderr; execFileSync throws on a failing exit code, so reaching here means all passed
  expect(out).toBeDefined();
}, 120_000);

/** A teacher record for a text, split into tokens by `split`, each with 3 alternatives (the chosen one first). */
function record(id: string, text: string, split: (t: string) => string[]): Buffer {
  const tokens: TokenLogprob[] = split(text).map((piece) => {
    const bytes = Buffer.from(piece, 'utf8');
    const other = (d: number) => Buffer.from(String.fromCharCode(((bytes[0]! + d - 32) % 90) + 32), 'latin1');
    return {
      token: { bytes },
      logprob: Math.log(0.7),
      top: [
        { token: { bytes }, logprob: Math.log(0.7) },
        { token: { bytes: other(1) }, logprob: Math.log(0.2) },
        { token: { bytes: other(2) }, logprob: Math.log(0.05) },
      ],
    };
  });
  return encodeSampleLogprobs({ id, tokens });
}

async function runWithTeacher(split: (t: string) => string[]) {
  const { runDir, sft } = await sftRunDir(24);
  const rows: { id: string; messages: { content: string }[] }[] = [];
  for await (const r of readJsonl<{ id: string; messages: { content: string }[] }>(pathOf(sft))) rows.push(r);
  // the run's sidecar also holds a sample the filters dropped: it must not reach the trainer
  const frames = [
    record('dropped#0@x', 'never trained on', split),
    ...rows.map((r) => record(r.id, r.messages[1]!.content, split)),
  ];
  await fs.mkdir(path.dirname(layout.logprobs(runDir)), { recursive: true });
  await fs.writeFile(layout.logprobs(runDir), Buffer.concat(frames));
  return { runDir, sft, rows };
}

test("a teacher whose tokens are not the student's fails before the first step, naming both tokenizers", async () => {
  const { runDir, sft } = await runWithTeacher((t) => t.match(/\s*\S+/g) ?? []); // word pieces, as a BPE teacher's
  const err = await createFineTune(slot)({ runDir, sft, fineTune: kdFineTune, spec: spec('bpe-teacher') }).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).type).toBe('TokenizerMismatch');
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
  expect((err as Error).message).toContain('teacher bpe-teacher');
  expect((err as Error).message).toContain('byte-level (tiny GPT');
  await expect(fs.access(path.join(runDir, 'finetune', 'checkpoints'))).rejects.toThrow(); // no step was taken
}, 300_000);

test("a byte-level teacher trains the student with kd on exactly the kept rows' targets", async () => {
  const { runDir, sft, rows } = await runWithTeacher((t) =>
    [...Buffer.from(t, 'utf8')].map((b) => String.fromCharCode(b)),
  );
  const result = await createFineTune(slot)({ runDir, sft, fineTune: kdFineTune, spec: spec('byte-teacher') });
  expect(result.steps).toBe(3);
  const report = JSON.parse(readFileSync(pathOf(result.report), 'utf8')) as {
    objective: string;
    kd: { rows_with_targets: number; temperature: number; alpha: number; mapped_fraction: number };
  };
  expect(report.objective).toBe('kd');
  expect(report.kd).toMatchObject({ rows_with_targets: rows.length, temperature: 2, alpha: 0.7, mapped_fraction: 1 });
  const aligned = JSON.parse(readFileSync(layout.trainLogprobs(runDir).replace(/\.bin$/, '.json'), 'utf8')) as {
    records: number;
    dropped: number;
    bytesPerToken: number;
  };
  expect(aligned.records).toBe(rows.length);
  expect(aligned.dropped).toBe(1);
  expect(aligned.bytesPerToken).toBeGreaterThan(0);
}, 300_000);
