import type { RunSpec } from '../schemas/run-spec';

/** Spend so far in USD from token counts and the teacher's price per 1M tokens (0 when no price is given). */
export function costUSD(tokens: { promptTokens: number; completionTokens: number }, pricing: RunSpec['teacher']['pricing']): number {
  if (!pricing) return 0;
  return (tokens.promptTokens * pricing.inputPerMTokens + tokens.completionTokens * pricing.outputPerMTokens) / 1e6;
}
