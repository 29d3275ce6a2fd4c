import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
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
      return {
        id: p.id,
        messages: [
          { role: 'user', content: p.prompt },
          { role: 'assistant', content: solveWithReasoning(a, '+', b) },
        ],
      };
    }),
  );
  return { runDir, sft };
}

/** A small, fast student config for tests and benchmarks on 2 cores. */
export function smallFineTune(overrides: Record<string, unknown> = {}): RunSpec['fineTune'] {
  return FineTuneSchema.parse({
    epochs: 1,
    batchSize: 8,
    checkpointEvery: 10,
    model: { dModel: 32, nLayer: 1, nHead: 2, maxLen: 128 },
    ...overrides,
  });
}

/** Writes the untrained student (same seed and init as training) into `dir` with its ONNX export. */
export function exportInitialModel(configPath: string, dir: string): void {
  execFileSync(pythonBin(), [trainerScript('export_onnx.py'), '--init-only', '--output', dir, '--config', configPath], {
    stdio: 'pipe',
  });
}

/**
 * A randomly initialised Llama-architecture student (transformers dir, BPE tokenizer, ChatML template) for the trl
 * trainer's tests: the sharding and cluster paths need a real model, not real weights. `preset` + configOnly writes a
 * large student's config.json alone (for memory estimates).
 */
export function randomStudent(
  dir: string,
  opts: { preset?: string; configOnly?: boolean; hidden?: number; layers?: number } = {},
): string {
  const args = [trainerScript(path.join('sft', 'random_student.py')), '--out', dir];
  if (opts.preset) args.push('--preset', opts.preset);
  if (opts.configOnly) args.push('--config-only');
  if (opts.hidden) args.push('--hidden', String(opts.hidden), '--intermediate', String(opts.hidden * 2));
  if (opts.layers) args.push('--layers', String(opts.layers));
  execFileSync(pythonBin(), args, { stdio: 'pipe', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  return dir;
}

/** The PIDs of processes whose command line holds all of `parts` (read from /proc: no shell, no pattern). */
export function pidsWith(...parts: string[]): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ');
      if (parts.every((p) => cmd.includes(p))) out.push(Number(e));
    } catch {
      /* exited */
    }
  }
  return out;
}

/** One environment variable of a running process (undefined when unset or the process is gone). */
export function envOf(pid: number, name: string): string | undefined {
  try {
    const kv = readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .find((s) => s.startsWith(`${name}=`));
    return kv?.slice(name.length + 1);
  } catch {
    return undefined;
  }
}
