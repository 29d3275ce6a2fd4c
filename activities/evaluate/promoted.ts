/**
 * The 'promoted' pointer: `<artifactRoot>/promoted/<name>.json` names the model a line of runs has promoted last
 * (run id, model directory, scores), so the next run can start from it (fine-tune from it, and evaluate it as the
 * model to beat). Written atomically with the artifact store's writeJsonAtomic. `promote` is the gate as an activity.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ArtifactRef } from '../../schemas/artifact';
import { exists, writeJsonAtomic } from '../artifacts/store';
import { decideGate, type GateDecision, type GateInput, type GateScore } from '../../core/gate';

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

/**
 * Points `<artifactRoot>/promoted/<name>.json` at this run's model, atomically (temp file + fsync + rename: a reader
 * sees the old pointer or the new one, never half of one). Idempotent: a retried activity that finds its own run
 * already promoted rewrites the same pointer. `expectPrevious` (the runId read when the decision was taken, null for
 * none) guards against a concurrent run having promoted meanwhile: then it throws PromotionConflict rather than
 * overwrite a decision taken against different scores (best effort: a check-then-rename, not a lock).
 */
export async function writePromoted(
  artifactRoot: string,
  p: Omit<PromotedPointer, 'promotedAt' | 'previous'> & { promotedAt?: string },
  opts: { expectPrevious?: string | null } = {},
): Promise<{ ref: ArtifactRef; pointer: PromotedPointer }> {
  const current = await readPromoted(artifactRoot, p.name);
  if (opts.expectPrevious !== undefined && current && current.runId !== p.runId && current.runId !== opts.expectPrevious) {
    throw new PromotionConflict(`${p.name} was promoted by ${current.runId} meanwhile (expected ${opts.expectPrevious ?? 'none'})`);
  }
  const previous = current && current.runId !== p.runId ? { runId: current.runId, modelDir: current.modelDir, promotedAt: current.promotedAt } : (current?.previous ?? null);
  const pointer: PromotedPointer = { ...p, promotedAt: p.promotedAt ?? new Date().toISOString(), previous };
  const ref = await writeJsonAtomic(promotedPath(artifactRoot, p.name), pointer);
  return { ref, pointer };
}

export interface PromoteInput extends GateInput {
  artifactRoot: string;
  /** The line of runs (usually the spec's name). */
  name: string;
  runId: string;
  modelDir: string;
  expectPrevious?: string | null;
  /** Stored with the pointer: the evaluation settings the scores come from. */
  evaluation?: Record<string, unknown>;
}

/** The gate as an activity: decide, and on promotion write the pointer. */
export async function promote(input: PromoteInput): Promise<GateDecision & { pointer: ArtifactRef | null }> {
  const decision = decideGate(input);
  if (!decision.promote) return { ...decision, pointer: null };
  const { ref } = await writePromoted(
    input.artifactRoot,
    { name: input.name, runId: input.runId, modelDir: input.modelDir, scores: input.candidate, gate: { reasons: decision.reasons }, ...(input.evaluation ? { evaluation: input.evaluation } : {}) },
    { expectPrevious: input.expectPrevious },
  );
  return { ...decision, pointer: ref };
}

/** `readPromoted` as an activity (one input object): the pointer a new run starts from, or null. */
export async function getPromoted(input: { artifactRoot: string; name: string }): Promise<PromotedPointer | null> {
  return readPromoted(input.artifactRoot, input.name);
}
