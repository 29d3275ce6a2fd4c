import * as ort from 'onnxruntime-node';
import { EOS, PAD, VOCAB } from './byte-tokenizer';

export interface SamplingOptions {
  temperature: number;
  topP: number;
  maxNewTokens: number;
  rng: () => number;
  /** Also return each generated token's log-probability and the top `logprobs` alternatives' (exact softmax, T = 1). */
  logprobs?: number;
}

export interface GeneratedTokenLogprob {
  id: number;
  logprob: number;
  top: { id: number; logprob: number }[];
}

/**
 * The student run in-process by onnxruntime-node. The exported graph has no KV cache, so each step feeds the whole
 * batch; rows are right-padded and each row's next token is read at its own last position (the model is causal, so
 * padding after a position cannot change its logits).
 */
export class OnnxStudent {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly maxLen: number,
  ) {}

  static async load(onnxPath: string, maxLen: number, threads = 2): Promise<OnnxStudent> {
    const session = await ort.InferenceSession.create(onnxPath, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    return new OnnxStudent(session, maxLen);
  }

  async logits(batch: number[][]): Promise<{ data: Float32Array; seqLen: number }> {
    const seqLen = Math.max(...batch.map((r) => r.length));
    const ids = new BigInt64Array(batch.length * seqLen).fill(BigInt(PAD));
    batch.forEach((row, b) => row.forEach((id, t) => (ids[b * seqLen + t] = BigInt(id))));
    const out = await this.session.run({ input_ids: new ort.Tensor('int64', ids, [batch.length, seqLen]) });
    const logits = out.logits ?? out[this.session.outputNames[0]!];
    return { data: logits!.data as Float32Array, seqLen };
  }

  /** Samples one completion per prompt; returns the generated ids (without the prompt) per row. */
  async generate(
    prompts: number[][],
    opts: SamplingOptions,
  ): Promise<{ ids: number[]; truncated: boolean; logprobs?: GeneratedTokenLogprob[] }[]> {
    const rows = prompts.map((p) => ({
      ids: [...p],
      out: [] as number[],
      done: false,
      truncated: false,
      lps: [] as GeneratedTokenLogprob[],
    }));
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const active = rows.filter((r) => !r.done);
      if (!active.length) break;
      const { data, seqLen } = await this.logits(active.map((r) => r.ids));
      active.forEach((r, b) => {
        const offset = (b * seqLen + r.ids.length - 1) * VOCAB;
        const row = data.subarray(offset, offset + VOCAB);
        const next = sampleToken(row, opts);
        if (opts.logprobs !== undefined && next !== EOS) r.lps.push(tokenLogprobs(row, next, opts.logprobs));
        if (next === EOS) {
          r.done = true;
          return;
        }
        r.ids.push(next);
        r.out.push(next);
        if (r.ids.length >= this.maxLen) {
          r.done = true;
          r.truncated = true;
        }
      });
    }
    return rows.map((r) => ({
      ids: r.out,
      truncated: r.truncated || !r.done,
      ...(opts.logprobs !== undefined ? { logprobs: r.lps } : {}),
    }));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The model's own distribution (log-softmax of the logits, before temperature and top-p, as OpenAI and vLLM report it). */
export function tokenLogprobs(logits: Float32Array, chosen: number, k: number): GeneratedTokenLogprob {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const logZ = max + Math.log(sum);
  const order = Array.from(logits.keys())
    .sort((a, b) => logits[b]! - logits[a]!)
    .slice(0, k);
  return { id: chosen, logprob: logits[chosen]! - logZ, top: order.map((id) => ({ id, logprob: logits[id]! - logZ })) };
}

/** Temperature + nucleus (top-p) sampling; temperature 0 is greedy. */
export function sampleToken(logits: Float32Array, opts: Pick<SamplingOptions, 'temperature' | 'topP' | 'rng'>): number {
  if (opts.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const probs = Array.from(logits, (v, i) => ({ i, p: Math.exp((v - max) / opts.temperature) }));
  const total = probs.reduce((s, x) => s + x.p, 0);
  probs.sort((a, b) => b.p - a.p);
  const nucleus: { i: number; p: number }[] = [];
  let mass = 0;
  for (const x of probs) {
    nucleus.push(x);
    mass += x.p / total;
    if (mass >= opts.topP) break;
  }
  const nucleusMass = nucleus.reduce((s, x) => s + x.p, 0);
  let r = opts.rng() * nucleusMass;
  for (const x of nucleus) {
    r -= x.p;
    if (r <= 0) return x.i;
  }
  return nucleus[nucleus.length - 1]!.i;
}
