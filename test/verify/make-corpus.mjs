#!/usr/bin/env node
// Builds the labelled corpus of the math verifier (see README.md in this folder):
//
//   node test/verify/make-corpus.mjs [path/to/shared/data/benchmarks] [--out corpus.jsonl]     (default: stdout)
//
// The tests and the benchmark build it into a temp dir at run time; it is not committed. Only the benchmarks' gold
// ANSWERS are read — never their problems or reference solutions: every response's reasoning is synthetic filler.
// Deterministic (seeded). Labels never come from the verifier under test: every label is fixed by how the row
// was made (an equivalent rewrite of the gold → true, a perturbation or a known-wrong approximation → false), and
// the hand-written rows were labelled by hand.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { filler, pick, rng } from './corpus-helpers.mjs';
import { formRows } from './corpus-forms.mjs';
import { FORM_HAND_ROWS, HAND_ROWS } from './corpus-hand-rows.mjs';
import { variants } from './corpus-variants.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const outFlag = argv.indexOf('--out');
const outPath = outFlag >= 0 ? argv[outFlag + 1] : null;
const positional = argv.filter((a, k) => a !== '--out' && (outFlag < 0 || k !== outFlag + 1));
const benchDir = positional[0] ?? path.resolve(here, '../../../shared/data/benchmarks');
if (!fs.existsSync(path.join(benchDir, 'math500.jsonl'))) {
  console.error(`make-corpus: no math500.jsonl in ${benchDir} (pass the benchmarks folder as the first argument)`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------------------------
// response templates (realistic model outputs)
// ---------------------------------------------------------------------------------------------------------------

const TEMPLATES = {
  r1_boxed: (r, a) =>
    `<think>\n${r}\n\nLet me double-check that once more... yes, that holds.\n</think>\n\nTherefore, the final answer is $\\boxed{${a}}$.`,
  plain_boxed: (r, a) => `${r}\n\nSo the answer is $\\boxed{${a}}$.`,
  display_boxed: (r, a) => `${r}\n\nPutting it together:\n\\[\n\\boxed{${a}}\n\\]`,
  minerva: (r, a) => `${r}\n\nFinal Answer: The final answer is $${a}$. I hope it is correct.`,
  answer_colon: (r, a) => `${r}\n\n**Answer:** $${a}$`,
  after_think: (r, a) => `<think>\n${r}\n</think>\n\n$${a}$`,
};
const DOLLAR_TEMPLATES = new Set(['minerva', 'answer_colon', 'after_think']);

function render(template, reasoning, answer) {
  let t = template;
  // "$…$"-delimited templates cannot hold a "\$" (money) nor a long answer after </think>
  if (DOLLAR_TEMPLATES.has(t) && (/\\\$|\$/.test(answer) || answer.length > 60)) t = 'r1_boxed';
  return { text: TEMPLATES[t](reasoning, answer), template: t };
}

// ---------------------------------------------------------------------------------------------------------------
// build
// ---------------------------------------------------------------------------------------------------------------

const rows = [];
const add = (response, gold, label, category, source) => rows.push({ response, gold, label, category, source });

// 1. programmatic rows from MATH-500 golds
const math500 = fs
  .readFileSync(path.join(benchDir, 'math500.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
const templateNames = Object.keys(TEMPLATES);
let intBudget = 70;
let tIdx = 0;
for (const item of math500) {
  const v = variants(item.answer);
  if (!v) continue;
  if (v.cat === 'integer' && intBudget-- <= 0) continue;
  const src = `math500:${item.unique_id}`;
  const posA = pick(v.pos);
  const negA = pick(v.neg);
  // the gold (as written in the benchmark) and the wrong answer both appear in the reasoning in passing
  const reasoning = filler(rng() < 0.5 ? [item.answer, negA] : [negA, item.answer]);
  const tp = render(templateNames[tIdx++ % templateNames.length], reasoning, posA);
  add(tp.text, item.answer, true, v.cat, `${src} equivalent rewrite (${tp.template})`);
  const tn = render(templateNames[tIdx++ % templateNames.length], reasoning, negA);
  add(tn.text, item.answer, false, v.cat, `${src} perturbed (${tn.template})`);
  // non-integer golds: a second pair in which the reasoning holds a boxed draft of the other answer
  if (v.cat !== 'integer' && rng() < 0.35) {
    const draftWrong = `<think>\n${reasoning}\n\nSo maybe the answer is \\boxed{${negA}}? Wait, let me recheck.\n</think>\n\nThe answer is $\\boxed{${posA}}$.`;
    add(draftWrong, item.answer, true, 'think_vs_final', `${src} wrong draft in think, right final`);
    const draftRight = `<think>\n${reasoning}\n\nSo the answer is \\boxed{${posA}}. Hmm, but maybe not.\n</think>\n\nThe answer is $\\boxed{${negA}}$.`;
    add(draftRight, item.answer, false, 'think_vs_final', `${src} right draft in think, wrong final`);
  }
}

// 2. AIME (zero-padded golds) and AMC (numeric golds)
for (const f of ['aime24', 'amc23']) {
  const items = fs
    .readFileSync(path.join(benchDir, `${f}.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  for (const it of items.slice(0, 10)) {
    const gold = String(it.answer);
    const n = Number(gold);
    add(
      `<think>\nComputing carefully, we get ${n}.\n</think>\n\n\\boxed{${n}}`,
      gold,
      true,
      'integer',
      `${f}:${it.id ?? it.url ?? ''} unpadded`,
    );
    add(
      `<think>\nComputing carefully, we get ${n + 2}.\n</think>\n\n\\boxed{${n + 2}}`,
      gold,
      false,
      'integer',
      `${f}:${it.id ?? it.url ?? ''} off by two`,
    );
  }
}

// 3. GSM8K: the gold is the whole worked answer ending in "#### N"
const gsm = fs
  .readFileSync(path.join(benchDir, 'gsm8k_test.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
for (const it of gsm.slice(0, 12)) {
  const n = it.answer.split('####').pop().trim().replace(/,/g, '');
  // the gold keeps GSM8K's shape (worked text, then "#### N") with synthetic worked text
  const gold = `${filler([String(Number(n) + 1)])}\n#### ${n}`;
  add(
    `Let's think step by step.\n${filler([n])}\nThe answer is ${n}.`,
    gold,
    true,
    'gsm8k',
    'gsm8k_test answer, "The answer is N"',
  );
  add(
    `Let's think step by step.\n${filler([n])}\nThe answer is ${Number(n) + 3}.`,
    gold,
    false,
    'gsm8k',
    'gsm8k_test answer, wrong number',
  );
}

// 4. hand-written rows
for (const [response, gold, label, category] of HAND_ROWS) add(response, gold, label, category, 'hand-written');

// 5. answer forms (appended after the rows above, which stay as they were): thousands separators written as spaces,
//    equations that state the value, approximations after the exact value, points written as assignments. Labels
//    follow from the construction: the value written is the gold (true) or a different number / a form the policy
//    rejects (false, the reason in `source`).
let formInts = 30;
for (const item of math500) {
  const g = item.answer;
  if (/^-?\d+$/.test(g) && Math.abs(Number(g)) < 1000 && formInts-- <= 0) continue;
  for (const [category, answer, label, why] of formRows(g)) {
    const tp = render(templateNames[tIdx++ % templateNames.length], filler([g]), answer);
    add(tp.text, g, label, category, `math500:${item.unique_id} ${why} (${tp.template})`);
  }
}

for (const [response, gold, label, category] of FORM_HAND_ROWS)
  add(response, gold, label, category, 'hand-written (answer forms)');

const text = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const stats = {};
for (const r of rows) {
  stats[r.category] ??= { true: 0, false: 0 };
  stats[r.category][r.label] += 1;
}
if (outPath) {
  fs.writeFileSync(outPath, text);
  console.error(`wrote ${rows.length} rows (${text.length} bytes) to ${outPath}`);
  console.error(JSON.stringify(stats));
} else process.stdout.write(text);
