import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { layout } from '../../activities/artifacts/layout';
import { writeJsonlAtomic } from '../../activities/artifacts/store';
import { generateShard } from '../../activities/generate/generate-shard';
import { rejectSample } from '../../activities/verify/reject-sample';
import { SamplingSchema, TeacherSchema, VerifierSchema } from '../../schemas/run-spec';
import { envInt, median, runAbba } from '../rounds';
import { DEFAULT_SOLVE_RATE_MODEL, startSolveRateEndpoint } from './solve-rate-endpoint';

/**
 * bench:sampling — teacher tokens spent per accepted sample, fixed n against adaptive rejection sampling.
 *
 * Teacher: the solve-rate endpoint (an honest test double, bench/sampling/solve-rate-endpoint.ts): per-prompt solve
 * rate ~ Beta(alpha, beta), long-tailed completion lengths (wrong answers longer), boxed sums the math verifier grades.
 * The same prompts go through the real generateShard activity and the real reject-sample stage twice:
 *   fixed:    n = MAX_SAMPLES samples per prompt, keepPerPrompt = TARGET;
 *   adaptive: rounds of ROUND_SIZE, stop at TARGET correct or MAX_SAMPLES drawn, keepPerPrompt = TARGET.
 * Each round uses a new endpoint seed (new solve rates, new samples); rounds run in ABBA order; medians over rounds.
 * Accepted samples are capped at TARGET per prompt by the stage on both sides. Last line:
 * `token_saving= kept_ratio= solved_ratio=` (1 − adaptive/fixed teacher completion tokens; adaptive/fixed accepted
 * samples; adaptive/fixed prompts with at least one accepted sample). Exits 1 when a target is missed
 * (token_saving ≥ 0.4, kept_ratio ≥ 0.99, solved_ratio ≥ 1).
 */
const PROMPTS = envInt('SAMPLING_PROMPTS', 1000);
const MAX_SAMPLES = envInt('SAMPLING_MAX_SAMPLES', 16);
const TARGET = envInt('SAMPLING_TARGET', 2);
const ROUND_SIZE = envInt('SAMPLING_ROUND_SIZE', 4);
const ROUNDS = envInt('SAMPLING_ROUNDS', 3);
const CONCURRENCY = envInt('SAMPLING_CONCURRENCY', 32);

interface SideResult {
  completionTokens: number;
  requests: number;
  samples: number;
  accepted: number;
  solved: number;
  seconds: number;
}

async function runSide(url: string, adaptive: boolean, round: number): Promise<SideResult> {
  const runDir = mkdtempSync(path.join(os.tmpdir(), `bench-sampling-${adaptive ? 'adaptive' : 'fixed'}-`));
  try {
    // Prompts differ per round; within a round both sides get the same ones.
    const prompts = Array.from({ length: PROMPTS }, (_, i) => {
      const a = 100 + ((i * 37 + round * 101) % 900);
      const b = 100 + ((i * 53 + round * 211) % 900);
      return { id: `q${i}`, prompt: `Compute ${a}+${b}.`, answer: String(a + b) };
    });
    await writeJsonlAtomic(layout.shardPrompts(runDir, 0), prompts);
    const verifier = VerifierSchema.parse({ type: 'math', keepPerPrompt: TARGET, prefer: 'first' });
    const started = performance.now();
    const g = await generateShard({
      runDir,
      shardIndex: 0,
      teacher: TeacherSchema.parse({
        baseURL: url,
        model: 'solve-rate-sim',
        concurrency: CONCURRENCY,
        maxInFlight: CONCURRENCY,
      }),
      sampling: SamplingSchema.parse({
        seed: round,
        n: MAX_SAMPLES,
        ...(adaptive
          ? { adaptive: { minSamples: 1, maxSamples: MAX_SAMPLES, roundSize: ROUND_SIZE, stopAfterAccepted: TARGET } }
          : {}),
      }),
      ...(adaptive ? { verifier } : {}),
    });
    const v = await rejectSample({ runDir, samples: g.samplesRef, verifier });
    if (v.samplesIn !== g.samples)
      throw new Error(`the stage saw ${v.samplesIn} samples, generation committed ${g.samples}`);
    return {
      completionTokens: g.completionTokens,
      requests: g.requests,
      samples: g.samples,
      accepted: v.accepted,
      solved: v.promptsSolved,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}

const perAccepted = (r: SideResult) => (r.accepted ? r.completionTokens / r.accepted : Infinity);
const fmt = (r: SideResult) =>
  `tokens=${r.completionTokens} requests=${r.requests} samples=${r.samples} accepted=${r.accepted} solved=${r.solved} tokens_per_accepted=${perAccepted(r).toFixed(1)} s=${r.seconds.toFixed(2)}`;

async function main(): Promise<void> {
  const m = DEFAULT_SOLVE_RATE_MODEL;
  console.log(
    `bench:sampling prompts=${PROMPTS} target=${TARGET} max_samples=${MAX_SAMPLES} round_size=${ROUND_SIZE} rounds=${ROUNDS} ` +
      `teacher=solve-rate endpoint (test double): solve rate ~ Beta(${m.alpha}, ${m.beta}), length ~ lognormal(median ${m.lengthMedian}, sigma ${m.lengthSigma}), wrong x${m.wrongLengthFactor}`,
  );
  const rounds = await runAbba(
    ROUNDS,
    {
      // Each round is its own endpoint (its own seed): new solve rates, and a request log of its own.
      A: async (round) => withEndpoint(round, (url) => runSide(url, false, round)),
      B: async (round) => withEndpoint(round, (url) => runSide(url, true, round)),
    },
    (r) => console.log(`round ${r.round} (${r.order.join('')}): fixed ${fmt(r.a)} | adaptive ${fmt(r.b)}`),
  );
  const fixedTok = median(rounds.map((r) => r.a.completionTokens));
  const adaptTok = median(rounds.map((r) => r.b.completionTokens));
  console.log(
    `teacher completion tokens per accepted sample (median): fixed=${median(rounds.map((r) => perAccepted(r.a))).toFixed(1)} adaptive=${median(rounds.map((r) => perAccepted(r.b))).toFixed(1)}`,
  );
  console.log(`teacher completion tokens (median): fixed=${fixedTok} adaptive=${adaptTok}`);
  console.log(
    `accepted samples, at most ${TARGET} per prompt (median): fixed=${median(rounds.map((r) => r.a.accepted))} adaptive=${median(rounds.map((r) => r.b.accepted))}`,
  );
  console.log(
    `prompts solved of ${PROMPTS} (median): fixed=${median(rounds.map((r) => r.a.solved))} adaptive=${median(rounds.map((r) => r.b.solved))}`,
  );
  const saving = median(rounds.map((r) => 1 - r.b.completionTokens / r.a.completionTokens));
  const kept = median(rounds.map((r) => r.b.accepted / r.a.accepted));
  const solved = median(rounds.map((r) => r.b.solved / r.a.solved));
  console.log(`token_saving=${saving.toFixed(3)} kept_ratio=${kept.toFixed(3)} solved_ratio=${solved.toFixed(3)}`);
  // The targets; solved_ratio compares two independent draws of up to MAX_SAMPLES samples per prompt, so it
  // scatters around 1 by chance (see the raw rounds).
  if (saving < 0.4 || kept < 0.99 || solved < 1) process.exitCode = 1;
}

async function withEndpoint<T>(round: number, fn: (url: string) => Promise<T>): Promise<T> {
  const endpoint = await startSolveRateEndpoint({ seed: round });
  try {
    return await fn(endpoint.url);
  } finally {
    await endpoint.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
