import type { SampleRow } from '../../schemas/artifact';
import { verifyCode, type CodeOptions } from './code';
import { JudgeError, judgeSample, type JudgeConfig } from './judge';
import { verifyMath } from './math';
import { verifyChoice, verifyExact, verifyRegex } from './simple';

/** What a task's answer is checked with. */
export const TASK_TYPES = ['math', 'choice', 'exact', 'regex', 'code', 'judge', 'none'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

export function isTaskType(x: unknown): x is TaskType {
  return typeof x === 'string' && (TASK_TYPES as readonly string[]).includes(x);
}

export interface SampleVerdict {
  correct: boolean;
  /** correct | incorrect | no_answer | unparseable_gold (| judge_unreadable) */
  verdict: string;
  extracted: string | null;
  reason: string;
  /** The verifier that decided (when not the plain one of the task, e.g. 'judge' for an unparseable math gold). */
  task?: TaskType;
  /** Code: why the run failed (timeout, memory_limit, wrong_answer…). */
  failure?: string;
  /** LLM judge: its verdict and rationale, stored with the sample. */
  judge?: { model: string; verdict: 'correct' | 'incorrect'; rationale: string };
}

/** A sample as the verifiers see it: a SampleRow, or an audit row. `task` and `tests` override the configured type. */
export type VerifiableSample = Pick<SampleRow, 'content' | 'answer'> &
  Partial<Pick<SampleRow, 'prompt' | 'reasoning'>> & {
    task?: TaskType;
    /** Code tasks: the tests (else `answer` holds them as JSON). */
    tests?: unknown;
  };

export interface VerifierOptions {
  /** The task type of samples that carry none. */
  type: TaskType;
  /** Exact match ignores case. */
  ignoreCase?: boolean;
  judge?: JudgeConfig;
  code?: CodeOptions;
  signal?: AbortSignal;
}

function fromPlain(v: { verdict: string; extracted: string | null; reason: string }): SampleVerdict {
  return { correct: v.verdict === 'correct', verdict: v.verdict, extracted: v.extracted, reason: v.reason };
}

function syncVerdict(sample: VerifiableSample, type: TaskType, o: Partial<VerifierOptions>): SampleVerdict | null {
  switch (type) {
    case 'math':
      return fromPlain(verifyMath(sample.content, sample.answer));
    case 'exact':
      return fromPlain(verifyExact(sample.content, sample.answer, { ignoreCase: o.ignoreCase }));
    case 'choice':
      return fromPlain(verifyChoice(sample.content, sample.answer));
    case 'regex':
      return fromPlain(verifyRegex(sample.content, sample.answer));
    case 'none':
      // a source without a verifier (existing responses, open-ended writing): the filters still judge its samples
      return {
        correct: true,
        verdict: 'correct',
        extracted: null,
        reason: 'no verifier for this source (verifier: none)',
      };
    default:
      return null;
  }
}

/**
 * Synchronous verification for the checkers that need no process or network (math, exact, choice, regex); the
 * final answer lives after the reasoning (a DeepSeek-style sample keeps its reasoning apart, a <think> one inline).
 * Code and judge tasks need `verifySampleAsync`. `type` may be the run spec's `verifier.type` or full options.
 */
export function verifySample(
  sample: VerifiableSample,
  type: TaskType | (Partial<VerifierOptions> & { type: TaskType }),
): SampleVerdict {
  const o = typeof type === 'string' ? { type } : type;
  const task = sample.task ?? o.type;
  const v = syncVerdict(sample, task, o);
  if (!v) throw new Error(`verifySample: ${task} tasks are verified asynchronously (verifySampleAsync)`);
  return v;
}

async function askJudge(
  sample: VerifiableSample,
  cfg: JudgeConfig,
  note: string | undefined,
  signal?: AbortSignal,
): Promise<SampleVerdict> {
  const j = await judgeSample(
    { prompt: sample.prompt, response: sample.content, reasoning: sample.reasoning, gold: sample.answer, note },
    cfg,
    signal,
  );
  return {
    correct: j.verdict === 'correct',
    verdict: j.unreadable ? 'judge_unreadable' : j.verdict,
    extracted: null,
    reason: `judge ${j.model}: ${j.verdict}${j.rationale ? ` — ${j.rationale}` : ''}`,
    task: 'judge',
    judge: { model: j.model, verdict: j.verdict, rationale: j.rationale },
  };
}

/**
 * Every task type. Fails closed: a gold the checker cannot use is never accepted — it goes to the LLM judge when one
 * is configured, else it is rejected with that reason. Throws JudgeError / SandboxUnavailableError for failures of
 * the judge endpoint or of the sandbox (infrastructure, not a verdict on the sample).
 */
export async function verifySampleAsync(sample: VerifiableSample, o: VerifierOptions): Promise<SampleVerdict> {
  const task = sample.task ?? o.type;
  if (task === 'judge') {
    if (!o.judge)
      return {
        correct: false,
        verdict: 'unparseable_gold',
        extracted: null,
        reason: 'judge task but no judge configured',
        task,
      };
    return askJudge(sample, o.judge, undefined, o.signal);
  }
  let v: SampleVerdict;
  if (task === 'code') {
    const c = await verifyCode(sample.content, sample.tests ?? sample.answer, o.code);
    v = {
      correct: c.verdict === 'correct',
      verdict: c.verdict,
      extracted: c.extracted,
      reason: c.reason,
      ...(c.failure ? { failure: c.failure } : {}),
    };
  } else v = syncVerdict(sample, task, o)!;
  if (v.verdict === 'unparseable_gold' && o.judge && task !== 'code') {
    const j = await askJudge(
      sample,
      o.judge,
      `The ${task} checker could not use the reference answer (${v.reason}); grade by meaning.`,
      o.signal,
    );
    return { ...j, reason: `${task} checker could not use the gold (${v.reason}); ${j.reason}` };
  }
  return v;
}

export { JudgeError };
