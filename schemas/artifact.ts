/**
 * What travels through workflow history instead of data: a reference to an artifact on disk.
 * `count` is the number of JSONL rows (or 1 for a single JSON document / directory).
 */
export interface ArtifactRef {
  uri: string;
  sha256: string;
  count: number;
}

/** One prompt after preparation: the unit generation is sharded over. */
export interface PromptRow {
  id: string;
  prompt: string;
  answer: string;
  /** Per-row task type and code tests, when the dataset maps them (see verifier.type). */
  task?: string;
  tests?: unknown;
  /** Pass-through fields of the source row that are not mapped (kept small). */
  meta?: Record<string, unknown>;
  /** The mixture source the row came from (runs with `datasets`). */
  source?: string;
  /** The response already in the data, for a source with `responses: existing`. */
  response?: string;
}

/** One teacher sample with its provenance. `id` is deterministic: `${promptId}#${sampleIndex}@${configHash}`. */
export interface SampleRow {
  id: string;
  promptId: string;
  sampleIndex: number;
  configHash: string;
  prompt: string;
  answer: string;
  task?: string;
  tests?: unknown;
  /** The mixture source of the sample's prompt (runs with `datasets`). */
  source?: string;
  content: string;
  reasoning?: string;
  finishReason: string | null;
  usage: { promptTokens: number; completionTokens: number };
  /** Cancelled mid-stream as wasted (finishReason aborted_loop / aborted_length): why, and max_tokens left unspent. */
  aborted?: { detail: string; savedTokens: number };
  /**
   * Adaptive sampling: the verdict the sample got when its round was verified during generation. A retried shard
   * decides from it instead of verifying again (a sandbox timeout or a judge need not repeat itself); the
   * reject-sample stage always verifies for itself.
   */
  roundCorrect?: boolean;
  teacher: { model: string; systemFingerprint?: string | null };
  sampling: { temperature: number; top_p: number; max_tokens: number; seed: number };
  latencyMs: number;
}

/** A row dropped by a stage, with the reason: every stage accounts for its rows (in = kept + rejected + quarantined). */
export interface RejectRow {
  id: string;
  stage: string;
  reason: string;
  detail?: string;
  row?: unknown;
  /** The mixture source of the rejected row (runs with `datasets`). */
  source?: string;
}
