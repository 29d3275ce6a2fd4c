import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/** Reads a run spec from YAML or JSON (by extension; YAML is a superset, so anything else is read as YAML). */
export function readSpecFile(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new Error(`${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
