/**
 * A finished run's directory, made up (deterministically) in the shape each stage writes it, with the workflow's
 * RunSummary for it: what the report is tested on without running a pipeline. Shapes follow a real demo run
 * (prepare/, generate/, verify/, filter/, finetune/train_report.json, evaluate/summary.json + results.jsonl).
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { refOfFile, writeJsonAtomic, writeJsonlAtomic } from '../../activities/artifacts/store';
import { generateArithmeticProblems, rngFrom, traceColumnArithmetic } from '../../activities/dataset/arithmetic-task';
import { benchmarkMetrics, meanWithStderr, type ItemSamples } from '../../activities/evaluate/metrics';
import type { ReportSummary } from '../../activities/report/collect';

export interface RunFixture {
  runDir: string;
  summary: ReportSummary;
  /** What the fixture put in, for the assertions. */
  expected: {
    rowsIn: number;
    prompts: number;
    quarantine: Record<string, number>;
    samples: number;
    verifyReasons: Record<string, number>;
    accepted: number;
    filterReasons: Record<string, number>;
    sft: number;
    lossSteps: number;
    pass1: Record<string, number>;
    outcomes: Record<string, { correct: number; incorrect: number; noAnswer: number }>;
  };
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** `legacy`: evaluate/summary.json as the first evaluate activity wrote it (no metrics, no benchmarks, no difficulty in rows). */
export async function makeRunFixture(opts: { legacy?: boolean } = {}): Promise<RunFixture> {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'report-run-'));
  const rng = rngFrom('report-fixture');
  const problems = generateArithmeticProblems({ seed: 5, count: 40, split: 'train' });
  const quarantine = { missing_answer: 2, duplicate_id: 1 };
  const prompts = await writeJsonlAtomic(
    path.join(runDir, 'prepare', 'prompts.jsonl'),
    problems.map((p) => ({ id: p.id, prompt: p.prompt, answer: p.answer, meta: { difficulty: p.difficulty } })),
  );
  const q = await writeJsonlAtomic(
    path.join(runDir, 'prepare', 'quarantine.jsonl'),
    Object.entries(quarantine).flatMap(([reason, n]) =>
      Array.from({ length: n }, (_, i) => ({ id: `bad-${reason}-${i}`, stage: 'prepare', reason })),
    ),
  );

  // 4 teacher samples per prompt, about 1 in 4 with a slip (so wrong); keep ≤ 1 correct per prompt
  const samples: { id: string; promptId: string; content: string; correct: boolean }[] = [];
  for (const p of problems) {
    const [a, b] = p.prompt.match(/\d+/g)!.map(Number) as [number, number];
    for (let i = 0; i < 4; i++) {
      const slip = rng() < 0.25;
      const t = traceColumnArithmetic(a, '+', b, {
        mistakeAt: (c) => (slip && c.column === 0 ? { kind: 'off-by-one', delta: 1 } : null),
      });
      samples.push({ id: `${p.id}#${i}@cfg`, promptId: p.id, content: t.text, correct: t.mistakes.length === 0 });
    }
  }
  const samplesRef = await writeJsonlAtomic(
    path.join(runDir, 'generate', 'samples.jsonl'),
    samples.map((s) => ({
      id: s.id,
      promptId: s.promptId,
      sampleIndex: Number(s.id.split('#')[1]!.split('@')[0]),
      configHash: 'cfg',
      prompt: '',
      answer: '',
      content: s.content,
      finishReason: 'stop',
    })),
  );
  const accepted: typeof samples = [];
  const verifyRejects: { id: string; stage: string; reason: string }[] = [];
  const passRates: { promptId: string; samples: number; correct: number; passRate: number }[] = [];
  for (const p of problems) {
    const mine = samples.filter((s) => s.promptId === p.id);
    let kept = 0;
    for (const s of mine) {
      if (!s.correct) verifyRejects.push({ id: s.id, stage: 'verify', reason: 'incorrect' });
      else if (kept >= 1) verifyRejects.push({ id: s.id, stage: 'verify', reason: 'over_keep_per_prompt' });
      else {
        kept++;
        accepted.push(s);
      }
    }
    const c = mine.filter((s) => s.correct).length;
    passRates.push({ promptId: p.id, samples: mine.length, correct: c, passRate: c / mine.length });
  }
  const verifyReasons: Record<string, number> = {};
  for (const r of verifyRejects) verifyReasons[r.reason] = (verifyReasons[r.reason] ?? 0) + 1;
  const acceptedRef = await writeJsonlAtomic(
    path.join(runDir, 'verify', 'accepted.jsonl'),
    accepted.map((s) => ({ id: s.id, content: s.content })),
  );
  const verifyRejectsRef = await writeJsonlAtomic(path.join(runDir, 'verify', 'rejects.jsonl'), verifyRejects);
  const passRatesRef = await writeJsonlAtomic(path.join(runDir, 'verify', 'pass-rates.jsonl'), passRates);

  // the filter drops the first two as overlong, one as a duplicate
  const filterReasons = { overlong: 2, duplicate: 1 };
  const dropped = accepted.slice(0, 3);
  const sft = accepted.slice(3);
  const sftRef = await writeJsonlAtomic(
    path.join(runDir, 'filter', 'sft.jsonl'),
    sft.map((s) => ({
      id: s.id,
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: s.content.replace('<think>', '<think>\n').replace('</think>', '\n</think>') },
      ],
    })),
  );
  const filterRejectsRef = await writeJsonlAtomic(
    path.join(runDir, 'filter', 'rejects.jsonl'),
    dropped.map((s, i) => ({ id: s.id, stage: 'filter', reason: i < 2 ? 'overlong' : 'duplicate' })),
  );

  // training: 300 steps of a decaying, noisy loss (the trainer's train_report.json format)
  const lossSteps = 300;
  const lossCurve = Array.from({ length: lossSteps }, (_, i) => ({
    step: i + 1,
    loss: Number((5.5 * Math.exp(-i / 40) + 0.05 + 0.02 * rng()).toFixed(5)),
    lr: 0.002,
  }));
  const trainReport = path.join(runDir, 'finetune', 'train_report.json');
  await writeJsonAtomic(trainReport, {
    steps: lossSteps,
    total_steps: lossSteps,
    resumed_from_step: 0,
    epochs: 2,
    examples: sft.length,
    params: 12345,
    device: 'cpu',
    final_loss: lossCurve.at(-1)!.loss,
    loss_curve: lossCurve,
  });
  const trainReportRef = await refOfFile(trainReport);

  // evaluation: 30 held-out items × 4 samples; baseline right 10% of the time, student 70%
  const items = generateArithmeticProblems({ seed: 0, count: 30, split: 'heldout' });
  const rows: Record<string, unknown>[] = [];
  const collected: Record<string, ItemSamples[]> = {};
  for (const [model, rate] of [
    ['baseline', 0.1],
    ['student', 0.7],
  ] as const) {
    collected[model] = items.map((it) => ({ id: it.id, difficulty: it.difficulty, samples: [] }));
    for (let j = 0; j < 4; j++) {
      items.forEach((it, i) => {
        const correct = rng() < rate;
        const extracted = correct
          ? it.answer
          : model === 'baseline' && rng() < 0.5
            ? null
            : String(Number(it.answer) + 1 + Math.floor(rng() * 3));
        const response =
          model === 'baseline'
            ? '#'.repeat(20 + Math.floor(rng() * 120)) + (extracted ? ` \\boxed{${extracted}}` : '')
            : `<think>${'x'.repeat(40 + Math.floor(rng() * 30))}</think>\nThe answer is \\boxed{${extracted}}.`;
        collected[model]![i]!.samples.push({
          correct,
          answer: extracted,
          chars: response.length,
          truncated: extracted === null,
        });
        rows.push({
          model,
          ...(opts.legacy ? {} : { benchmark: 'arithmetic-2digit-heldout', difficulty: it.difficulty }),
          itemId: it.id,
          sampleIndex: j,
          seed: 0,
          prompt: it.prompt,
          gold: it.answer,
          response,
          extracted,
          verdict: correct ? 'correct' : extracted === null ? 'no_answer' : 'incorrect',
          correct,
          truncated: extracted === null,
        });
      });
    }
  }
  const scores = Object.entries(collected).map(([name, its]) => {
    const m = benchmarkMetrics(its);
    const flat = its.flatMap((it) => it.samples);
    const base = {
      name,
      pass1: m.pass1,
      samples: flat.length,
      correct: flat.filter((s) => s.correct).length,
      truncated: m.truncated,
      answerChars: meanWithStderr(flat.map((s) => s.chars)),
    };
    return opts.legacy ? base : { ...base, metrics: m };
  });
  const resultsRef = await writeJsonlAtomic(path.join(runDir, 'evaluate', 'results.jsonl'), rows);
  const evalBody = {
    benchmark: 'arithmetic-2digit-heldout',
    items: items.length,
    k: 4,
    seed: 0,
    temperature: 0.6,
    top_p: 0.95,
    scores,
    ...(opts.legacy
      ? {}
      : { benchmarks: [{ name: 'arithmetic-2digit-heldout', task: 'math', items: items.length, scores }] }),
  };
  const evalSummaryRef = await writeJsonAtomic(path.join(runDir, 'evaluate', 'summary.json'), evalBody);

  const prepareIn = problems.length + sum(quarantine);
  const summary: ReportSummary = {
    runId: 'report-fixture-1',
    name: 'report-fixture',
    runDir,
    counts: {
      prepare: { in: prepareIn, kept: problems.length, quarantined: sum(quarantine), shards: 1 },
      generate: { prompts: problems.length, samples: samples.length, requests: problems.length },
      verify: {
        in: samples.length,
        accepted: accepted.length,
        rejected: verifyRejects.length,
        prompts: problems.length,
        ...Object.fromEntries(Object.entries(verifyReasons).map(([k, v]) => [`rejected.${k}`, v])),
      },
      filter: {
        in: accepted.length,
        kept: sft.length,
        rejected: dropped.length,
        'rejected.overlong': 2,
        'rejected.duplicate': 1,
      },
      finetune: { steps: lossSteps, resumedFromStep: 0 },
    },
    acceptanceRate: accepted.length / samples.length,
    tokens: { prompt: 1000, completion: 20000 },
    fineTune: {
      steps: lossSteps,
      finalLoss: lossCurve.at(-1)!.loss,
      resumedFromStep: 0,
      modelDir: path.join(runDir, 'finetune', 'model'),
    },
    evaluation: {
      benchmark: 'arithmetic-2digit-heldout',
      items: items.length,
      k: 4,
      scores: scores.map((s) => ({ name: s.name, pass1: s.pass1.mean, stderr: s.pass1.stderr })),
    },
    artifacts: {
      prompts,
      quarantine: q,
      samples: samplesRef,
      accepted: acceptedRef,
      verifyRejects: verifyRejectsRef,
      passRates: passRatesRef,
      sft: sftRef,
      filterRejects: filterRejectsRef,
      trainReport: trainReportRef,
      evalResults: resultsRef,
      evalSummary: evalSummaryRef,
    },
  };
  return {
    runDir,
    summary,
    expected: {
      rowsIn: prepareIn,
      prompts: problems.length,
      quarantine,
      samples: samples.length,
      verifyReasons,
      accepted: accepted.length,
      filterReasons,
      sft: sft.length,
      lossSteps,
      pass1: Object.fromEntries(scores.map((s) => [s.name, s.pass1.mean])),
      // counted here from the rows written, apart from the metrics code
      outcomes: Object.fromEntries(
        ['baseline', 'student'].map((m) => {
          const mine = rows.filter((r) => r.model === m);
          const correct = mine.filter((r) => r.correct).length;
          const noAnswer = mine.filter((r) => !r.correct && r.extracted === null).length;
          return [m, { correct, incorrect: mine.length - correct - noAnswer, noAnswer }];
        }),
      ),
    },
  };
}
