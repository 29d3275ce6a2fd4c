import { promises as fs } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import type { ArtifactRef } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { exists, pathOf, writeJsonAtomic } from '../artifacts/store';
import { layout } from '../artifacts/layout';
import { alignSidecarTo, idsOf } from '../generate/logprobs-files';

export interface KdTargetsReport {
  /** Records aligned with the SFT rows (one per row, in order). */
  records: number;
  tokens: number;
  bytes: number;
  bytesPerToken: number;
  /** Records of samples the verifier or the filters dropped: left out with their samples. */
  dropped: number;
  sidecar: string;
  /** top_logprobs asked of the teacher, and the temperature it sampled at (its logprobs are at temperature 1). */
  k?: number;
  generationTemperature?: number;
}

/**
 * The trainer's `objective` for a kd run: the run's logprobs sidecar aligned with the SFT file it trains on (a
 * dropped sample drops its record; a kept one without a record fails, since it would silently train as SFT).
 */
export async function kdTrainerObjective(
  runDir: string,
  sft: ArtifactRef,
  fineTune: RunSpec['fineTune'],
  spec?: unknown,
): Promise<Record<string, unknown>> {
  const o = fineTune.objective;
  if (o?.type !== 'kd') return { type: 'sft' };
  const source = layout.logprobs(runDir);
  if (!(await exists(source))) {
    throw ApplicationFailure.nonRetryable(
      `fineTune.objective kd: the run has no teacher logprobs (${source}); set sampling.logprobs so generation captures them`,
      'KdLogprobsMissing',
    );
  }
  const target = layout.trainLogprobs(runDir);
  const ids = await idsOf(pathOf(sft));
  await fs.mkdir(layout.trainLogprobs(runDir).replace(/[^/]+$/, ''), { recursive: true });
  const stats = await alignSidecarTo(target, ids, source);
  if (stats.missing.length) {
    throw ApplicationFailure.nonRetryable(
      `fineTune.objective kd: ${stats.missing.length} of ${ids.length} training rows have no teacher logprobs in ${source} (first: ${stats.missing[0]}); rows merged from earlier runs (incremental.mergeAccepted) carry none`,
      'KdLogprobsMissing',
    );
  }
  const teacher = (spec as { teacher?: { model?: string } } | undefined)?.teacher?.model;
  const sampling = (spec as { sampling?: { logprobs?: number; temperature?: number } } | undefined)?.sampling;
  const report: KdTargetsReport = {
    records: stats.records,
    tokens: stats.tokens,
    bytes: stats.bytes,
    bytesPerToken: stats.tokens ? stats.bytes / stats.tokens : 0,
    dropped: stats.dropped,
    sidecar: target,
    ...(sampling?.logprobs !== undefined ? { k: sampling.logprobs } : {}),
    ...(sampling?.temperature !== undefined ? { generationTemperature: sampling.temperature } : {}),
  };
  await writeJsonAtomic(target.replace(/\.bin$/, '.json'), report);
  return {
    type: 'kd',
    temperature: o.temperature,
    alpha: o.alpha,
    top_k: o.topK ?? sampling?.logprobs ?? 20,
    tail: o.tail,
    logprobs: target,
    teacher: teacher ? `teacher ${teacher}` : 'the teacher',
  };
}
