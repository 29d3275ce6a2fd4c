import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { rngFrom } from '../../activities/dataset/arithmetic-task';
import { BOS, decode, encodePrompt, EOS, PAD } from '../../activities/evaluate/byte-tokenizer';
import { OnnxStudent, type GeneratedTokenLogprob } from '../../activities/evaluate/onnx-student';
import type { SamplingRequest } from './http-common';

export interface StudentRequest extends SamplingRequest {
  prompt: string;
  /** top_logprobs when the request asked for logprobs (0 = the chosen token's only), else undefined. */
  topLogprobs?: number;
}

/** One entry of OpenAI's `choices[].logprobs.content`. */
export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: { token: string; logprob: number; bytes: number[] | null }[];
}

export interface StudentChoice {
  index: number;
  content: string;
  finishReason: 'stop' | 'length';
  tokens: number;
  logprobs?: ChatTokenLogprob[];
}

const SPECIAL: Record<number, string> = { [BOS]: '<bos>', [EOS]: '<eos>', [PAD]: '<pad>' };

/** A byte token as the API shows it: its text (latin1 for a lone non-ASCII byte) and its bytes; specials by name. */
function apiToken(id: number): { token: string; bytes: number[] | null } {
  return id in SPECIAL
    ? { token: SPECIAL[id]!, bytes: null }
    : { token: Buffer.from([id]).toString('latin1'), bytes: [id] };
}

function toChatLogprobs(lps: GeneratedTokenLogprob[], contentBytes: number): ChatTokenLogprob[] {
  // A stop sequence cut the content: the tokens past it are not part of the answer.
  return lps.slice(0, contentBytes).map((t) => ({
    ...apiToken(t.id),
    logprob: t.logprob,
    top_logprobs: t.top.map((a) => ({ ...apiToken(a.id), logprob: a.logprob })),
  }));
}

/** The prompt does not fit the student's context: the API's context_length_exceeded. */
export class StudentContextError extends Error {
  constructor(
    readonly promptTokens: number,
    readonly contextSize: number,
  ) {
    super(
      `This model's maximum context length is ${contextSize} tokens. However, your messages resulted in ${promptTokens} tokens. Please reduce the length of the messages.`,
    );
  }
}

/**
 * Chat completions from the tiny students the local fine-tuning API trained (and from the untrained base models they
 * start from), run in-process by onnxruntime-node with the student's byte tokenizer and chat template. A provider
 * serves its fine-tuned models on the same endpoint; so does the local server, so that a run with
 * `fineTune.backend: openai` against it evaluates its baseline and its student there.
 * `modelDir` resolves a model name to its model dir (model.onnx + config.json), or undefined when it is not served.
 */
export function createStudentServing(modelDir: (model: string) => Promise<string | undefined>, threads = 1) {
  const loaded = new Map<string, Promise<OnnxStudent>>();

  function open(dir: string): Promise<OnnxStudent> {
    let p = loaded.get(dir);
    if (!p) {
      p = (async () => {
        const config = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8')) as { max_len?: unknown };
        const maxLen = Number(config.max_len);
        if (!Number.isInteger(maxLen) || maxLen < 2)
          throw new Error(`${dir}/config.json: max_len ${String(config.max_len)} is not a context length`);
        return OnnxStudent.load(path.join(dir, 'model.onnx'), maxLen, threads);
      })();
      loaded.set(dir, p);
      p.catch(() => loaded.delete(dir));
    }
    return p;
  }

  return {
    /** The n choices for one request, or undefined when the model is not one of the students. */
    async complete(req: StudentRequest): Promise<StudentChoice[] | undefined> {
      const dir = await modelDir(req.model);
      if (!dir) return undefined;
      const student = await open(dir);
      const prompt = encodePrompt(req.prompt);
      const room = student.maxLen - prompt.length;
      if (room < 1) throw new StudentContextError(prompt.length, student.maxLen);
      // The same seed gives the same choices (as the API's best-effort `seed`); choices differ from one another.
      const rng = rngFrom('student-serving', req.model, String(req.seed), req.prompt);
      const outs = await student.generate(
        Array.from({ length: req.n }, () => prompt),
        {
          temperature: req.temperature,
          topP: req.topP,
          maxNewTokens: Math.min(room, req.maxTokens ?? room),
          rng,
          ...(req.topLogprobs !== undefined ? { logprobs: req.topLogprobs } : {}),
        },
      );
      return outs.map((o, index) => {
        let content = decode(o.ids);
        let stopped = false;
        for (const s of req.stop) {
          const i = content.indexOf(s);
          if (i >= 0) {
            content = content.slice(0, i);
            stopped = true;
          }
        }
        return {
          index,
          content,
          finishReason: o.truncated && !stopped ? 'length' : 'stop',
          tokens: o.ids.length,
          ...(o.logprobs ? { logprobs: toChatLogprobs(o.logprobs, Buffer.byteLength(content)) } : {}),
        };
      });
    },
    async close(): Promise<void> {
      for (const p of loaded.values()) await (await p.catch(() => null))?.release();
      loaded.clear();
    },
  };
}
