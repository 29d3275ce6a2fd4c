import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import OpenAI, { toFile } from 'openai';
import type { PromptRow } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { layout } from '../artifacts/layout';
import { exists, writeJsonAtomic } from '../artifacts/store';
import { promptSeed } from './sample-ids';
import { chatRequestBody, classifyTeacherError, toTeacherAnswer, type TeacherAnswer } from './teacher-client';

export interface ShardBatchInput {
  runDir: string;
  shardIndex: number;
  teacher: RunSpec['teacher'];
  sampling: RunSpec['sampling'];
  configHash: string;
  prompts: PromptRow[];
  client: OpenAI;
  signal?: AbortSignal;
  heartbeat: (details: Record<string, unknown>) => void;
}

/**
 * Generates one shard through the provider's Batch API: upload the shard's requests, create a batch, poll it
 * durably, read its output. Never submits twice: the batch id is written next to the shard as soon as the batch
 * exists, and a batch created just before a crash (before that file) is found again by its metadata key.
 * Returns the answers by prompt id; prompts missing from the output are left to the caller (online requests).
 */
export async function runShardBatch(input: ShardBatchInput): Promise<Map<string, TeacherAnswer>> {
  const markerFile = `${layout.shardSamples(input.runDir, input.shardIndex)}.batch.json`;
  const key = `${path.basename(input.runDir)}:${input.shardIndex}:${input.configHash}`;
  try {
    let batchId = (await exists(markerFile))
      ? (JSON.parse(await fs.readFile(markerFile, 'utf8')) as { batchId: string }).batchId
      : await findBatch(input.client, key);
    if (!batchId) {
      batchId = await submit(input, key);
    }
    await writeJsonAtomic(markerFile, { batchId, key });
    const batch = await waitForBatch(input, batchId);
    const answers = new Map<string, TeacherAnswer>();
    if (!batch.output_file_id) return answers;
    const text = await (await input.client.files.content(batch.output_file_id)).text();
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const row = JSON.parse(line) as {
        custom_id: string;
        response?: { status_code: number; body: OpenAI.Chat.ChatCompletion } | null;
      };
      if (row.response?.status_code === 200 && Array.isArray(row.response.body?.choices)) {
        answers.set(row.custom_id, toTeacherAnswer(row.response.body, input.teacher.model, 0));
      }
    }
    return answers;
  } catch (err) {
    throw classifyTeacherError(err, input.teacher);
  }
}

async function findBatch(client: OpenAI, key: string): Promise<string | null> {
  for await (const b of client.batches.list({ limit: 100 })) {
    if (b.metadata?.distillery_key === key && !['failed', 'expired', 'cancelled', 'cancelling'].includes(b.status))
      return b.id;
  }
  return null;
}

async function submit(input: ShardBatchInput, key: string): Promise<string> {
  const lines = input.prompts.map((p) =>
    JSON.stringify({
      custom_id: p.id,
      method: 'POST',
      url: '/v1/chat/completions',
      body: chatRequestBody(input.teacher, input.sampling, {
        prompt: p.prompt,
        n: input.sampling.n,
        seed: promptSeed(input.sampling.seed, p.id, 0),
      }),
    }),
  );
  const file = await input.client.files.create({
    file: await toFile(Buffer.from(lines.join('\n') + '\n'), `${key.replace(/:/g, '_')}.jsonl`),
    purpose: 'batch',
  });
  const batch = await input.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    metadata: { distillery_key: key },
  });
  return batch.id;
}

async function waitForBatch(input: ShardBatchInput, batchId: string): Promise<OpenAI.Batches.Batch> {
  for (;;) {
    const batch = await input.client.batches.retrieve(batchId);
    input.heartbeat({ batchId, batchStatus: batch.status, batchCompleted: batch.request_counts?.completed ?? 0 });
    if (['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) return batch;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, input.teacher.batchPollSeconds * 1000);
      input.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
    if (input.signal?.aborted) throw new Error(`cancelled while waiting for batch ${batchId}; a retry resumes it`);
  }
}
