import * as path from 'node:path';
import type { ArtifactRef, RejectRow, SampleRow } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { currentActivity } from '../activity-context';
import { AtomicJsonlWriter, readJsonl, verifyRef } from '../artifacts/store';
import { verifySample, type SampleVerdict } from './verify-sample';

export interface RejectSampleInput {
  runDir: string;
  samples: ArtifactRef;
  verifier: RunSpec['verifier'];
}

export interface RejectSampleResult {
  samplesIn: number;
  accepted: number;
  rejected: number;
  acceptanceRate: number;
  reasons: Record<string, number>;
  prompts: number;
  /** Prompts with at least one correct sample. */
  promptsSolved: number;
  acceptedRef: ArtifactRef;
  rejectsRef: ArtifactRef;
  passRatesRef: ArtifactRef;
}

interface Candidate {
  id: string;
  length: number;
  order: number;
}

/**
 * Rejection sampling: verify every teacher sample against the gold answer, keep up to k correct samples per prompt
 * (tie-break by spec), and record each prompt's pass rate and why each rejected sample was rejected.
 * Accounting: samplesIn = accepted + rejected.
 */
export async function rejectSample(input: RejectSampleInput): Promise<RejectSampleResult> {
  await verifyRef(input.samples);
  const dir = path.join(input.runDir, 'verify');
  const ctx = currentActivity();
  // Pass 1: verdicts. Only ids, verdicts and lengths stay in memory; rows are re-read in pass 2.
  const verdicts = new Map<string, SampleVerdict>();
  const byPrompt = new Map<string, { total: number; correct: Candidate[] }>();
  let order = 0;
  for await (const s of readJsonl<SampleRow>(input.samples)) {
    const v = verifySample(s, input.verifier.type);
    verdicts.set(s.id, v);
    const entry = byPrompt.get(s.promptId) ?? { total: 0, correct: [] };
    entry.total += 1;
    if (v.correct) entry.correct.push({ id: s.id, length: s.content.length + (s.reasoning?.length ?? 0), order });
    byPrompt.set(s.promptId, entry);
    order += 1;
    if (order % 1000 === 0) ctx?.heartbeat({ verified: order });
  }
  const kept = new Set<string>();
  for (const entry of byPrompt.values()) {
    const ranked = [...entry.correct].sort((a, b) => (input.verifier.prefer === 'shorter' ? a.length - b.length || a.order - b.order : a.order - b.order));
    for (const c of ranked.slice(0, input.verifier.keepPerPrompt)) kept.add(c.id);
  }

  const acceptedOut = new AtomicJsonlWriter(path.join(dir, 'accepted.jsonl'));
  const rejectsOut = new AtomicJsonlWriter(path.join(dir, 'rejects.jsonl'));
  const reasons: Record<string, number> = {};
  let samplesIn = 0;
  for await (const s of readJsonl<SampleRow>(input.samples)) {
    samplesIn += 1;
    const v = verdicts.get(s.id)!;
    if (kept.has(s.id)) {
      await acceptedOut.write({ ...s, verdict: { extracted: v.extracted, reason: v.reason } });
      continue;
    }
    const reason = v.correct ? 'over_keep_per_prompt' : v.verdict;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    const reject: RejectRow = { id: s.id, stage: 'verify', reason, detail: v.reason, row: { promptId: s.promptId, extracted: v.extracted, gold: s.answer } };
    await rejectsOut.write(reject);
  }
  const passRatesOut = new AtomicJsonlWriter(path.join(dir, 'pass-rates.jsonl'));
  let promptsSolved = 0;
  for (const [promptId, e] of byPrompt) {
    if (e.correct.length) promptsSolved += 1;
    await passRatesOut.write({ promptId, samples: e.total, correct: e.correct.length, passRate: e.correct.length / e.total });
  }
  const acceptedRef = await acceptedOut.finish();
  const rejectsRef = await rejectsOut.finish();
  return {
    samplesIn,
    accepted: acceptedRef.count,
    rejected: rejectsRef.count,
    acceptanceRate: samplesIn ? acceptedRef.count / samplesIn : 0,
    reasons,
    prompts: byPrompt.size,
    promptsSolved,
    acceptedRef,
    rejectsRef,
    passRatesRef: await passRatesOut.finish(),
  };
}
