/**
 * A lineage is a line of runs of one spec (a nightly schedule): it remembers which prompts its successful runs have
 * distilled, by content hash, so the next run takes only unseen prompts, and it can hand a run the accepted samples
 * of earlier runs. Layout: `<artifactRoot>/lineages/<name>/runs/<runId>.json`, one file per successful run, written
 * atomically as the run's last step, so a failed or cancelled run never counts as having seen its prompts.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ArtifactRef } from '../../schemas/artifact';
import { AtomicJsonlWriter, exists, readJsonl, verifyRef, writeJsonAtomic } from '../artifacts/store';

export interface LineageRun {
  lineage: string;
  runId: string;
  completedAt: string;
  /** sha256 over the run's sorted prompt hashes: the version of the data it distilled. */
  datasetVersion: string;
  prompts: number;
  /** JSONL of {id, hash} for every prompt the run distilled. */
  promptHashes: ArtifactRef;
  /** The run's verified samples (verify/accepted.jsonl). */
  accepted: ArtifactRef;
}

export function lineageDir(artifactRoot: string, lineage: string): string {
  return path.resolve(artifactRoot, 'lineages', lineage);
}

/** Prompts are the same when their text is, whatever their ids: whitespace and Unicode form do not count. */
export function promptHash(prompt: string): string {
  return createHash('sha256').update(prompt.normalize('NFC').replace(/\s+/g, ' ').trim()).digest('hex');
}

export function datasetVersion(hashes: Iterable<string>): string {
  const h = createHash('sha256');
  for (const x of [...hashes].sort()) h.update(x).update('\n');
  return h.digest('hex');
}

export async function lineageRuns(artifactRoot: string, lineage: string): Promise<LineageRun[]> {
  const dir = path.join(lineageDir(artifactRoot, lineage), 'runs');
  if (!(await exists(dir))) return [];
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const runs: LineageRun[] = [];
  for (const f of files) runs.push(JSON.parse(await fs.readFile(path.join(dir, f), 'utf8')) as LineageRun);
  return runs.sort((a, b) => a.completedAt.localeCompare(b.completedAt));
}

/** Every prompt hash the lineage's successful runs have distilled (their files are checked against their sha256). */
export async function seenPromptHashes(
  artifactRoot: string,
  lineage: string,
  exceptRunId?: string,
): Promise<Set<string>> {
  const seen = new Set<string>();
  for (const run of await lineageRuns(artifactRoot, lineage)) {
    if (run.runId === exceptRunId) continue;
    await verifyRef(run.promptHashes);
    for await (const row of readJsonl<{ hash: string }>(run.promptHashes)) seen.add(row.hash);
  }
  return seen;
}

export interface RecordLineageRunInput {
  artifactRoot: string;
  lineage: string;
  runId: string;
  datasetVersion: string;
  prompts: number;
  promptHashes: ArtifactRef;
  accepted: ArtifactRef;
}

/** The run's commit into its lineage: idempotent (a retry rewrites the same file). */
export async function recordLineageRun(input: RecordLineageRunInput): Promise<ArtifactRef> {
  const file = path.join(lineageDir(input.artifactRoot, input.lineage), 'runs', `${input.runId}.json`);
  const body: LineageRun = {
    lineage: input.lineage,
    runId: input.runId,
    completedAt: new Date().toISOString(),
    datasetVersion: input.datasetVersion,
    prompts: input.prompts,
    promptHashes: input.promptHashes,
    accepted: input.accepted,
  };
  if (await exists(file)) {
    const prior = JSON.parse(await fs.readFile(file, 'utf8')) as LineageRun;
    body.completedAt = prior.completedAt;
  }
  return writeJsonAtomic(file, body);
}

export interface MergeAcceptedInput {
  runDir: string;
  artifactRoot: string;
  lineage: string;
  runId: string;
  accepted: ArtifactRef;
}

export interface MergeAcceptedResult {
  accepted: ArtifactRef;
  fromThisRun: number;
  fromEarlierRuns: number;
  /** Earlier samples left out because this run (or a later earlier run) already has a sample with the same id. */
  duplicatesSkipped: number;
}

/** This run's accepted samples followed by those of the lineage's earlier successful runs (first sample id wins). */
export async function mergeLineageAccepted(input: MergeAcceptedInput): Promise<MergeAcceptedResult> {
  await verifyRef(input.accepted);
  const out = new AtomicJsonlWriter(path.join(input.runDir, 'verify', 'accepted-merged.jsonl'));
  const ids = new Set<string>();
  let fromThisRun = 0;
  let fromEarlierRuns = 0;
  let duplicatesSkipped = 0;
  try {
    for await (const row of readJsonl<{ id: string }>(input.accepted)) {
      ids.add(row.id);
      await out.write(row);
      fromThisRun += 1;
    }
    for (const run of (await lineageRuns(input.artifactRoot, input.lineage)).reverse()) {
      if (run.runId === input.runId) continue;
      await verifyRef(run.accepted);
      for await (const row of readJsonl<{ id: string }>(run.accepted)) {
        if (ids.has(row.id)) {
          duplicatesSkipped += 1;
          continue;
        }
        ids.add(row.id);
        await out.write(row);
        fromEarlierRuns += 1;
      }
    }
  } catch (err) {
    await out.abort();
    throw err;
  }
  return { accepted: await out.finish(), fromThisRun, fromEarlierRuns, duplicatesSkipped };
}
