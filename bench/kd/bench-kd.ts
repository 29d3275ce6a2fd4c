import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  generateArithmeticProblems,
  extractBoxedAnswer,
  solveWithReasoning,
} from '../../activities/dataset/arithmetic-task';
import { layout } from '../../activities/artifacts/layout';
import { readJsonl, writeJsonAtomic, writeJsonlAtomic } from '../../activities/artifacts/store';
import { generateShard } from '../../activities/generate/generate-shard';
import { mergeShards } from '../../activities/generate/merge-shards';
import { alignSidecarTo } from '../../activities/generate/logprobs-files';
import { createEvaluate } from '../../activities/evaluate/evaluate';
import { toMessages } from '../../activities/filter/output';
import { pythonBin, trainerScript } from '../../infra/paths';
import { startTeacherServer } from '../../infra/teacher/server';
import { EvaluationSchema, SamplingSchema, TeacherSchema } from '../../schemas/run-spec';
import type { SampleRow } from '../../schemas/artifact';
import { envInt, envNumber } from '../rounds';

/**
 * bench:kd — does the student learn more from the teacher's distribution than from its sampled tokens alone?
 *
 * Teacher: a tiny byte-level GPT trained here on correct column-addition chains, served over HTTP by the local
 * OpenAI-compatible server (ONNX, exact softmax) with top-k logprobs. It answers KD_PROMPTS training prompts
 * (n = 2, temperature 1: a real distribution, so some answers are wrong); the samples whose boxed answer is right are
 * accepted. Student: a smaller tiny GPT with the same byte tokenizer, trained four times on those accepted samples:
 * SFT and KD (α·T²·KL on the top-k + tail, plus (1−α)·CE) on all of them and on the first 10%, with the same steps,
 * batch, learning rate and seed. Each is scored on the held-out split (greedy, pass@1 ± s.e. over items) by the
 * evaluate activity. Last line: `sft= kd= sft_small= kd_small=` (pass@1 on the held-out items).
 */
const PROMPTS = envInt('KD_PROMPTS', 300);
const TEACHER_STEPS = envInt('KD_TEACHER_STEPS', 500);
const STUDENT_STEPS = envInt('KD_STUDENT_STEPS', 300);
const EVAL_ITEMS = envInt('KD_EVAL_ITEMS', 200);
const K = envInt('KD_TOP_K', 20);
const T = envNumber('KD_TEMPERATURE', 2);
const ALPHA = envNumber('KD_ALPHA', 0.5);
const SEED = envInt('KD_SEED', 0);
const REUSED_TEACHER = process.env.KD_TEACHER_DIR || undefined;
const MAX_LEN = 128;
const TEACHER_MODEL = { d_model: 64, n_layer: 2, n_head: 2, max_len: MAX_LEN };
const STUDENT_MODEL = { d_model: 32, n_layer: 2, n_head: 2, max_len: MAX_LEN };

interface TrainReport {
  train_time_s: number;
  final_loss: number;
  kd?: Record<string, unknown>;
}

/** The tiny trainer run directly (the fine-tune activity runs this script with this kind of config). */
function train(dir: string, config: Record<string, unknown>): TrainReport {
  mkdirSync(dir, { recursive: true });
  const configPath = path.join(dir, 'config.json');
  writeFileSync(
    configPath,
    JSON.stringify({ output_dir: dir, threads: 2, log_every: 50, checkpoint_every: 100_000, ...config }),
  );
  const r = spawnSync(pythonBin(), [trainerScript('train_tiny.py'), '--config', configPath, '--no-resume'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, CUDA_VISIBLE_DEVICES: '' },
  });
  if (r.status !== 0) throw new Error(`trainer failed (${r.status}) for ${dir}:\n${r.stderr.slice(-2000)}`);
  return JSON.parse(readFileSync(path.join(dir, 'train_report.json'), 'utf8')) as TrainReport;
}

async function main(): Promise<void> {
  const started = performance.now();
  const root = mkdtempSync(path.join(os.tmpdir(), 'bench-kd-'));
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
  try {
    // 1. the teacher: trained on correct chains of thought for one set of training prompts, or one trained earlier
    // by this bench (KD_TEACHER_DIR: its directory, with model/ and train_report.json), which both sides then share
    const teacherDir = REUSED_TEACHER ?? path.join(root, 'teacher');
    if (REUSED_TEACHER) {
      const tr = JSON.parse(readFileSync(path.join(teacherDir, 'train_report.json'), 'utf8')) as TrainReport;
      console.log(`teacher: reused ${teacherDir} (final loss ${tr.final_loss})`);
    } else {
      const teacherProblems = generateArithmeticProblems({ seed: 101, count: 800, split: 'train' });
      const teacherSft = await writeJsonlAtomic(
        path.join(teacherDir, 'sft.jsonl'),
        teacherProblems.map((p) => {
          const [a, b] = p.prompt.match(/\d+/g)!.map(Number) as [number, number];
          return toMessages(p.id, p.prompt, solveWithReasoning(a, '+', b));
        }),
      );
      const tr = train(teacherDir, {
        data: path.join(teacherDir, 'sft.jsonl'),
        model: TEACHER_MODEL,
        epochs: 1000,
        max_steps: TEACHER_STEPS,
        batch_size: 32,
        lr: 3e-3,
        seed: SEED,
      });
      console.log(
        `teacher: tiny GPT d${TEACHER_MODEL.d_model}×${TEACHER_MODEL.n_layer}, ${TEACHER_STEPS} steps on ${teacherSft.count} correct chains, final loss ${tr.final_loss} (${elapsed()})`,
      );
    }

    // 2. the teacher answers other training prompts through the OpenAI-compatible server, with top-k logprobs
    const server = await startTeacherServer({ port: 0, students: { 'tiny-teacher': path.join(teacherDir, 'model') } });
    const runDir = path.join(root, 'run');
    const prompts = generateArithmeticProblems({ seed: 202, count: PROMPTS, split: 'train' });
    await writeJsonlAtomic(
      layout.shardPrompts(runDir, 0),
      prompts.map((p) => ({ id: p.id, prompt: p.prompt, answer: p.answer })),
    );
    const sampling = SamplingSchema.parse({ n: 2, temperature: 1, top_p: 1, max_tokens: 100, seed: SEED, logprobs: K });
    try {
      await generateShard({
        runDir,
        shardIndex: 0,
        teacher: TeacherSchema.parse({ baseURL: server.url, model: 'tiny-teacher', concurrency: 4 }),
        sampling,
      });
    } finally {
      await server.close();
    }
    const merged = await mergeShards({ runDir, shardCount: 1 });
    const lp = merged.logprobs!;
    const samples: SampleRow[] = [];
    for await (const s of readJsonl<SampleRow>(merged.samples)) samples.push(s);
    // 3. verification: the boxed answer must be the right one
    const accepted = samples.filter((s) => extractBoxedAnswer(s.content) === s.answer);
    console.log(
      `generation: ${samples.length} samples (${PROMPTS} prompts × 2, T=1, top_logprobs=${K}), ${accepted.length} accepted (${((100 * accepted.length) / samples.length).toFixed(1)}%); sidecar ${lp.bytes} bytes for ${lp.tokens} tokens = ${(lp.bytes / lp.tokens).toFixed(1)} bytes/token (${elapsed()})`,
    );

    const budgets = { all: accepted, small: accepted.slice(0, Math.max(1, Math.round(accepted.length / 10))) };
    const data: Record<string, { sft: string; sidecar: string; rows: number; dropped: number }> = {};
    for (const [name, rows] of Object.entries(budgets)) {
      const sft = path.join(root, name, 'sft.jsonl');
      await writeJsonlAtomic(
        sft,
        rows.map((s) => toMessages(s.id, s.prompt, s.content)),
      );
      const sidecar = path.join(root, name, 'logprobs.bin');
      const a = await alignSidecarTo(
        sidecar,
        rows.map((s) => s.id),
        layout.logprobs(runDir),
      );
      if (a.missing.length || a.records !== rows.length)
        throw new Error(`${name}: sidecar not aligned (${a.records} records for ${rows.length} rows)`);
      data[name] = { sft, sidecar, rows: rows.length, dropped: a.dropped };
    }
    console.log(
      `budgets: all ${data.all!.rows} rows, small ${data.small!.rows} rows (sidecar records of rejected or unused samples dropped: ${data.all!.dropped}, ${data.small!.dropped})`,
    );

    // 4. four students, same steps, batch, lr and seed
    const students: { name: string; dir: string }[] = [];
    for (const budget of ['all', 'small'] as const) {
      for (const objective of ['sft', 'kd'] as const) {
        const name = `${objective}${budget === 'small' ? '_small' : ''}`;
        const dir = path.join(root, 'students', name);
        const r = train(dir, {
          data: data[budget]!.sft,
          model: STUDENT_MODEL,
          epochs: 100_000,
          max_steps: STUDENT_STEPS,
          batch_size: 16,
          lr: 3e-3,
          seed: SEED,
          ...(objective === 'kd'
            ? {
                objective: {
                  type: 'kd',
                  temperature: T,
                  alpha: ALPHA,
                  top_k: K,
                  tail: true,
                  logprobs: data[budget]!.sidecar,
                  teacher: 'teacher tiny-teacher',
                },
              }
            : {}),
        });
        console.log(
          `student ${name}: ${STUDENT_STEPS} steps, final loss ${r.final_loss}, ${r.train_time_s} s${r.kd ? `, kd targets on ${String(r.kd.rows_with_targets)}/${String(r.kd.rows)} rows` : ''} (${elapsed()})`,
        );
        students.push({ name, dir: path.join(dir, 'model') });
      }
    }

    // 5. held-out pass@1, greedy, by the evaluate activity
    const evaluation = EvaluationSchema.parse({
      benchmark: { type: 'builtin', task: 'arithmetic', count: EVAL_ITEMS, seed: 7 },
      k: 1,
      temperature: 0,
      maxNewTokens: 100,
      baseline: false,
      report: false,
    });
    const result = await createEvaluate({ threads: 2 })({
      runDir: path.join(root, 'eval'),
      evaluation,
      models: [{ name: 'teacher', dir: path.join(teacherDir, 'model') }, ...students],
      maxLen: MAX_LEN,
    });
    const score = (name: string) => result.scores.find((s) => s.name === name)!.pass1;
    for (const s of result.scores)
      console.log(
        `${s.name.padEnd(10)} pass@1 ${s.pass1.mean.toFixed(3)} ± ${s.pass1.stderr.toFixed(3)} (held-out, ${result.items} items, greedy)`,
      );
    console.log(
      `settings: student d${STUDENT_MODEL.d_model}×${STUDENT_MODEL.n_layer} (teacher d${TEACHER_MODEL.d_model}×${TEACHER_MODEL.n_layer}), kd T=${T} α=${ALPHA} top-k=${K} tail; wall ${elapsed()}`,
    );
    const f = (n: string) => `${score(n).mean.toFixed(3)}±${score(n).stderr.toFixed(3)}`;
    await writeJsonAtomic(path.join(os.tmpdir(), 'bench-kd-last.json'), {
      scores: result.scores.map((s) => ({ name: s.name, pass1: s.pass1 })),
      bytesPerToken: lp.bytes / lp.tokens,
      accepted: accepted.length,
      samples: samples.length,
    });
    console.log(`sft=${f('sft')} kd=${f('kd')} sft_small=${f('sft_small')} kd_small=${f('kd_small')}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
