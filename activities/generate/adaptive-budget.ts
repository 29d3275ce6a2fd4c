import { costUSD, type TeacherPricing } from '../../core/cost';
import { noProgress, roundOf, type AdaptivePlan, type PromptProgress } from './adaptive-sampling';

/**
 * Adaptive sampling within a budget (a shard's share of teacher.budgetUSD). Rounds go out in waves: wave w holds round
 * w of every prompt still sampling, in priority order, and the next wave is ordered only once this one is verified:
 *   wave 0: every prompt's first round, in prompt order (no prompt gets a second round before each has had a first);
 *   later:  promising prompts first (some samples correct, the target not reached), the highest pass rate first;
 *           then prompts with no correct sample yet.
 * A round goes out only while the spend so far plus the estimated cost of the rounds still out fits the budget; the
 * first that does not stops that prompt and every prompt after it in the wave (reason `budget`), so spare money
 * never goes to a low-yield prompt while a promising one is refused.
 *
 * Every decision is a function of the samples' recorded usage and verdicts, never of timing: the decision on the
 * k-th round of a wave waits for rounds 0..k−concurrency of the wave (at most `concurrency` run at once) and uses
 * their actual costs and the estimates of the ones between. A resumed attempt replays the waves from the samples on
 * disk and reaches the same decisions, so it asks for no sample a fault-free run would not have drawn.
 */
export interface BudgetedPrompt {
  position: number;
  progress: PromptProgress;
}

/** The order in which a wave's prompts get their round (see above); ties go by prompt position. */
export function waveOrder<T extends BudgetedPrompt>(prompts: readonly T[]): T[] {
  const rate = (p: PromptProgress) => (p.drawn ? p.accepted / p.drawn : 0);
  return [...prompts].sort((a, b) => {
    const pa = a.progress.accepted > 0 ? 0 : 1;
    const pb = b.progress.accepted > 0 ? 0 : 1;
    return pa - pb || rate(b.progress) - rate(a.progress) || a.position - b.position;
  });
}

export interface WaveIO<T> {
  /** Samples the prompt's next round; resolves with what the round cost. */
  run(prompt: T): Promise<Spend>;
  /** Stops the prompt for the budget. */
  refuse(prompt: T): Promise<void>;
}

/** Money spent and samples drawn: by a round (its samples' recorded usage, priced), or so far. */
export interface Spend {
  usd: number;
  samples: number;
}

/**
 * A round's estimated cost: the prompt's own cost per sample so far or, for a first round, the shard's, else `prior`
 * (the run's, from the shards before), times the round's size. With nothing known at all the estimate is 0: the first
 * `concurrency` first rounds go out while any budget is left, which bounds the overshoot to what they cost.
 */
export function estimateRoundUSD(
  plan: AdaptivePlan,
  progress: PromptProgress,
  usdPerSampleSoFar: number,
  spent: Spend,
  prior = 0,
) {
  const perSample = progress.drawn ? usdPerSampleSoFar : spent.samples ? spent.usd / spent.samples : prior;
  return perSample * roundOf(plan, progress.rounds).size;
}

/**
 * Runs one wave (prompts already in waveOrder) within `budgetUSD`, from `spent` before the wave. Returns the spend
 * after it. The first failure stops new rounds, waits for those out, and is rethrown.
 */
export async function runBudgetedWave<T extends BudgetedPrompt>(
  wave: readonly T[],
  opts: {
    plan: AdaptivePlan;
    concurrency: number;
    budgetUSD: number;
    spent: Spend;
    /** The prompt's own cost so far per sample drawn (0 when none is drawn). */
    usdPerSample(prompt: T): number;
    /** Cost per sample before the shard has any (the run's so far). */
    priorUSDPerSample?: number;
    io: WaveIO<T>;
  },
): Promise<Spend> {
  const window = Math.max(1, opts.concurrency);
  const outcomes: Promise<Spend>[] = [];
  const estimates: number[] = [];
  const spent = { ...opts.spent };
  let settledUpTo = -1;
  let refusing = false;
  let failed: unknown;
  for (let k = 0; k < wave.length; k++) {
    // Rounds 0..k−window are settled before round k is decided: at most `window` rounds are out at once, and the
    // decision reads only costs that any replay of the wave reads too.
    try {
      while (settledUpTo < k - window) {
        const c = await outcomes[++settledUpTo]!;
        spent.usd += c.usd;
        spent.samples += c.samples;
      }
    } catch (err) {
      failed = err;
      break;
    }
    let outstanding = 0;
    for (let j = settledUpTo + 1; j < k; j++) outstanding += estimates[j]!;
    const prompt = wave[k]!;
    const estimate = estimateRoundUSD(
      opts.plan,
      prompt.progress,
      opts.usdPerSample(prompt),
      spent,
      opts.priorUSDPerSample,
    );
    if (spent.usd >= opts.budgetUSD || spent.usd + outstanding + estimate > opts.budgetUSD) refusing = true;
    estimates[k] = refusing ? 0 : estimate;
    outcomes[k] = refusing ? opts.io.refuse(prompt).then(() => ({ usd: 0, samples: 0 })) : opts.io.run(prompt);
    // A failure is seen when it is awaited; until then it must not be reported as unhandled.
    outcomes[k]!.catch(() => undefined);
  }
  const all = await Promise.allSettled(outcomes);
  const rejected = all.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined || rejected) throw failed ?? rejected!.reason;
  const after = { ...opts.spent };
  for (const r of all as PromiseFulfilledResult<Spend>[]) {
    after.usd += r.value.usd;
    after.samples += r.value.samples;
  }
  return after;
}

export interface WavePrompt<P> extends BudgetedPrompt {
  prompt: P;
}

/**
 * Samples every prompt in budgeted waves until each has stopped (its own stop rule, or the budget). `runRound`
 * samples a prompt's next round (see sampleNextRound) and `refuse` records a budget stop; `done` is set once sampling
 * must end early (another attempt committed the shard). Returns the spend.
 */
export async function sampleInBudgetedWaves<P>(
  prompts: readonly P[],
  opts: {
    plan: AdaptivePlan;
    concurrency: number;
    budgetUSD: number;
    priorUSDPerSample?: number;
    pricing: TeacherPricing;
    runRound(prompt: P, progress: PromptProgress): Promise<{ progress: PromptProgress; stopped: boolean }>;
    refuse(prompt: P, progress: PromptProgress): Promise<void>;
    done?(): boolean;
  },
): Promise<Spend> {
  let active: WavePrompt<P>[] = prompts.map((prompt, position) => ({ prompt, position, progress: noProgress() }));
  let spent: Spend = { usd: 0, samples: 0 };
  const usdOf = (p: PromptProgress) => costUSD(p, opts.pricing);
  while (active.length && !opts.done?.()) {
    const next: WavePrompt<P>[] = [];
    spent = await runBudgetedWave(waveOrder(active), {
      plan: opts.plan,
      concurrency: opts.concurrency,
      budgetUSD: opts.budgetUSD,
      ...(opts.priorUSDPerSample !== undefined ? { priorUSDPerSample: opts.priorUSDPerSample } : {}),
      spent,
      usdPerSample: (w) => (w.progress.drawn ? usdOf(w.progress) / w.progress.drawn : 0),
      io: {
        run: async (w) => {
          const before = w.progress;
          if (opts.done?.()) return { usd: 0, samples: 0 };
          const r = await opts.runRound(w.prompt, before);
          w.progress = r.progress;
          if (!r.stopped) next.push(w);
          return { usd: usdOf(r.progress) - usdOf(before), samples: r.progress.drawn - before.drawn };
        },
        refuse: (w) => opts.refuse(w.prompt, w.progress),
      },
    });
    active = next;
  }
  return spent;
}
