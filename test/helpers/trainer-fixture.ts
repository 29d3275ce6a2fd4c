import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeJsonlAtomic } from '../../activities/artifacts/store';
import { generateArithmeticProblems, solveWithReasoning } from '../../activities/dataset/arithmetic-task';
import { pythonBin, trainerScript } from '../../infra/paths';
import { FineTuneSchema, type RunSpec } from '../../schemas/run-spec';
import type { ArtifactRef } from '../../schemas/artifact';

/** A run directory with an SFT file of `rows` correct arithmetic chains of thought, as the filter stage writes it. */
export async function sftRunDir(rows: number): Promise<{ runDir: string; sft: ArtifactRef }> {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'finetune-'));
  const problems = generateArithmeticProblems({ seed: 3, count: rows, split: 'train' });
  const sft = await writeJsonlAtomic(
    path.join(runDir, 'filter', 'sft.jsonl'),
    problems.map((p) => {
      const [a, b] = p.prompt.match(/\d+/g)!.map(Number) as [number, number];
      return { id: p.id, messages: [{ role: 'user', content: p.prompt }, { role: 'assistant', content: solveWithReasoning(a, '+', b) }] };
    }),
  );
  return { runDir, sft };
}

/** A small, fast student config for tests and benchmarks on 2 cores. */
export function smallFineTune(overrides: Record<string, unknown> = {}): RunSpec['fineTune'] {
  return FineTuneSchema.parse({ epochs: 1, batchSize: 8, checkpointEvery: 10, model: { dModel: 32, nLayer: 1, nHead: 2, maxLen: 128 }, ...overrides });
}

/** Writes the untrained student (same seed and init as training) into `dir` with its ONNX export. */
export function exportInitialModel(configPath: string, dir: string): void {
  execFileSync(pythonBin(), [trainerScript('export_onnx.py'), '--init-only', '--output', dir, '--config', configPath], { stdio: 'pipe' });
}
