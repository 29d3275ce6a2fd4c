import type { SampleRow } from '../../schemas/artifact';

/** Why a filter drops a sample (`reason` is the counted key, `detail` the human explanation), or null to keep it. */
export type Verdict = { reason: string; detail: string } | null;

/** A sample after formatting: what every filter after the format step looks at. */
export interface Candidate {
  sample: SampleRow;
  /** The assistant turn in the one template: `<think>\nR\n</think>\nS`. */
  text: string;
  /** R: the reasoning inside the think block ('' when the template has none). */
  reasoning: string;
  /** S: the summary with the final answer. */
  summary: string;
}
