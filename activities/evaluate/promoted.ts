/**
 * The 'promoted' pointer: `<artifactRoot>/promoted/<name>.json` names the model a line of runs has promoted last
 * (run id, model directory, how to serve it, scores), so the next run can start from it (fine-tune from it) and
 * score it as the model to beat. Written atomically with the artifact store's writeJsonAtomic, under a lock, as a
 * compare-and-swap. `promote` is the gate as an activity (core/gate.ts decides).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { ArtifactRef } from '../../schemas/artifact';
import { exists, writeJsonAtomic } from '../artifacts/store';
import { decidePromotion, type GateDecision, type GateScore, type PromotionInput } from '../../core/gate';

/** How a promoted student is served for evaluation: the same way its run served it. */
export type PromotedStudent =
  /** The tiny byte-level GPT: modelDir/model.onnx, run in-process. */
  | { kind: 'tiny' }
  /** A transformers checkpoint (modelDir) with its GGUF export for llama.cpp. */
  | { kind: 'hf'; gguf?: string }
  /** A fine-tuning API's model, asked through its endpoint. */
  | { kind: 'api'; endpoint: { baseURL: string; model: string; apiKeyEnv?: string } };

/** `<artifactRoot>/promoted/<name>.json`: the model a line of runs has promoted last. */
export interface PromotedPointer {
  name: string;
  runId: string;
  /** The promoted model's directory (model.onnx, safetensors, config): where the next run starts from. */
  modelDir: string;
  scores: Record<string, GateScore>;
  promotedAt: string;
  gate?: { reasons: string[] };
  /** What the scores were measured on (benchmark seeds, k, temperature…): compare only like with like. */
  evaluation?: Record<string, unknown>;
  /** The pointer this one replaced. */
  previous?: { runId: string; modelDir: string; promotedAt: string } | null;
  /** How to serve the model (pointers written before this field are served by what modelDir holds). */
  student?: PromotedStudent;
}

export function promotedPath(artifactRoot: string, name: string): string {
  return path.resolve(artifactRoot, 'promoted', `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}

export async function readPromoted(artifactRoot: string, name: string): Promise<PromotedPointer | null> {
  const file = promotedPath(artifactRoot, name);
  if (!(await exists(file))) return null;
  return JSON.parse(await fs.readFile(file, 'utf8')) as PromotedPointer;
}

export class PromotionConflict extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PromotionConflict';
  }
}

/** A holder that died leaves its lock behind; the section it guards takes milliseconds, so an old lock is stale. */
const STALE_LOCK_MS = 30_000;

/** Runs `fn` while holding `<file>.lock` (created exclusively): two writers of one pointer take turns. */
async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  await fs.mkdir(path.dirname(file), { recursive: true });
  for (let waited = 0; ; waited += 50) {
    try {
      await (await fs.open(lock, 'wx')).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const held = await fs.stat(lock).then(
        (st) => Date.now() - st.mtimeMs,
        () => 0,
      );
      if (held > STALE_LOCK_MS) await fs.rm(lock, { force: true });
      else if (waited > 2 * STALE_LOCK_MS)
        throw new Error(`${lock} is held by another writer for too long`, { cause: err });
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { force: true });
  }
}

/**
 * Points `<artifactRoot>/promoted/<name>.json` at this run's model, atomically (temp file + fsync + rename: a reader
 * sees the old pointer or the new one, never half of one). Idempotent: a retried activity that finds its own run
 * already promoted rewrites the same pointer. `expectPrevious` (the runId read before the decision was taken, null
 * for none) makes it a compare-and-swap: read, compare and rename happen under the pointer's lock, and when another
 * run promoted meanwhile it throws PromotionConflict rather than overwrite a decision taken against other scores.
 */
export async function writePromoted(
  artifactRoot: string,
  p: Omit<PromotedPointer, 'promotedAt' | 'previous'> & { promotedAt?: string },
  opts: { expectPrevious?: string | null } = {},
): Promise<{ ref: ArtifactRef; pointer: PromotedPointer }> {
  const file = promotedPath(artifactRoot, p.name);
  return withLock(file, async () => {
    const current = await readPromoted(artifactRoot, p.name);
    if (
      opts.expectPrevious !== undefined &&
      current &&
      current.runId !== p.runId &&
      current.runId !== opts.expectPrevious
    ) {
      throw new PromotionConflict(
        `${p.name} was promoted by ${current.runId} meanwhile (expected ${opts.expectPrevious ?? 'none'})`,
      );
    }
    if (opts.expectPrevious && !current)
      throw new PromotionConflict(`${p.name} was unpromoted meanwhile (expected ${opts.expectPrevious})`);
    const previous =
      current && current.runId !== p.runId
        ? { runId: current.runId, modelDir: current.modelDir, promotedAt: current.promotedAt }
        : (current?.previous ?? null);
    const pointer: PromotedPointer = { ...p, promotedAt: p.promotedAt ?? new Date().toISOString(), previous };
    const ref = await writeJsonAtomic(file, pointer);
    return { ref, pointer };
  });
}

export interface PromoteInput extends PromotionInput {
  artifactRoot: string;
  /** The line of runs (usually the spec's name). */
  name: string;
  runId: string;
  modelDir: string;
  /** How to serve this run's student when a later run scores it as the incumbent. */
  student?: PromotedStudent;
  /** The pointer's runId read before the evaluation (null: nothing was promoted): the compare-and-swap's expectation. */
  expectPrevious?: string | null;
  /** Stored with the pointer: the evaluation settings the scores come from. */
  evaluation?: Record<string, unknown>;
}

/**
 * The gate as an activity: decide (against the baseline and the incumbent), and on promotion write the pointer as a
 * compare-and-swap. A conflict (another run promoted since the pointer was read) is not retried: this decision was
 * taken against a model that no longer ships, so the run fails with PromotionConflict, naming that run.
 */
export async function promote(input: PromoteInput): Promise<GateDecision & { pointer: ArtifactRef | null }> {
  const decision = decidePromotion(input);
  if (!decision.promote) return { ...decision, pointer: null };
  try {
    const { ref } = await writePromoted(
      input.artifactRoot,
      {
        name: input.name,
        runId: input.runId,
        modelDir: input.modelDir,
        scores: input.candidate,
        gate: { reasons: decision.reasons },
        ...(input.evaluation ? { evaluation: input.evaluation } : {}),
        ...(input.student ? { student: input.student } : {}),
      },
      { expectPrevious: input.expectPrevious },
    );
    return { ...decision, pointer: ref };
  } catch (err) {
    if (!(err instanceof PromotionConflict)) throw err;
    throw ApplicationFailure.nonRetryable(
      `${err.message}: this run's student was compared with the model promoted before, not with that one, so it is not promoted. Its artifacts are kept; the next run of the line compares with the new pointer.`,
      'PromotionConflict',
    );
  }
}

/** `readPromoted` as an activity (one input object): the pointer a new run starts from, or null. */
export async function getPromoted(input: { artifactRoot: string; name: string }): Promise<PromotedPointer | null> {
  return readPromoted(input.artifactRoot, input.name);
}

/** The incumbent as the evaluate stage needs it: where the promoted model is and how to serve it, or why it cannot be. */
export interface IncumbentModel {
  runId: string;
  modelDir: string;
  student: PromotedStudent | null;
  /** Set when the model cannot be scored here (files gone, or no way to serve it is known). */
  unavailable?: string;
}

/**
 * The promoted model a run's gate must beat, read before the evaluation (its runId is the compare-and-swap's
 * expectation): null when nothing is promoted. Pointers from before `student` was recorded are served by what
 * their modelDir holds (model.onnx: tiny; model.gguf: hf).
 */
export async function readIncumbent(input: { artifactRoot: string; name: string }): Promise<IncumbentModel | null> {
  const pointer = await readPromoted(input.artifactRoot, input.name);
  if (!pointer) return null;
  const { runId, modelDir } = pointer;
  const onnx = path.join(modelDir, 'model.onnx');
  const gguf =
    pointer.student?.kind === 'hf'
      ? (pointer.student.gguf ?? path.join(modelDir, 'model.gguf'))
      : path.join(modelDir, 'model.gguf');
  let student = pointer.student ?? null;
  if (!student) student = (await exists(onnx)) ? { kind: 'tiny' } : (await exists(gguf)) ? { kind: 'hf', gguf } : null;
  if (!student) return { runId, modelDir, student, unavailable: `${modelDir} holds neither model.onnx nor model.gguf` };
  if (student.kind === 'tiny' && !(await exists(onnx)))
    return { runId, modelDir, student, unavailable: `${onnx} does not exist` };
  if (student.kind === 'hf' && !(await exists(gguf)) && !(await exists(path.join(modelDir, 'config.json'))))
    return { runId, modelDir, student, unavailable: `neither ${gguf} nor ${modelDir}/config.json exists` };
  return { runId, modelDir, student: student.kind === 'hf' && (await exists(gguf)) ? { kind: 'hf', gguf } : student };
}
