/**
 * Imports run one way: core <- schemas <- run-time infra <- activities <- workflows <- entry points and tooling.
 * Every .ts file of the layers is parsed (static imports and re-exports, `import()` and `require()` with a literal
 * path, type-only imports included: a type import still ties a lower layer to an upper one) and every relative
 * import that lands in a higher layer fails the test, named with its file and line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..');

/** Lowest first. A file may import from its own layer and the layers before it. */
const LAYERS: Array<{ name: string; holds: (rel: string) => boolean }> = [
  { name: 'core', holds: (p) => p.startsWith('core/') },
  { name: 'schemas', holds: (p) => p.startsWith('schemas/') },
  {
    name: 'run-time infra',
    holds: (p) =>
      ['infra/paths.ts', 'infra/temporal.ts', 'infra/processes.ts'].includes(p) || p.startsWith('infra/codec/'),
  },
  { name: 'activities', holds: (p) => p.startsWith('activities/') },
  { name: 'workflows', holds: (p) => p.startsWith('workflows/') },
  { name: 'entry points and tooling', holds: (p) => /^(workers|cli|infra|bench)\//.test(p) },
];

function layerOf(rel: string): number {
  return LAYERS.findIndex((l) => l.holds(rel));
}

/** The layer of an import's target: a file (with or without its extension) or a folder (its index). */
function targetLayer(target: string): number {
  const asFile = layerOf(/\.(ts|js)$/.test(target) ? target : `${target}.ts`);
  return asFile >= 0 ? asFile : layerOf(`${target}/`);
}

interface ImportSite {
  specifier: string;
  line: number;
  typeOnly: boolean;
}

export function importsOf(fileName: string, text: string): ImportSite[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: ImportSite[] = [];
  const at = (node: ts.Node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const typeOnly = ts.isImportDeclaration(node) ? !!node.importClause?.isTypeOnly : node.isTypeOnly;
      out.push({ specifier: node.moduleSpecifier.text, line: at(node), typeOnly });
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      out.push({ specifier: node.moduleReference.expression.text, line: at(node), typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteral(node.arguments[0])) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) {
        out.push({ specifier: node.arguments[0].text, line: at(node), typeOnly: false });
      }
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      out.push({ specifier: node.argument.literal.text, line: at(node), typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The violations of one file (`rel` is its path from the repository root). */
export function upwardImports(rel: string, text: string): string[] {
  const from = layerOf(rel);
  if (from < 0) return [];
  const found: string[] = [];
  for (const site of importsOf(rel, text)) {
    if (!site.specifier.startsWith('.')) continue;
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(rel), site.specifier));
    const to = targetLayer(target);
    const where = `${rel}:${site.line} imports '${site.specifier}'`;
    if (to > from) found.push(`${where}: ${LAYERS[from].name} may not import ${LAYERS[to].name}`);
    else if (LAYERS[from].name === 'workflows' && LAYERS[to]?.name === 'activities' && !site.typeOnly) {
      found.push(`${where}: workflows take activities as types only (import type; called through proxyActivities)`);
    }
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') out.push(...sourceFiles(rel));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

describe('layers', () => {
  it('the checker sees every kind of import that runs up', () => {
    const bad = [
      "import { x } from '../activities/filter/format-filter';",
      "import type { Y } from '../workflows/types';",
      "export { z } from '../schemas/run-spec';",
      "import {\n  a,\n  b,\n} from '../activities/text/think';",
      "const m = require('../workers/cpu');",
      "const n = await import('../cli/distill');",
      "type T = import('../activities/generate/types').T;",
    ];
    for (const line of bad) expect(upwardImports('core/probe.ts', line)).toHaveLength(1);
    expect(upwardImports('core/probe.ts', "import { g } from './gate';\nimport { z } from 'zod';")).toEqual([]);
    expect(upwardImports('activities/filter/probe.ts', "import { RunSpec } from '../../schemas/run-spec';")).toEqual(
      [],
    );
    expect(upwardImports('workflows/probe.ts', "import { f } from '../activities/filter/format-filter';")).toHaveLength(
      1,
    );
    expect(upwardImports('workflows/probe.ts', "import type { f } from '../activities/filter/format-filter';")).toEqual(
      [],
    );
  });

  it('no import in the source tree runs up the layers', () => {
    const files = ['core', 'schemas', 'activities', 'workflows', 'infra', 'workers', 'cli', 'bench']
      .filter((d) => fs.existsSync(path.join(ROOT, d)))
      .flatMap(sourceFiles);
    expect(files.filter((f) => f.startsWith('activities/')).length).toBeGreaterThan(50);
    const violations = files.flatMap((rel) => upwardImports(rel, fs.readFileSync(path.join(ROOT, rel), 'utf8')));
    expect(violations).toEqual([]);
  });
});
