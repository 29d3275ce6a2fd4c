import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ApplicationFailure } from '@temporalio/common';
import type { RunSpec } from '../../schemas/run-spec';
import { checkKeyUse, KEY_RULES, KeyPolicySchema, type KeyPolicy, type KeyUse, type PolicyRefusal } from './key-policy';
import { specKeyUses, specPathUses, type PathUse } from './spec-uses';

/**
 * The worker's side of the trust boundary: which key variables a run spec may name (and for which hosts), and which
 * directories its paths may point into. Configured on the worker, never in the spec:
 *
 *   DISTILLERY_KEY_POLICY      JSON {"OPENAI_API_KEY": ["api.openai.com"], …}; default: no variable may be named
 *   DISTILLERY_DATA_ROOTS      directories spec paths may be read from (path-delimited); default ./data and the OS temp dir
 *   DISTILLERY_ARTIFACT_ROOTS  directories artifactRoot may lie in (also readable); default ./artifacts and the OS temp dir
 *   DISTILLERY_POLICY_FILE     a JSON or YAML file {keys, dataRoots, artifactRoots}; the variables above take precedence
 *
 * Relative roots are resolved against the worker's working directory, as relative spec paths are.
 */
export interface WorkerPolicy {
  keys: KeyPolicy;
  dataRoots: string[];
  artifactRoots: string[];
  /** Where each part came from, for messages and the start-up log. */
  from: { keys: string; dataRoots: string; artifactRoots: string };
}

const PolicyFileSchema = z
  .object({
    keys: KeyPolicySchema.optional(),
    dataRoots: z.array(z.string().min(1)).optional(),
    artifactRoots: z.array(z.string().min(1)).optional(),
  })
  .strict();

/** The worker's configuration is wrong: it says which setting and why. */
export class WorkerPolicyError extends Error {
  override name = 'WorkerPolicyError';
}

/** Zod's issues in words; a bad record key's own issues (e.g. a worker secret named as a key) are spelt out. */
const describeIssues = (e: z.ZodError) =>
  e.issues
    .map((i) => {
      const inner =
        'issues' in i && Array.isArray(i.issues)
          ? (i.issues as { message: string }[]).map((x) => x.message).join(', ')
          : '';
      return `${i.path.join('.') || '(root)'}: ${inner || i.message}`;
    })
    .join('; ');

export function loadWorkerPolicy(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): WorkerPolicy {
  let file: z.infer<typeof PolicyFileSchema> = {};
  const fileName = env.DISTILLERY_POLICY_FILE?.trim();
  if (fileName) {
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(fileName, 'utf8'));
    } catch (err) {
      throw new WorkerPolicyError(`DISTILLERY_POLICY_FILE ${fileName}: ${(err as Error).message}`);
    }
    const parsed = PolicyFileSchema.safeParse(raw ?? {});
    if (!parsed.success)
      throw new WorkerPolicyError(`DISTILLERY_POLICY_FILE ${fileName}: ${describeIssues(parsed.error)}`);
    file = parsed.data;
  }
  let keys: KeyPolicy = {};
  let keysFrom = 'default: no key variable may be named';
  const keyEnv = env.DISTILLERY_KEY_POLICY?.trim();
  if (keyEnv) {
    let raw: unknown;
    try {
      raw = JSON.parse(keyEnv);
    } catch (err) {
      throw new WorkerPolicyError(
        `DISTILLERY_KEY_POLICY is not JSON ({"VARIABLE": ["host", …]}): ${(err as Error).message}`,
      );
    }
    const parsed = KeyPolicySchema.safeParse(raw);
    if (!parsed.success) throw new WorkerPolicyError(`DISTILLERY_KEY_POLICY: ${describeIssues(parsed.error)}`);
    keys = parsed.data;
    keysFrom = 'DISTILLERY_KEY_POLICY';
  } else if (file.keys) {
    keys = file.keys;
    keysFrom = `DISTILLERY_POLICY_FILE ${fileName}`;
  }
  const roots = (name: string, fromFile: string[] | undefined, defaults: string[]): [string[], string] => {
    const value = env[name]?.trim();
    if (value)
      return [
        value
          .split(path.delimiter)
          .filter(Boolean)
          .map((r) => path.resolve(cwd, r)),
        name,
      ];
    if (fromFile) return [fromFile.map((r) => path.resolve(cwd, r)), `DISTILLERY_POLICY_FILE ${fileName}`];
    return [defaults.map((r) => path.resolve(cwd, r)), 'default'];
  };
  const [dataRoots, dataFrom] = roots('DISTILLERY_DATA_ROOTS', file.dataRoots, ['data', os.tmpdir()]);
  const [artifactRoots, artifactFrom] = roots('DISTILLERY_ARTIFACT_ROOTS', file.artifactRoots, [
    'artifacts',
    os.tmpdir(),
  ]);
  return { keys, dataRoots, artifactRoots, from: { keys: keysFrom, dataRoots: dataFrom, artifactRoots: artifactFrom } };
}

let cached: { signature: string; policy: WorkerPolicy } | undefined;

/** The policy of this worker (read once per configuration; the workers load it at start-up, so a bad one stops them there). */
export function workerPolicy(env: NodeJS.ProcessEnv = process.env): WorkerPolicy {
  const signature = JSON.stringify([
    env.DISTILLERY_POLICY_FILE,
    env.DISTILLERY_KEY_POLICY,
    env.DISTILLERY_DATA_ROOTS,
    env.DISTILLERY_ARTIFACT_ROOTS,
    process.cwd(),
  ]);
  if (cached?.signature === signature) return cached.policy;
  let policy: WorkerPolicy;
  try {
    policy = loadWorkerPolicy(env);
  } catch (err) {
    if (err instanceof WorkerPolicyError)
      throw ApplicationFailure.nonRetryable(`This worker's policy is invalid: ${err.message}`, 'InvalidWorkerPolicy');
    throw err;
  }
  cached = { signature, policy };
  return policy;
}

function refuse(r: PolicyRefusal, extra: Record<string, unknown> = {}): ApplicationFailure {
  return ApplicationFailure.nonRetryable(r.message, r.type, { field: r.field, rule: r.rule, ...extra });
}

function keyRefusal(use: KeyUse, env: NodeJS.ProcessEnv): PolicyRefusal | null {
  const refused = checkKeyUse(workerPolicy(env).keys, use);
  if (refused) return refused;
  if (!env[use.envName]) {
    return {
      type: 'ApiKeyNotSet',
      field: use.field,
      rule: KEY_RULES.set,
      message: `${use.field} names ${use.envName}, which the worker's key policy allows for this endpoint, but ${use.envName} is not set on this worker: set it there (rule: ${KEY_RULES.set}).`,
    };
  }
  return null;
}

/**
 * The key to send with requests to `baseURL`, read from the variable the spec names, or undefined when the spec names
 * none (a keyless endpoint). Throws a non-retryable ApplicationFailure naming the rule, before any request, when the
 * policy does not allow that variable for that host or the variable is not set.
 */
export function apiKeyFor(
  use: { field: string; envName?: string; baseURL: string },
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (!use.envName) return undefined;
  const refused = keyRefusal({ field: use.field, envName: use.envName, baseURL: use.baseURL }, env);
  if (refused) throw refuse(refused, { envName: use.envName });
  return env[use.envName]!;
}

/** The real path of `p`: symlinks resolved; for a path that does not exist (yet), its deepest existing ancestor's. */
async function realPathOf(p: string, depth = 0): Promise<string> {
  if (depth > 40) throw ApplicationFailure.nonRetryable(`${p}: too many levels of symbolic links`, 'PathOutsideRoots');
  try {
    return await fs.realpath(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Not resolvable for another reason (no permission, a loop): judged as written; reading it fails the same way.
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return p;
  }
  // A dangling symlink is followed by hand: what it points to is where a write through it would land.
  const link = await fs.readlink(p).catch(() => null);
  if (link !== null) return realPathOf(path.resolve(path.dirname(p), link), depth + 1);
  const parent = path.dirname(p);
  if (parent === p) return p;
  return path.join(await realPathOf(parent, depth + 1), path.basename(p));
}

function isWithin(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

const PATH_RULES = {
  read: "spec paths are read only inside the worker's data or artifact roots (DISTILLERY_DATA_ROOTS, DISTILLERY_ARTIFACT_ROOTS), after resolving '..' and symlinks",
  write:
    "artifacts are written only inside the worker's artifact roots (DISTILLERY_ARTIFACT_ROOTS), after resolving '..' and symlinks",
} as const;

async function pathRefusal(use: PathUse, env: NodeJS.ProcessEnv): Promise<PolicyRefusal | null> {
  const policy = workerPolicy(env);
  const roots = use.access === 'write' ? policy.artifactRoots : [...policy.dataRoots, ...policy.artifactRoots];
  const abs = path.resolve(use.path);
  const real = await realPathOf(abs);
  for (const root of roots) if (isWithin(await realPathOf(root), real)) return null;
  const shown = real === abs ? (abs === use.path ? '' : ` (${abs})`) : ` (resolves to ${real})`;
  return {
    type: 'PathOutsideRoots',
    field: use.field,
    rule: PATH_RULES[use.access],
    message:
      `${use.field} ${use.path}${shown} is outside the directories this worker may ${use.access === 'write' ? 'write to' : 'read'} ` +
      `(${roots.join(', ') || 'none'}): refused (rule: ${PATH_RULES[use.access]}).`,
  };
}

/** `p` itself when it lies inside the roots its access allows; otherwise a non-retryable PathOutsideRoots failure. */
export async function confinePath(use: PathUse, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const refused = await pathRefusal(use, env);
  if (refused) throw refuse(refused, { path: use.path });
  return use.path;
}

/**
 * Checks a whole run spec against the worker's policy (every key it names, every path it gives) and reports every
 * refusal at once, so a bad spec fails when the run starts rather than after generation.
 */
export async function checkSpecAgainstPolicy(spec: RunSpec, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const refusals: PolicyRefusal[] = [];
  for (const use of specKeyUses(spec)) {
    const r = keyRefusal(use, env);
    if (r) refusals.push(r);
  }
  for (const use of specPathUses(spec)) {
    const r = await pathRefusal(use, env);
    if (r) refusals.push(r);
  }
  if (!refusals.length) return;
  if (refusals.length === 1) throw refuse(refusals[0]!);
  const types = new Set(refusals.map((r) => r.type));
  throw ApplicationFailure.nonRetryable(
    `The run spec asks for what this worker's policy refuses (${refusals.length} problems):\n` +
      refusals.map((r) => `  - ${r.message}`).join('\n'),
    types.size === 1 ? refusals[0]!.type : 'WorkerPolicyViolation',
    { refusals: refusals.map(({ type, field, rule }) => ({ type, field, rule })) },
  );
}

/** What a worker logs at start-up: the variable names and hosts (never values) and the roots. */
export function describeWorkerPolicy(policy: WorkerPolicy): Record<string, unknown> {
  return { keys: policy.keys, dataRoots: policy.dataRoots, artifactRoots: policy.artifactRoots, from: policy.from };
}
