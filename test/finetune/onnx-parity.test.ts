/**
 * @jest-environment ./test/helpers/outer-realm-env.js
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { writeJsonAtomic } from '../../activities/artifacts/store';
import { OnnxStudent } from '../../activities/evaluate/onnx-student';
import { encodePrompt } from '../../activities/evaluate/byte-tokenizer';
import { pythonBin, trainerScript } from '../../infra/paths';
import { exportInitialModel, sftRunDir } from '../helpers/trainer-fixture';

/**
 * The exported student runs in onnxruntime-node and computes the logits of the PyTorch student it came from.
 * Tolerance 1e-4 absolute: fp32 on both sides, differences are reordering of float sums (measured ~1e-6).
 */
const TOLERANCE = 1e-4;

test('ONNX student in onnxruntime-node matches the PyTorch student on fixed inputs', async () => {
  const { runDir, sft } = await sftRunDir(10);
  const config = path.join(runDir, 'config.json');
  await writeJsonAtomic(config, {
    data: sft.uri.replace('file://', ''),
    output_dir: path.join(runDir, 'out'),
    model: { d_model: 64, n_layer: 2, n_head: 2, max_len: 128 },
    seed: 7,
  });
  const modelDir = path.join(runDir, 'model');
  exportInitialModel(config, modelDir);

  const prompts = ['Compute 47+85.', 'Compute 10+99.', 'What is 3+4?'].map((p) => encodePrompt(p));
  const len = Math.min(...prompts.map((p) => p.length));
  const batch = prompts.map((p) => p.slice(0, len));
  const inputs = path.join(runDir, 'inputs.json');
  const out = path.join(runDir, 'torch-logits.json');
  await writeJsonAtomic(inputs, { input_ids: batch });
  execFileSync(pythonBin(), [
    trainerScript('dump_logits.py'),
    '--model-dir',
    modelDir,
    '--inputs',
    inputs,
    '--out',
    out,
  ]);
  const torch = JSON.parse(readFileSync(out, 'utf8')) as { shape: number[]; data: number[] };

  const student = await OnnxStudent.load(path.join(modelDir, 'model.onnx'), 128, 1);
  const onnx = await student.logits(batch);
  await student.release();
  expect(onnx.data.length).toBe(torch.data.length);
  let maxAbsDiff = 0;
  for (let i = 0; i < torch.data.length; i++)
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(onnx.data[i]! - torch.data[i]!));
  console.log(
    `onnxruntime-node vs PyTorch logits: shape [${torch.shape.join(', ')}], max abs diff ${maxAbsDiff.toExponential(2)} (tolerance ${TOLERANCE})`,
  );
  expect(maxAbsDiff).toBeLessThan(TOLERANCE);
});
