/**
 * LLM judge: any OpenAI-compatible chat model grades a response against a rubric (and the reference answer when
 * there is one). For tasks with no checkable answer, and for math samples whose gold cannot be parsed.
 *
 * The judge sees the task, the reference answer and the response's final part (the reasoning only when asked), and
 * must reply with JSON {"rationale": …, "verdict": "correct" | "incorrect"}; verdict and rationale are stored with
 * the sample. Fails closed: a reply with no readable verdict is 'incorrect'.
 *
 * Errors: a 4xx answer other than 408/409/429 (bad key, unknown model, bad request) will not get better with retries
 * → JudgeError with retryable=false (the activity turns it into a non-retryable failure); timeouts, 429 and 5xx are
 * retried by the client (`maxRetries`), then surface as retryable.
 */
import OpenAI from 'openai';
import { dropThinkBlocks, finalPart, formatThink } from '../text/think';
import { apiKeyFor } from '../security/worker-policy';

export interface JudgeConfig {
  /** OpenAI-compatible endpoint, ending in /v1. */
  baseURL: string;
  model: string;
  /** NAME of the environment variable holding the API key (never the key itself: configs are stored). */
  apiKeyEnv?: string;
  /** What counts as correct; the default asks for agreement with the reference answer. */
  rubric?: string;
  temperature?: number;
  maxTokens?: number;
  timeoutSeconds?: number;
  maxRetries?: number;
  /** Show the judge the reasoning (<think> part / reasoning field) too; default: the final answer only. */
  includeReasoning?: boolean;
  /** Characters of response shown to the judge (the end is kept when longer). */
  maxResponseChars?: number;
}

export const DEFAULT_RUBRIC =
  'Grade the RESPONSE to the TASK. It is correct only if its final answer is fully correct and agrees with the ' +
  'REFERENCE ANSWER (when one is given) in meaning, allowing different but equivalent wording or notation. ' +
  'A response that hedges between several answers, gives no final answer, or is only partly correct is incorrect.';

export interface JudgeInput {
  prompt?: string;
  response: string;
  reasoning?: string;
  gold?: string;
  /** Why the judge is asked (shown to it), e.g. "the reference answer could not be parsed by the math verifier". */
  note?: string;
}

export interface JudgeVerification {
  verdict: 'correct' | 'incorrect';
  rationale: string;
  model: string;
  /** True when the judge's reply held no readable verdict (scored incorrect). */
  unreadable?: boolean;
}

export class JudgeError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'JudgeError';
  }
}

const clients = new Map<string, OpenAI>();

function clientFor(cfg: JudgeConfig): OpenAI {
  // Asked on every call, before any request: the worker's key policy decides whether this key may go to this host.
  const apiKey =
    apiKeyFor({ field: 'verifier.judge.apiKeyEnv', envName: cfg.apiKeyEnv, baseURL: cfg.baseURL }) ?? 'not-needed';
  const key = `${cfg.baseURL}\u0000${apiKey}\u0000${cfg.timeoutSeconds ?? 60}\u0000${cfg.maxRetries ?? 2}`;
  let c = clients.get(key);
  if (!c) {
    c = new OpenAI({
      baseURL: cfg.baseURL,
      apiKey,
      timeout: (cfg.timeoutSeconds ?? 60) * 1000,
      maxRetries: cfg.maxRetries ?? 2,
    });
    clients.set(key, c);
  }
  return c;
}

function tail(s: string, n: number): string {
  return s.length > n ? '…' + s.slice(s.length - n) : s;
}

export function judgeMessages(
  input: JudgeInput,
  cfg: Pick<JudgeConfig, 'rubric' | 'includeReasoning' | 'maxResponseChars'>,
): Array<{ role: 'system' | 'user'; content: string }> {
  const max = cfg.maxResponseChars ?? 8000;
  const fin = finalPart(input.response ?? '');
  let shown: string;
  if (cfg.includeReasoning)
    shown = input.reasoning ? formatThink(input.reasoning, input.response ?? '') : (input.response ?? '');
  else shown = fin ?? '(the response stops inside its reasoning: no final answer)';
  const parts = [
    input.prompt !== undefined ? `## TASK\n${input.prompt}` : '## TASK\n(not given)',
    input.gold !== undefined && input.gold !== ''
      ? `## REFERENCE ANSWER\n${input.gold}`
      : '## REFERENCE ANSWER\n(none: judge by the rubric)',
    `## RESPONSE${cfg.includeReasoning ? '' : ' (final answer part)'}\n${tail(shown.trim(), max)}`,
    input.note ? `## NOTE\n${input.note}` : '',
    'Reply with one JSON object and nothing else: {"rationale": "<one or two sentences>", "verdict": "correct" or "incorrect"}',
  ].filter(Boolean);
  return [
    { role: 'system', content: `You are a strict, impartial grader.\n\nRUBRIC:\n${cfg.rubric ?? DEFAULT_RUBRIC}` },
    { role: 'user', content: parts.join('\n\n') },
  ];
}

/** Reads the verdict out of the judge's reply: a JSON object (possibly fenced), else "verdict: correct" text. */
export function parseJudgeReply(text: string): { verdict: 'correct' | 'incorrect'; rationale: string } | null {
  const t = dropThinkBlocks(text ?? '').trim();
  const objs = t.match(/\{[\s\S]*\}/g) ?? [];
  for (const cand of [...objs].reverse()) {
    try {
      const o = JSON.parse(cand) as Record<string, unknown>;
      const v = String(o.verdict ?? o.grade ?? o.result ?? '')
        .trim()
        .toLowerCase();
      const rationale = String(o.rationale ?? o.reason ?? o.explanation ?? '').trim();
      if (['correct', 'pass', 'yes', 'true'].includes(v)) return { verdict: 'correct', rationale };
      if (['incorrect', 'fail', 'no', 'false', 'wrong'].includes(v)) return { verdict: 'incorrect', rationale };
    } catch {
      /* not JSON */
    }
  }
  const m = /verdict\W{0,5}(incorrect|correct)\b/i.exec(t);
  if (m)
    return {
      verdict: m[1].toLowerCase() as 'correct' | 'incorrect',
      rationale: t.replace(m[0], '').trim().slice(0, 1000),
    };
  return null;
}

/** Asks the judge. Throws JudgeError (see `retryable`) when the endpoint fails. */
export async function judgeSample(
  input: JudgeInput,
  cfg: JudgeConfig,
  signal?: AbortSignal,
): Promise<JudgeVerification> {
  const client = clientFor(cfg);
  let text: string;
  try {
    const res = await client.chat.completions.create(
      {
        model: cfg.model,
        messages: judgeMessages(input, cfg),
        temperature: cfg.temperature ?? 0,
        max_tokens: cfg.maxTokens ?? 512,
      },
      { signal },
    );
    text = res.choices?.[0]?.message?.content ?? '';
  } catch (e) {
    if (e instanceof OpenAI.APIError && typeof e.status === 'number') {
      const retryable = !(e.status >= 400 && e.status < 500) || [408, 409, 429].includes(e.status);
      throw new JudgeError(`judge ${cfg.model} at ${cfg.baseURL}: HTTP ${e.status}: ${e.message}`, retryable, e.status);
    }
    throw new JudgeError(`judge ${cfg.model} at ${cfg.baseURL}: ${(e as Error).message}`, true);
  }
  const p = parseJudgeReply(text);
  if (!p)
    return {
      verdict: 'incorrect',
      rationale: `unreadable judge reply: ${JSON.stringify(text.slice(0, 300))}`,
      model: cfg.model,
      unreadable: true,
    };
  return { ...p, model: cfg.model };
}
