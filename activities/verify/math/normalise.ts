/** LaTeX clean-up of one answer string before tokenising: fractions, spacing, units, degrees, %, $, separators. */
import { findLastBoxed, matchBrace, stripDelims } from './latex';

const UNIT_WORDS =
  '(?:square |sq\\.? |cubic |cu\\.? )?(?:units?|cm|mm|km|meters?|metres?|centimeters?|centimetres?|millimeters?|kilometers?|' +
  'inch(?:es)?|feet|foot|ft|yards?|yds?|miles?|grams?|kg|kilograms?|pounds?|lbs?|ounces?|oz|liters?|litres?|ml|mL|' +
  'gallons?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|degrees?|degs?|radians?|rads?|' +
  'dollars?|cents?|percent|mph|km/h|kph|m/s|sq ft|square feet|square inches|square meters|square centimeters)';
const TRAILING_UNIT_RE = new RegExp(`([\\d}).\\]])\\s*${UNIT_WORDS}(?:\\s*\\^\\s*\\{?\\s*[23]\\s*\\}?|²|³)?\\s*$`, 'i');
/**
 * An integer whose groups after the first are exactly three digits, set apart by spaces; not after a decimal point,
 * an exponent, a subscript or a letter (x^2 100 is not x^{2100}) and not before more digits or a fraction bar
 * (2 100/200 is a mixed number).
 */
const SPACED_GROUPS_RE = /(?<![\d.^_A-Za-z])\d{1,3}(?: +\d{3})+(?! *[\d/])/g;
const TRAILING_TEXT_RE =
  /^([\s\S]*?[\w})\].])\s*\\text\s*\{\s*([A-Za-z][A-Za-z ./-]*)\}(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$/;

/** Unwrap \text{…} (after units were dealt with); \text{ and } / \text{ or } become list separators. */
function unwrapText(s: string): string {
  for (let k = 0; k < 8 && s.includes('\\text'); k++) {
    const i = s.indexOf('\\text');
    let j = i + 5;
    while (s[j] === ' ') j++;
    if (s[j] !== '{') {
      s = s.slice(0, i) + s.slice(i + 5);
      continue;
    }
    const e = matchBrace(s, j);
    if (e < 0) break;
    s = s.slice(0, i) + s.slice(j + 1, e) + s.slice(e + 1);
  }
  return s;
}

/**
 * LaTeX normalisation of one answer string. With `gold` given and the gold a bare value (no relation), a
 * single-variable equation "x = 3" is reduced to its right-hand side.
 */
export function normalizeAnswer(input: string, gold?: string): string {
  let s = input;
  if (/[^\x20-\x7e]/.test(s)) {
    s = s
      .replace(/[\u2212\u2013\u2014]/g, '-')
      .replace(/\u00d7/g, '\\times ')
      .replace(/[\u00b7\u22c5]/g, '\\cdot ')
      .replace(/\u00f7/g, '\\div ')
      .replace(/\u03c0/g, '\\pi ')
      .replace(/\u221e/g, '\\infty ')
      .replace(/\u221a/g, '\\sqrt')
      .replace(/\u2264/g, '\\le ')
      .replace(/\u2265/g, '\\ge ')
      .replace(/\u2260/g, '\\ne ')
      .replace(/\u00b0/g, '^\\circ')
      .replace(/\u222a/g, '\\cup ')
      .replace(/\u00b1/g, '\\pm ')
      .replace(/\u00b2/g, '^2')
      .replace(/\u00b3/g, '^3')
      .replace(/[\u00a0\u2007\u2008\u2009\u200a\u202f]/g, ' ')
      .replace(/[\u2018\u2019]/g, "'");
  }
  s = stripDelims(s.trim());
  s = s.replace(/\\(?:displaystyle|textstyle|scriptstyle)(?![A-Za-z])/g, '');
  if (s.includes('\\boxed') || s.includes('\\fbox')) {
    const b = findLastBoxed(s);
    if (b) s = b.content;
  }
  s = s
    .replace(/\\(?:left|right)\s*\./g, '')
    .replace(/\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|bigg|Bigg|big|Big)(?![A-Za-z])/g, '')
    .replace(/\\[dtc]frac(?![A-Za-z])/g, '\\frac')
    .replace(/\\[dt]binom(?![A-Za-z])/g, '\\binom');
  // thousands separators written with a LaTeX thin space or a braced comma: 10,\!080  10{,}080
  s = s.replace(/(\d)(?:,\\!|\{,\}|,\\,)\s*(?=\d{3}(?!\d))/g, '$1');
  // (a matrix row break, two backslashes, followed by a space is not the spacing command "backslash space")
  s = s
    .replace(/(?<!\\)((?:\\\\)*)\\!/g, '$1')
    .replace(/(?<!\\)((?:\\\\)*)\\[,;: ]/g, '$1 ')
    .replace(/\\q?quad(?![A-Za-z])/g, ' ')
    .replace(/~/g, ' ');
  // Thousands groups set apart by a (thin, non-breaking, LaTeX) space are one number: 45\,000, 1\ 000, 1~000.
  // Left alone they would be two numbers side by side, which the parser refuses rather than multiply.
  if (/\d +\d/.test(s)) s = s.replace(SPACED_GROUPS_RE, (m) => m.replace(/ +/g, ''));
  s = s.replace(
    /\\(?:mbox|textrm|textnormal|mathrm|textup|textit|mathit|textsf|mathsf|textbf|mathbf|boldsymbol|bm|hbox)\s*\{/g,
    '\\text{',
  );
  // an angle or a segment named before its value: \angle ABC = 30^\circ, m\angle B = 30, \overline{AB} = 5
  s = s
    .replace(/^(?:m\s*)?\\(?:angle|measuredangle)\s*([A-Z]{1,3})\s*(?==)/, '$1 ')
    .replace(/^\\overline\s*\{\s*([A-Z]{2})\s*\}\s*(?==)/, '$1 ');
  // degrees
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree(?![A-Za-z])/g, '');
  // percent and currency
  s = s.replace(/\\?%/g, '').replace(/\\\$/g, '').replace(/\$/g, '');
  s = s.replace(/\\mathbb\s*\{?\s*R\s*\}?|\\R(?![A-Za-z])/g, '(-\\infty,\\infty)');
  // trailing \text{unit} after a value
  for (let k = 0; k < 3; k++) {
    const m = TRAILING_TEXT_RE.exec(s);
    if (!m || !/[\d\w})\]]/.test(m[1])) break;
    s = m[1];
  }
  if (s.includes('\\text')) s = unwrapText(s);
  s = s.replace(/\s+and\s+/g, ', ').replace(/\s+or\s+/g, ' \\lor ');
  s = s.replace(/\bpercent\b/gi, '').replace(/\b(?:dollars?|USD)\b/g, '');
  for (let k = 0; k < 2; k++) {
    const m = TRAILING_UNIT_RE.exec(s);
    if (!m) break;
    s = s.slice(0, m.index + m[1].length);
  }
  s = s.replace(/[\s.,;:?]+$/, '').replace(/^[\s=:]+/, '');
  // plain-text mixed number "2 1/2"
  s = s.replace(/^(-?\d+)\s+(\d+)\/(\d+)$/, (m0, w: string, a: string, b: string) =>
    BigInt(a) < BigInt(b) ? `${w}\\frac{${a}}{${b}}` : m0,
  );
  s = stripDelims(s.trim());
  if (/^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/,/g, '');
  s = s.replace(/\s+/g, ' ').trim();
  if (gold !== undefined && !/[=<>]|\\[lg]eq?(?![A-Za-z])|\\ne/.test(gold)) {
    const m = /^([A-Za-z](?:_\{?\w+\}?)?|\\[A-Za-z]+)\s*=\s*([^=<>]+)$/.exec(s);
    if (m) s = m[2].trim();
  }
  return s;
}
