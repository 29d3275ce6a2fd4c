import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { ArtifactRef, RejectRow, SampleRow } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { currentActivity } from '../activity-context';
import { AtomicJsonlWriter, readJsonl, verifyRef } from '../artifacts/store';

export interface FormatFilterInput {
  runDir: string;
  accepted: ArtifactRef;
  filters: RunSpec['filters'];
}

export interface FormatFilterResult {
  samplesIn: number;
  kept: number;
  rejected: number;
  reasons: Record<string, number>;
  sftRef: ArtifactRef;
  rejectsRef: ArtifactRef;
}

/** One SFT example in OpenAI chat-messages format, ready for TRL / LLaMA-Factory / axolotl. */
export interface SftRow {
  id: string;
  messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
}

type Formatted = { ok: true; text: string } | { ok: false; reason: string; detail: string };

/** Puts a sample into one template: reasoning inside <think>…</think>, then the answer summary. */
export function formatAssistant(sample: Pick<SampleRow, 'content' | 'reasoning'>, requireThink: boolean): Formatted {
  const content = sample.content.trim();
  const reasoning = sample.reasoning?.trim();
  const opens = (content.match(/<think>/g) ?? []).length;
  const closes = (content.match(/<\/think>/g) ?? []).length;
  if (reasoning && opens === 0 && closes === 0) {
    // DeepSeek-style APIs return the chain of thought apart from the answer: repair into the inline template.
    return content ? { ok: true, text: `<think>\n${reasoning}\n</think>\n${content}` } : { ok: false, reason: 'empty_answer', detail: 'reasoning without a final answer' };
  }
  if (opens === 0 && closes === 1) {
    // Some chat templates put the opening tag in the prompt, so the completion starts inside the reasoning.
    return formatAssistant({ content: `<think>${content}` }, requireThink);
  }
  if (opens > 1 || closes > 1 || opens !== closes) return { ok: false, reason: 'malformed_think', detail: `${opens} <think> and ${closes} </think> tags` };
  if (opens === 0) {
    if (requireThink) return { ok: false, reason: 'no_think', detail: 'no <think> reasoning block' };
    return content ? { ok: true, text: content } : { ok: false, reason: 'empty', detail: 'empty content' };
  }
  const m = /^([\s\S]*?)<think>([\s\S]*?)<\/think>([\s\S]*)$/.exec(content)!;
  const [, before, inner, after] = m as unknown as [string, string, string, string];
  if (before.trim()) return { ok: false, reason: 'malformed_think', detail: 'text before <think>' };
  if (!inner.trim()) return { ok: false, reason: 'empty_reasoning', detail: 'empty <think> block' };
  if (!after.trim()) return { ok: false, reason: 'empty_answer', detail: 'nothing after </think>' };
  return { ok: true, text: `<think>\n${inner.trim()}\n</think>\n${after.trim()}` };
}

function normalisedKey(prompt: string, text: string): string {
  const norm = (s: string) => s.toLowerCase().replace(/\s+/g, ' ').trim();
  return createHash('sha256').update(norm(prompt)).update('\u0000').update(norm(text)).digest('hex');
}

/**
 * Format and filter: repair what can be repaired into the <think> template, drop what cannot, drop truncated,
 * overlong and exact-duplicate samples, and write the SFT dataset. Every drop stays in rejects.jsonl with its reason.
 * Accounting: samplesIn = kept + rejected.
 */
export async function formatFilter(input: FormatFilterInput): Promise<FormatFilterResult> {
  await verifyRef(input.accepted);
  const dir = path.join(input.runDir, 'filter');
  const sftOut = new AtomicJsonlWriter(path.join(dir, 'sft.jsonl'));
  const rejectsOut = new AtomicJsonlWriter(path.join(dir, 'rejects.jsonl'));
  const reasons: Record<string, number> = {};
  const seen = new Set<string>();
  const ctx = currentActivity();
  let samplesIn = 0;
  const reject = async (s: SampleRow, reason: string, detail: string) => {
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    const row: RejectRow = { id: s.id, stage: 'filter', reason, detail };
    await rejectsOut.write(row);
  };
  for await (const s of readJsonl<SampleRow>(input.accepted)) {
    samplesIn += 1;
    if (samplesIn % 1000 === 0) ctx?.heartbeat({ filtered: samplesIn });
    if (input.filters.dropTruncated && s.finishReason === 'length') {
      await reject(s, 'truncated', 'finish_reason = length');
      continue;
    }
    const f = formatAssistant(s, input.filters.requireThink);
    if (!f.ok) {
      await reject(s, f.reason, f.detail);
      continue;
    }
    if (f.text.length > input.filters.maxChars) {
      await reject(s, 'too_long', `${f.text.length} chars > ${input.filters.maxChars}`);
      continue;
    }
    if (input.filters.dedupExact) {
      const key = normalisedKey(s.prompt, f.text);
      if (seen.has(key)) {
        await reject(s, 'duplicate', 'same prompt and response as an earlier sample');
        continue;
      }
      seen.add(key);
    }
    const row: SftRow = { id: s.id, messages: [{ role: 'user', content: s.prompt }, { role: 'assistant', content: f.text }] };
    await sftOut.write(row);
  }
  const sftRef = await sftOut.finish();
  const rejectsRef = await rejectsOut.finish();
  return { samplesIn, kept: sftRef.count, rejected: rejectsRef.count, reasons, sftRef, rejectsRef };
}
