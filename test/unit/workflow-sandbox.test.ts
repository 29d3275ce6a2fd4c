import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Workflow code must stay deterministic: no Node built-ins, no I/O libraries, activities only as types.
 * (The samples enforce this with an eslint no-restricted-imports rule; this test does the same without a linter.)
 */
const dir = path.join(__dirname, '..', '..', 'workflows');
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));

test.each(files)('%s imports only workflow-safe modules', (file) => {
  const src = readFileSync(path.join(dir, file), 'utf8');
  const imports = [...src.matchAll(/^import\s+(type\s+)?[\s\S]*?from\s+'([^']+)';/gm)].map((m) => ({ typeOnly: Boolean(m[1]), from: m[2]! }));
  for (const imp of imports) {
    if (imp.typeOnly) continue;
    // The gate is a pure module (no imports at all) that the workflow calls itself.
    const allowed = imp.from === '@temporalio/workflow' || imp.from === '@temporalio/common' || imp.from.startsWith('./') || imp.from === '../schemas/run-spec' || imp.from === '../activities/evaluate/gate';
    expect({ file, import: imp.from, allowed }).toEqual({ file, import: imp.from, allowed: true });
  }
});
