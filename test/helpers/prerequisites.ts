import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Tests that need something outside the repository (a GGUF, Chromium, Go, a tmpfs mount): where it is missing they
 * are SKIPPED, visibly (jest lists them, the skip reporter counts them and says why), never passed. Under CI=true a
 * missing prerequisite is a failure: CI installs everything (.ci/run), so a skip there means a broken install.
 */
export interface Gated {
  test: jest.It;
  describe: jest.Describe;
  /** Whether the prerequisite is there. */
  present: boolean;
}

export const underCi = (): boolean => /^(1|true|yes)$/i.test(process.env.CI ?? '');

/** Where the skip reporter (test/helpers/skip-reporter.js) collects the reasons; unset outside its runs. */
function recordSkip(what: string, problem: string): void {
  const dir = process.env.DISTILLERY_SKIPS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, `skip-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`),
    JSON.stringify({ what, problem, file: expect.getState().testPath ?? null }),
  );
}

/**
 * `problem`: null when the prerequisite is there, else what is missing and how to get it. The returned `test` and
 * `describe` run, skip (with a recorded reason) or, under CI=true, fail.
 */
export function requires(what: string, problem: string | null): Gated {
  if (!problem) return { test, describe, present: true };
  const message = `${what} is missing: ${problem}`;
  if (underCi()) {
    const failing = ((name: string) =>
      test(name, () => {
        throw new Error(`CI=true: ${message}`);
      })) as unknown as jest.It;
    const failingDescribe = ((name: string) =>
      describe(name, () => {
        test('its prerequisite is installed', () => {
          throw new Error(`CI=true: ${message}`);
        });
      })) as unknown as jest.Describe;
    return { test: failing, describe: failingDescribe, present: false };
  }
  console.warn(`SKIPPED (missing prerequisite): ${message}`);
  recordSkip(what, problem);
  return { test: test.skip, describe: describe.skip, present: false };
}

/** A file that a setup step makes (a model, a built script): null when it exists, else what to run. */
export function fileProblem(file: string, howToGet: string): string | null {
  return existsSync(file) ? null : `${file} does not exist (${howToGet})`;
}

/** Go ≥ major.minor where infra/deploy/validate.sh looks (or a GOTOOLCHAIN that names one): null when there is one. */
export function goProblem(min: [number, number] = [1, 24]): string | null {
  const want = `Go >= ${min.join('.')}`;
  const toolchain = /^go(\d+)\.(\d+)/.exec(process.env.GOTOOLCHAIN ?? '');
  const atLeast = (m: RegExpExecArray | null) =>
    !!m && (Number(m[1]) > min[0] || (Number(m[1]) === min[0] && Number(m[2]) >= min[1]));
  const debian = existsSync('/usr/lib')
    ? readdirSync('/usr/lib')
        .filter((d) => /^go-1\.\d+$/.test(d))
        .sort((a, b) => Number(b.slice(5)) - Number(a.slice(5)))
        .map((d) => `/usr/lib/${d}/bin/go`)
    : [];
  for (const go of ['go', '/usr/local/go/bin/go', ...debian]) {
    const r = spawnSync(go, ['version'], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    if (atLeast(/go(\d+)\.(\d+)/.exec(r.stdout)) || atLeast(toolchain)) return null;
    return `${go} is ${r.stdout.trim()}; ${want} is needed (.ci/run installs it)`;
  }
  return `no go on PATH or at /usr/local/go/bin; ${want} is needed (.ci/run installs it)`;
}
