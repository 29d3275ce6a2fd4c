import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The repository root, found from this file whether it runs from source (ts-jest) or from dist/. */
export const projectRoot: string = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`Cannot find the project root above ${__dirname}`);
    dir = parent;
  }
  return dir;
})();

/** Where `npm run setup` puts the Python venv (Temporal CLI, trainer). Outside the checkout so clones share it. */
export function cacheDir(): string {
  return process.env.DISTILLERY_CACHE ?? path.join(os.homedir(), '.cache', 'distillery');
}

export function pythonBin(): string {
  const py = process.env.DISTILLERY_PYTHON ?? path.join(cacheDir(), 'venv', 'bin', 'python');
  if (!existsSync(py))
    throw new Error(
      `Python for the trainer not found at ${py}: run \`npm run setup\` first (or set DISTILLERY_PYTHON)`,
    );
  return py;
}

export function trainerScript(name: string): string {
  return path.join(projectRoot, 'infra', 'trainer', name);
}
