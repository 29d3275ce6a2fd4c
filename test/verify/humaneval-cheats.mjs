#!/usr/bin/env node
/**
 * The code verifier on every HumanEval task (compiled verifier in dist/: `npm run build` first):
 *   - the canonical solution (must pass) and `return None` (must fail), as bare completions;
 *   - the cheats written for any task (code-cheat-programs.ts: reading the tests, an object equal to anything, exit 0 at
 *     load, from an atexit hook, inside the function), all of which must fail.
 * Prints one line per part and exits 1 when a canonical solution fails or anything else passes.
 *
 *   node test/verify/humaneval-cheats.mjs [benchmarks dir] [--dist DIR] [--concurrency N]
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const k = argv.indexOf(name);
  return k >= 0 ? argv.splice(k, 2)[1] : dflt;
};
const dist = path.resolve(opt('--dist', path.join(here, '..', '..', 'dist')));
const concurrency = Number(opt('--concurrency', '2'));
const benchDir =
  argv[0] ?? process.env.DISTILLERY_BENCHMARKS ?? path.join(here, '..', '..', '..', 'shared', 'data', 'benchmarks');
const require = createRequire(import.meta.url);
const { verifyCode } = require(path.join(dist, 'activities', 'verify', 'code.js'));
const { ANY_TASK_CHEATS } = require(path.join(dist, 'test', 'verify', 'code-cheat-programs.js'));
const rows = fs
  .readFileSync(path.join(benchDir, 'humaneval.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));

const fence = (code) => '```python\n' + code + '\n```';
const CHEATS = Object.fromEntries(Object.entries(ANY_TASK_CHEATS).map(([k, c]) => [k, c.program]));

async function pool(jobs, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let j; (j = jobs[next++]);) await fn(j);
    }),
  );
}

const tests = (r) => ({ prompt: r.prompt, test: r.test, entry_point: r.entry_point });
let t0 = Date.now();
const canonicalFails = [];
let noneAccepted = 0;
await pool(rows, async (r) => {
  const good = await verifyCode(r.canonical_solution, tests(r));
  if (good.verdict !== 'correct') canonicalFails.push(`${r.task_id}: ${good.reason}`);
  if ((await verifyCode(`${r.prompt}    return None\n`, tests(r))).verdict === 'correct') noneAccepted++;
});
console.log(
  `canonical correct ${rows.length - canonicalFails.length}/${rows.length}, 'return None' accepted ${noneAccepted}/${rows.length} (${((Date.now() - t0) / 1000).toFixed(1)} s, concurrency ${concurrency})`,
);
for (const f of canonicalFails) console.log(`  ${f}`);

t0 = Date.now();
const accepted = Object.fromEntries(Object.keys(CHEATS).map((k) => [k, 0]));
await pool(
  Object.keys(CHEATS).flatMap((k) => rows.map((r) => [k, r])),
  async ([k, r]) => {
    if ((await verifyCode(fence(CHEATS[k](r.entry_point)), tests(r))).verdict === 'correct') accepted[k]++;
  },
);
const total = Object.values(accepted).reduce((a, b) => a + b, 0);
console.log(
  `cheats accepted ${total}/${rows.length * Object.keys(CHEATS).length} ${JSON.stringify(accepted)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
);
process.exit(canonicalFails.length || noneAccepted || total ? 1 : 0);
