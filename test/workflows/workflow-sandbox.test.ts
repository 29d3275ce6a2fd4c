import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Workflow code must stay deterministic: no Node built-ins, no I/O libraries, activities only as types.
 * (The samples enforce this with an eslint no-restricted-imports rule; this test does the same without a linter.)
 * Workflows may call real code only from core/ (pure functions) and the run-spec schema; core/ imports nothing
 * outside itself.
 */
const root = path.join(__dirname, '..', '..');
const sources = (dir: string) =>
  readdirSync(path.join(root, dir))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));

function importsOf(file: string): { typeOnly: boolean; from: string }[] {
  const src = readFileSync(path.join(root, file), 'utf8');
  return [...src.matchAll(/^(?:import|export)\s+(type\s+)?[^;'"]*?\bfrom\s+'([^']+)';/gm)].map((m) => ({
    typeOnly: Boolean(m[1]),
    from: m[2]!,
  }));
}

test.each(sources('workflows'))('%s imports only workflow-safe modules', (file) => {
  for (const imp of importsOf(file)) {
    if (imp.typeOnly) continue;
    const allowed =
      imp.from === '@temporalio/workflow' ||
      imp.from === '@temporalio/common' ||
      imp.from.startsWith('./') ||
      imp.from === '../schemas/run-spec' ||
      imp.from.startsWith('../core/');
    expect({ file, import: imp.from, allowed }).toEqual({ file, import: imp.from, allowed: true });
  }
});

test.each(sources('core'))('%s is pure: it imports only other core modules', (file) => {
  for (const imp of importsOf(file)) {
    expect({ file, import: imp.from, allowed: imp.from.startsWith('./') }).toEqual({
      file,
      import: imp.from,
      allowed: true,
    });
  }
});

test('the sandbox check sees real imports (it would flag a Node built-in or an activity module)', () => {
  const all = sources('workflows').flatMap((f) => importsOf(f).map((i) => i.from));
  expect(all).toContain('@temporalio/workflow');
  expect(all.some((f) => f.startsWith('../core/'))).toBe(true);
});
