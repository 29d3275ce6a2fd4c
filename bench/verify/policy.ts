/**
 * Rows of the labelled math corpus whose label is a policy choice of this project rather than a fact every grader
 * must agree with. The benchmark reports accuracy on them apart, so that a grader with another policy is not counted
 * as wrong where it only chose differently, and our own score there is not read as accuracy.
 *
 * Decided from the row's text alone (the gold and the response's final answer), never from either verifier's output:
 *   identical_unparseable   the final answer is the gold string itself, but the gold is one we cannot parse (an angle
 *                           name, an unknown macro, "?"): we fail closed (false), a grader comparing strings says true;
 *   integral                an integral in the gold or the answer: we do not evaluate integrals (false);
 *   degrees                 a degree sign or "degrees" on either side: whether 60 equals 60°, and π/3 does not, is a
 *                           convention;
 *   inequality_vs_interval  an inequality against an interval ("x > 3" vs (3,∞)): ours equal; math-verify has an
 *                           option for it, off by default;
 *   vector_vs_tuple         a column vector (pmatrix/bmatrix) against a parenthesised tuple: ours equal;
 *   tuple_vs_list           an ordered tuple "(1, 2)" against a bare or braced list "1, 2": ours differ;
 *   multiset                a braced set with a repeated element "\{1, 2, 2\}": ours differ from "\{1, 2\}";
 *   mixed_number_text       "3 1/4" in plain text read as the mixed number 3¼.
 */
export const POLICY_REASONS = [
  'identical_unparseable',
  'integral',
  'degrees',
  'inequality_vs_interval',
  'vector_vs_tuple',
  'tuple_vs_list',
  'multiset',
  'mixed_number_text',
] as const;
export type PolicyReason = (typeof POLICY_REASONS)[number];

export interface CorpusRow {
  response: string;
  gold: string;
  label: boolean;
  category: string;
}

/** The text after the last `</think>` (the final answer part), or the whole response when there is none. */
function finalPart(response: string): string {
  const k = response.lastIndexOf('</think>');
  return k >= 0 ? response.slice(k + '</think>'.length) : response;
}

/** The content of the last `\boxed{…}` (braces matched), else of the last `$…$`, else the final part trimmed. */
export function finalAnswerText(response: string): string {
  const part = finalPart(response);
  const at = part.lastIndexOf('\\boxed{');
  if (at >= 0) {
    let depth = 0;
    for (let k = at + '\\boxed'.length; k < part.length; k++) {
      if (part[k] === '\\') {
        k++;
        continue;
      }
      if (part[k] === '{') depth++;
      else if (part[k] === '}' && --depth === 0) return part.slice(at + '\\boxed{'.length, k).trim();
    }
    return part.slice(at + '\\boxed{'.length).trim();
  }
  const dollars = /\$([^$]+)\$[^$]*$/.exec(part);
  return (dollars ? dollars[1]! : part).trim();
}

const INEQUALITY = /<|>|\\[lg]eq?\b|\\[lg]t\b|≤|≥/;
const INTERVAL = /\\infty|^\s*(?:[a-z]\s*\\in\s*)?(?:\\left)?[[(][^,]+,[^,]+(?:\\right)?[\])]\s*$/;
const VECTOR = /\\begin\{[pb]matrix\}/;
const TUPLE = /^\s*(?:\\left)?\((?:[^()]|\([^()]*\))*,(?:[^()]|\([^()]*\))*(?:\\right)?\)\s*$/;
const LIST = /^\s*(?:\\\{)?[^()[\]]*,[^()[\]]*(?:\\\})?\s*$/;
const MIXED_TEXT = /^-?\d+\s+\d+\/\d+$/;

function hasRepeatedElement(s: string): boolean {
  const m = /^\s*\\\{(.*)\\\}\s*$/.exec(s);
  if (!m) return false;
  const items = m[1]!.split(',').map((x) => x.replace(/\s+/g, ''));
  return new Set(items).size < items.length;
}

export function policyReason(row: CorpusRow): PolicyReason | null {
  const final = finalPart(row.response);
  const answer = finalAnswerText(row.response);
  const gold = row.gold;
  const either = (test: (s: string) => boolean) => test(gold) || test(answer);
  const oneEach = (p: (s: string) => boolean, q: (s: string) => boolean) =>
    (p(gold) && q(answer)) || (q(gold) && p(answer));
  if (/\\int(?![a-zA-Z])/.test(gold) || /\\int(?![a-zA-Z])/.test(final)) return 'integral';
  if (row.category === 'unparseable_gold' && gold.trim() !== '' && final.includes(`\\boxed{${gold}`))
    return 'identical_unparseable';
  if (either((s) => /\\circ|°|\bdegrees?\b/.test(s))) return 'degrees';
  if (
    oneEach(
      (s) => INEQUALITY.test(s),
      (s) => INTERVAL.test(s) && !INEQUALITY.test(s),
    )
  )
    return 'inequality_vs_interval';
  if (
    oneEach(
      (s) => VECTOR.test(s),
      (s) => TUPLE.test(s),
    )
  )
    return 'vector_vs_tuple';
  if (
    oneEach(
      (s) => TUPLE.test(s),
      (s) => LIST.test(s) && !TUPLE.test(s),
    )
  )
    return 'tuple_vs_list';
  if (either(hasRepeatedElement)) return 'multiset';
  if (MIXED_TEXT.test(answer)) return 'mixed_number_text';
  return null;
}
