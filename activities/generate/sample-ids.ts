import { createHash } from 'node:crypto';
import type { RunSpec } from '../../schemas/run-spec';

/** A short hash of everything that changes what the teacher would say: a new config means new sample ids. */
export function generationConfigHash(spec: Pick<RunSpec, 'teacher' | 'sampling'>): string {
  const { model, systemPrompt } = spec.teacher;
  const { temperature, top_p, max_tokens, seed, stop, logprobs, adaptive, abortWasted } = spec.sampling;
  // Samples with logprobs are not the same artifact as samples without: they get their own ids (and so their own shards).
  // Adaptive rounds are seeded per round, so the round size changes which sample an index holds.
  const key = JSON.stringify({
    model,
    systemPrompt: systemPrompt ?? null,
    temperature,
    top_p,
    max_tokens,
    seed,
    stop: stop ?? null,
    ...(logprobs ? { logprobs } : {}),
    ...(adaptive ? { roundSize: adaptive.roundSize } : {}),
    // Cancelling streams each choice with a seed of its own, and where a sample is cut depends on every setting.
    ...(abortWasted ? { abortWasted } : {}),
  });
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

export function sampleId(promptId: string, sampleIndex: number, configHash: string): string {
  return `${promptId}#${sampleIndex}@${configHash}`;
}

/** The seed sent for one prompt: fixed by the run seed and the prompt id, so a retried request asks for the same samples. */
export function promptSeed(runSeed: number, promptId: string, offset = 0): number {
  const h = createHash('sha256').update(`${runSeed}:${promptId}:${offset}`).digest();
  return h.readUInt32BE(0) & 0x7fffffff;
}

/**
 * The seed of choice `index` when each of a request's n choices is asked as a request of its own (the streamed
 * choices of sampling.abortWasted, the llama.cpp front's n): fixed by the request's seed and the index.
 */
export function choiceSeed(seed: number | string, index: number): number {
  return createHash('sha256').update(`${seed}:${index}`).digest().readUInt32BE(0) & 0x7fffffff;
}
