import * as path from 'node:path';
import type { ArtifactRef } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { currentActivity } from '../activity-context';
import { AtomicJsonlWriter, writeJsonAtomic } from '../artifacts/store';
import { generateArithmeticProblems, rngFrom } from '../dataset/arithmetic-task';
import { verifyMath } from '../verify/math';
import { decode, encodePrompt } from './byte-tokenizer';
import { meanWithStderr, passAt1, type Estimate } from './metrics';
import { OnnxStudent } from './onnx-student';


export interface EvaluateInput {
  runDir: string;
  evaluation: RunSpec['evaluation'];
  /** Models to score on the same items, e.g. the baseline (before fine-tuning) and the student. */
  models: { name: string; dir: string }[];
  maxLen: number;
}

export interface ModelScore {
  name: string;
  pass1: Estimate;
  samples: number;
  correct: number;
  truncated: number;
  answerChars: Estimate;
}

export interface EvaluateResult {
  benchmark: string;
  items: number;
  k: number;
  seed: number;
  scores: ModelScore[];
  results: ArtifactRef;
  summary: ArtifactRef;
}

const BATCH = 32;

/** Scores each model on the held-out benchmark with the rejection-sampling verifier: pass@1 over k samples per item. */
export function createEvaluate(opts: { threads?: number } = {}) {
  return async function evaluate(input: EvaluateInput): Promise<EvaluateResult> {
    const ev = input.evaluation;
    const b = ev.benchmark;
    const items = generateArithmeticProblems({ seed: b.seed, count: b.count, split: 'heldout', digits: b.digits, ops: b.ops });
    const dir = path.join(input.runDir, 'evaluate');
    const resultsOut = new AtomicJsonlWriter(path.join(dir, 'results.jsonl'));
    const ctx = currentActivity();
    const scores: ModelScore[] = [];
    for (const model of input.models) {
      const student = await OnnxStudent.load(path.join(model.dir, 'model.onnx'), input.maxLen, opts.threads);
      const correct: boolean[][] = items.map(() => []);
      const lengths: number[] = [];
      let truncated = 0;
      try {
        for (let j = 0; j < ev.k; j++) {
          // One stream per sample index, the same for every model: both are asked with the same randomness.
          const rng = rngFrom('evaluate', ev.seed, j);
          for (let start = 0; start < items.length; start += BATCH) {
            const batch = items.slice(start, start + BATCH);
            const outs = await student.generate(
              batch.map((it) => encodePrompt(it.prompt)),
              { temperature: ev.temperature, topP: ev.top_p, maxNewTokens: ev.maxNewTokens, rng },
            );
            for (let i = 0; i < batch.length; i++) {
              const item = batch[i]!;
              const response = decode(outs[i]!.ids);
              const v = verifyMath(response, item.answer);
              const ok = v.verdict === 'correct';
              correct[start + i]!.push(ok);
              lengths.push(response.length);
              if (outs[i]!.truncated) truncated += 1;
              await resultsOut.write({ model: model.name, itemId: item.id, sampleIndex: j, seed: ev.seed, prompt: item.prompt, gold: item.answer, response, extracted: v.extracted, verdict: v.verdict, correct: ok, truncated: outs[i]!.truncated });
            }
            ctx?.heartbeat({ model: model.name, sample: j, done: start + batch.length });
          }
        }
      } finally {
        await student.release();
      }
      const flat = correct.flat();
      scores.push({ name: model.name, pass1: passAt1(correct), samples: flat.length, correct: flat.filter(Boolean).length, truncated, answerChars: meanWithStderr(lengths) });
    }
    const results = await resultsOut.finish();
    const summaryBody = { benchmark: `arithmetic-${b.digits}digit-heldout`, items: items.length, k: ev.k, seed: ev.seed, temperature: ev.temperature, top_p: ev.top_p, scores };
    const summary = await writeJsonAtomic(path.join(dir, 'summary.json'), summaryBody);
    return { benchmark: summaryBody.benchmark, items: items.length, k: ev.k, seed: ev.seed, scores, results, summary };
  };
}
