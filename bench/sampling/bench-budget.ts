import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { layout } from '../../activities/artifacts/layout';
import { writeJsonlAtomic } from '../../activities/artifacts/store';
import { generateShard } from '../../activities/generate/generate-shard';
import { rejectSample } from '../../activities/verify/reject-sample';
import { budgetShareUSD, costUSD } from '../../core/cost';
import { SamplingSchema, TeacherSchema, VerifierSchema } from '../../schemas/run-spec';
import { envInt, median, runAbba } from '../rounds';
import { DEFAULT_SOLVE_RATE_MODEL, startSolveRateEndpoint } from './solve-rate-endpoint';

/**
 * bench:sampling-budget — what a teacher budget buys with adaptive sampling, spent two ways on the same prompts.
 *
 * The solve-rate endpoint (an honest test double, see solve-rate-endpoint.ts: per-prompt solve rate ~ Beta, long-tailed
 * lengths, wrong answers longer), PROMPTS prompts in SHARDS shards, adaptive sampling (rounds of ROUND_SIZE, stop at
 * TARGET correct or MAX_SAMPLES drawn), priced at $1 per 1M completion tokens. Each round first runs the shards with no
 * budget (the reference: what everything costs), then sets the budget to BUDGET_PERCENT of that and runs:
 *   between: the budget checked between shards only (shards start in order until the spend reaches it; a shard runs
 *            to the end once started), the behaviour without shares;
 *   shares:  each shard gets budgetShareUSD (what is left over the shards still to start) and spends it in budgeted
 *            waves: every prompt's first round, then promising prompts before those with nothing correct.
 * Shards run one at a time on both sides (the generation workflow with maxShardsInFlight 1 and the same share
 * formula). Sides in ABBA order, a new endpoint seed per round, medians. Accepted samples are capped at TARGET per
 * prompt by the real reject-sample stage. Last line: `accepted_ratio= solved_ratio= spend_ratio=` (shares/between).
 */
const PROMPTS = envInt('SAMPLING_PROMPTS', 1000);
const SHARDS = envInt('SAMPLING_SHARDS', 10);
const MAX_SAMPLES = envInt('SAMPLING_MAX_SAMPLES', 16);
const TARGET = envInt('SAMPLING_TARGET', 2);
const ROUND_SIZE = envInt('SAMPLING_ROUND_SIZE', 4);
const ROUNDS = envInt('SAMPLING_ROUNDS', 3);
const CONCURRENCY = envInt('SAMPLING_CONCURRENCY', 32);
const BUDGET_PERCENT = envInt('SAMPLING_BUDGET_PERCENT', 40);
const pricing = { inputPerMTokens: 0, outputPerMTokens: 1 };

interface Outcome {
  spendUSD: number;
  accepted: number;
  solved: number;
  shardsRun: number;
  seconds: number;
}

type Mode = { kind: 'unlimited' } | { kind: 'between'; budgetUSD: number } | { kind: 'shares'; budgetUSD: number };

async function runShards(url: string, round: number, mode: Mode): Promise<Outcome> {
  const runDir = mkdtempSync(path.join(os.tmpdir(), `bench-budget-${mode.kind}-`));
  const per = Math.ceil(PROMPTS / SHARDS);
  const verifier = VerifierSchema.parse({ type: 'math', keepPerPrompt: TARGET, prefer: 'first' });
  const out: Outcome = { spendUSD: 0, accepted: 0, solved: 0, shardsRun: 0, seconds: 0 };
  const started = performance.now();
  let samples = 0;
  try {
    for (let s = 0; s < SHARDS; s++) {
      const prompts = Array.from({ length: Math.min(per, PROMPTS - s * per) }, (_, k) => {
        const i = s * per + k;
        const a = 100 + ((i * 37 + round * 101) % 900);
        const b = 100 + ((i * 53 + round * 211) % 900);
        return { id: `q${i}`, prompt: `Compute ${a}+${b}.`, answer: String(a + b) };
      });
      if (mode.kind === 'between' && out.spendUSD >= mode.budgetUSD) break;
      await writeJsonlAtomic(layout.shardPrompts(runDir, s), prompts);
      const share =
        mode.kind === 'shares'
          ? budgetShareUSD({
              budgetUSD: mode.budgetUSD,
              spentUSD: out.spendUSD,
              heldUSD: 0,
              shardCount: SHARDS,
              shardIndex: s,
            })
          : undefined;
      const g = await generateShard({
        runDir,
        shardIndex: s,
        teacher: TeacherSchema.parse({
          baseURL: url,
          model: 'solve-rate-sim',
          concurrency: CONCURRENCY,
          maxInFlight: CONCURRENCY,
          pricing,
        }),
        sampling: SamplingSchema.parse({
          seed: round,
          adaptive: { minSamples: 1, maxSamples: MAX_SAMPLES, roundSize: ROUND_SIZE, stopAfterAccepted: TARGET },
        }),
        verifier,
        ...(share !== undefined
          ? { budget: { shareUSD: share, ...(samples ? { usdPerSample: out.spendUSD / samples } : {}) } }
          : {}),
      });
      const v = await rejectSample({ runDir, samples: g.samplesRef, verifier });
      if (v.samplesIn !== g.samples)
        throw new Error(`shard ${s}: the stage saw ${v.samplesIn} of ${g.samples} samples`);
      out.shardsRun += 1;
      // The spend is counted from the committed samples' usage, as the workflow's tally is.
      out.spendUSD += costUSD(g, pricing);
      samples += g.samples;
      out.accepted += v.accepted;
      out.solved += v.promptsSolved;
    }
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
  out.seconds = (performance.now() - started) / 1000;
  return out;
}

const fmt = (o: Outcome, budgetUSD?: number) =>
  `spend=$${o.spendUSD.toFixed(4)}${budgetUSD ? ` spend/budget=${(o.spendUSD / budgetUSD).toFixed(3)}` : ''} shards=${o.shardsRun} accepted=${o.accepted} solved=${o.solved} s=${o.seconds.toFixed(1)}`;

async function main(): Promise<void> {
  const m = DEFAULT_SOLVE_RATE_MODEL;
  console.log(
    `bench:sampling-budget prompts=${PROMPTS} shards=${SHARDS} target=${TARGET} max_samples=${MAX_SAMPLES} round_size=${ROUND_SIZE} budget=${BUDGET_PERCENT}% of the unlimited spend rounds=${ROUNDS}`,
  );
  console.log(
    `teacher=solve-rate endpoint (test double): solve rate ~ Beta(${m.alpha}, ${m.beta}), length ~ lognormal(median ${m.lengthMedian}, sigma ${m.lengthSigma}), wrong x${m.wrongLengthFactor}; $1 per 1M completion tokens`,
  );
  const budgets = new Map<number, { budgetUSD: number; unlimited: Outcome }>();
  const withEndpoint = async <T>(round: number, fn: (url: string) => Promise<T>) => {
    const endpoint = await startSolveRateEndpoint({ seed: round });
    try {
      return await fn(endpoint.url);
    } finally {
      await endpoint.close();
    }
  };
  const budgetOf = async (round: number) => {
    if (!budgets.has(round)) {
      const unlimited = await withEndpoint(round, (url) => runShards(url, round, { kind: 'unlimited' }));
      budgets.set(round, { budgetUSD: (unlimited.spendUSD * BUDGET_PERCENT) / 100, unlimited });
      console.log(`round ${round} unlimited: ${fmt(unlimited)}`);
    }
    return budgets.get(round)!.budgetUSD;
  };
  const rounds = await runAbba(
    ROUNDS,
    {
      A: async (round) => {
        const budgetUSD = await budgetOf(round);
        return withEndpoint(round, (url) => runShards(url, round, { kind: 'between', budgetUSD }));
      },
      B: async (round) => {
        const budgetUSD = await budgetOf(round);
        return withEndpoint(round, (url) => runShards(url, round, { kind: 'shares', budgetUSD }));
      },
    },
    (r) =>
      console.log(
        `round ${r.round} (${r.order.join('')}) budget=$${budgets.get(r.round)!.budgetUSD.toFixed(4)}: between ${fmt(r.a, budgets.get(r.round)!.budgetUSD)} | shares ${fmt(r.b, budgets.get(r.round)!.budgetUSD)}`,
      ),
  );
  const med = (f: (o: Outcome) => number) => [median(rounds.map((r) => f(r.a))), median(rounds.map((r) => f(r.b)))];
  const [accA, accB] = med((o) => o.accepted);
  const [solA, solB] = med((o) => o.solved);
  console.log(`accepted samples, at most ${TARGET} per prompt (median): between=${accA} shares=${accB}`);
  console.log(`prompts solved of ${PROMPTS} (median): between=${solA} shares=${solB}`);
  const [perA, perB] = med((o) => o.accepted / o.spendUSD);
  console.log(`accepted samples per $ (median): between=${perA.toFixed(1)} shares=${perB.toFixed(1)}`);
  const ratio = (f: (o: Outcome) => number) => median(rounds.map((r) => f(r.b) / f(r.a)));
  console.log(
    `accepted_ratio=${ratio((o) => o.accepted).toFixed(3)} solved_ratio=${ratio((o) => o.solved).toFixed(3)} spend_ratio=${ratio((o) => o.spendUSD).toFixed(3)}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
