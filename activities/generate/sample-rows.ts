import { readJsonl } from '../artifacts/store';
import type { PromptRow, SampleRow } from '../../schemas/artifact';
import type { GenerationCounts } from '../../schemas/generation-counts';
import type { RunSpec } from '../../schemas/run-spec';
import type { TeacherAnswer } from './teacher-client';
import { sampleId } from './sample-ids';
import type { StopReason, StopRecord } from './adaptive-sampling';

/** Adaptive sampling's per-shard account: samples drawn and correct, and why each prompt stopped. */
export interface AdaptiveTally {
  drawn: number;
  accepted: number;
  stopped: Record<StopReason, number>;
}

export interface ShardTally extends GenerationCounts {
  /** Prompts answered through the provider's Batch API (teacher.mode = batch). */
  batchRequests?: number;
  adaptive?: AdaptiveTally;
  /** Generations cancelled mid-stream as wasted (sampling.abortWasted), and the max_tokens they left unspent. */
  aborted?: { loop: number; length: number; savedTokens: number };
}

function shareOf(total: number, parts: number, position: number): number {
  const n = Math.max(1, parts);
  return Math.floor(total / n) + (position < total % n ? 1 : 0);
}

export function toSampleRow(
  p: PromptRow,
  index: number,
  position: number,
  configHash: string,
  choice: TeacherAnswer['choices'][number],
  answer: TeacherAnswer,
  sampling: RunSpec['sampling'],
): SampleRow {
  return {
    id: sampleId(p.id, index, configHash),
    promptId: p.id,
    sampleIndex: index,
    configHash,
    prompt: p.prompt,
    answer: p.answer,
    ...(p.task ? { task: p.task } : {}),
    ...(p.tests !== undefined ? { tests: p.tests } : {}),
    ...(p.source ? { source: p.source } : {}),
    content: choice.content,
    ...(choice.reasoning ? { reasoning: choice.reasoning } : {}),
    finishReason: choice.finishReason,
    // Usage is per request; it is shared out so that summing a request's samples gives its exact total.
    usage: choice.usage ?? {
      promptTokens: shareOf(answer.usage.promptTokens, answer.choices.length, position),
      completionTokens: shareOf(answer.usage.completionTokens, answer.choices.length, position),
    },
    ...(choice.aborted ? { aborted: choice.aborted } : {}),
    teacher: { model: answer.model, systemFingerprint: answer.systemFingerprint ?? null },
    sampling: {
      temperature: sampling.temperature,
      top_p: sampling.top_p,
      max_tokens: sampling.max_tokens,
      seed: sampling.seed,
    },
    latencyMs: answer.latencyMs,
  };
}

export function existingSample(p: PromptRow, configHash: string, sampling: RunSpec['sampling']): SampleRow {
  return {
    id: sampleId(p.id, 0, configHash),
    promptId: p.id,
    sampleIndex: 0,
    configHash,
    prompt: p.prompt,
    answer: p.answer,
    ...(p.task ? { task: p.task } : {}),
    ...(p.source ? { source: p.source } : {}),
    content: p.response ?? '',
    finishReason: 'stop',
    usage: { promptTokens: 0, completionTokens: 0 },
    teacher: { model: 'existing', systemFingerprint: null },
    sampling: {
      temperature: sampling.temperature,
      top_p: sampling.top_p,
      max_tokens: sampling.max_tokens,
      seed: sampling.seed,
    },
    latencyMs: 0,
  };
}

export function emptyTally(): ShardTally {
  return { prompts: 0, samples: 0, requests: 0, promptTokens: 0, completionTokens: 0, resumedSamples: 0 };
}

export async function tallyOf(file: string): Promise<ShardTally> {
  const tally = emptyTally();
  const prompts = new Set<string>();
  for await (const row of readJsonl<SampleRow>(file)) {
    tally.samples += 1;
    prompts.add(row.promptId);
    tally.promptTokens += row.usage.promptTokens;
    tally.completionTokens += row.usage.completionTokens;
    if (row.aborted) {
      tally.aborted ??= { loop: 0, length: 0, savedTokens: 0 };
      tally.aborted[row.finishReason === 'aborted_loop' ? 'loop' : 'length'] += 1;
      tally.aborted.savedTokens += row.aborted.savedTokens;
    }
  }
  tally.prompts = prompts.size;
  return tally;
}

function emptyAdaptiveTally(): AdaptiveTally {
  return { drawn: 0, accepted: 0, stopped: { target: 0, max_samples: 0, gave_up: 0, budget: 0 } };
}

export function adaptiveTallyOf(stops: Iterable<StopRecord>): AdaptiveTally {
  const t = emptyAdaptiveTally();
  for (const { stopped } of stops) {
    t.drawn += stopped.drawn;
    t.accepted += stopped.accepted;
    t.stopped[stopped.reason] += 1;
  }
  return t;
}
