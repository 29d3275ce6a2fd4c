/** The planted truth of bench:dedup's synthetic data, and how a side's drops are scored against it. */

export type Kind =
  'original' | 'exact' | 'near' | 'hard_negative' | 'contaminated' | 'near_miss_7' | 'arith_heldout' | 'arith_train';

export interface Truth {
  kind: Kind;
  /** For near duplicates: true Jaccard of word shingles with the source. */
  jaccard?: number;
}

/**
 * Precision and recall of one kind of drop against the planted truth. `positive` says which planted samples must be
 * dropped for this reason, `ambiguous` which may go either way (neither counted for nor against).
 */
export function scoreDrops(
  truth: Map<string, Truth>,
  drops: Map<string, string>,
  isReason: (r: string | undefined) => boolean,
  positive: (t: Truth) => boolean,
  ambiguous: (t: Truth) => boolean = () => false,
): { tp: number; fp: number; fn: number; ambiguousDropped: number; precision: number; recall: number } {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let ambiguousDropped = 0;
  for (const [id, t] of truth) {
    const dropped = isReason(drops.get(id));
    if (positive(t)) {
      if (dropped) tp++;
      else fn++;
    } else if (ambiguous(t)) {
      if (dropped) ambiguousDropped++;
    } else if (dropped) fp++;
  }
  return {
    tp,
    fp,
    fn,
    ambiguousDropped,
    precision: tp + fp ? tp / (tp + fp) : 1,
    recall: tp + fn ? tp / (tp + fn) : 1,
  };
}
