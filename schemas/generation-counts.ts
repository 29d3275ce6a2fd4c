/** What generation counts, for one shard (the activity's result) and summed over a run (the workflow's tally). */
export interface GenerationCounts {
  prompts: number;
  samples: number;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  /** Samples found already written by an earlier attempt (work not redone). */
  resumedSamples: number;
}
