/** A teacher's price in USD per 1M tokens (the run spec's `teacher.pricing`). */
export interface TeacherPricing {
  inputPerMTokens: number;
  outputPerMTokens: number;
}

/** Spend so far in USD from token counts and the teacher's price per 1M tokens (0 when no price is given). */
export function costUSD(
  tokens: { promptTokens: number; completionTokens: number },
  pricing: TeacherPricing | undefined,
): number {
  if (!pricing) return 0;
  return (tokens.promptTokens * pricing.inputPerMTokens + tokens.completionTokens * pricing.outputPerMTokens) / 1e6;
}
