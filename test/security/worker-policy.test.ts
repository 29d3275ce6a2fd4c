import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  apiKeyFor,
  checkSpecAgainstPolicy,
  confinePath,
  loadWorkerPolicy,
  WorkerPolicyError,
} from '../../activities/security/worker-policy';
import { RunSpecSchema } from '../../schemas/run-spec';

/**
 * The worker's policy as configured (environment, file, defaults) and its path rule: spec paths resolve, `..` and
 * symlinks followed, inside the configured roots or are refused with a non-retryable PathOutsideRoots failure.
 */
let tmp: string;
let env: NodeJS.ProcessEnv;
let data: string;
let artifacts: string;
let outside: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'worker-policy-'));
  data = path.join(tmp, 'data');
  artifacts = path.join(tmp, 'artifacts');
  outside = path.join(tmp, 'outside');
  for (const d of [data, artifacts, outside]) mkdirSync(d);
  writeFileSync(path.join(data, 'train.jsonl'), '{}\n');
  writeFileSync(path.join(outside, 'secret.jsonl'), '{"secret": true}\n');
  symlinkSync(path.join(outside, 'secret.jsonl'), path.join(data, 'link-out.jsonl'));
  symlinkSync(path.join(data, 'train.jsonl'), path.join(data, 'link-in.jsonl'));
  symlinkSync(outside, path.join(artifacts, 'dir-out'));
  symlinkSync(path.join(outside, 'not-yet'), path.join(artifacts, 'dangling-out'));
  env = { DISTILLERY_DATA_ROOTS: data, DISTILLERY_ARTIFACT_ROOTS: artifacts };
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('loading the policy', () => {
  test('defaults: no key variable, ./data and ./artifacts and the OS temp dir, never the whole filesystem', () => {
    const p = loadWorkerPolicy({}, '/srv/worker');
    expect(p.keys).toEqual({});
    expect(p.dataRoots).toEqual(['/srv/worker/data', os.tmpdir()]);
    expect(p.artifactRoots).toEqual(['/srv/worker/artifacts', os.tmpdir()]);
    expect([...p.dataRoots, ...p.artifactRoots]).not.toContain('/');
  });

  test('from a file, with the environment taking precedence section by section', () => {
    const file = path.join(tmp, 'policy.yaml');
    writeFileSync(
      file,
      'keys:\n  OPENAI_API_KEY: [api.openai.com]\ndataRoots: [/srv/data]\nartifactRoots: [/srv/artifacts]\n',
    );
    const p = loadWorkerPolicy({ DISTILLERY_POLICY_FILE: file, DISTILLERY_DATA_ROOTS: `/a${path.delimiter}/b` }, '/w');
    expect(p.keys).toEqual({ OPENAI_API_KEY: ['api.openai.com'] });
    expect(p.dataRoots).toEqual(['/a', '/b']);
    expect(p.artifactRoots).toEqual(['/srv/artifacts']);
    const q = loadWorkerPolicy(
      { DISTILLERY_POLICY_FILE: file, DISTILLERY_KEY_POLICY: '{"OTHER_KEY": ["other.example"]}' },
      '/w',
    );
    expect(q.keys).toEqual({ OTHER_KEY: ['other.example'] });
  });

  test.each([
    [{ DISTILLERY_KEY_POLICY: 'OPENAI_API_KEY=api.openai.com' }, /DISTILLERY_KEY_POLICY is not JSON/],
    [
      { DISTILLERY_KEY_POLICY: '{"DISTILLERY_CODEC_KEYS": ["evil.example"]}' },
      /DISTILLERY_CODEC_KEYS: is a worker secret/,
    ],
    [{ DISTILLERY_POLICY_FILE: '/nonexistent/policy.yaml' }, /DISTILLERY_POLICY_FILE \/nonexistent\/policy\.yaml/],
  ])('a bad configuration stops the worker, naming the setting: %j', (bad, says) => {
    expect(() => loadWorkerPolicy(bad)).toThrow(WorkerPolicyError);
    expect(() => loadWorkerPolicy(bad)).toThrow(says);
  });
});

describe('keys', () => {
  test('a variable outside the policy is refused non-retryably although it is set', () => {
    let err: unknown;
    try {
      apiKeyFor(
        { field: 'teacher.apiKeyEnv', envName: 'DISTILLERY_CODEC_KEYS', baseURL: 'https://evil.example/v1' },
        { DISTILLERY_CODEC_KEYS: 'k:secret' },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'ApplicationFailure', type: 'ApiKeyNotAllowed', nonRetryable: true });
    expect((err as Error).message).not.toContain('k:secret');
  });

  test('allowed for its host, it is returned; not set, it is an error (never a placeholder)', () => {
    const e = { DISTILLERY_KEY_POLICY: '{"MY_KEY": ["api.example"]}', MY_KEY: 'sk-1' };
    expect(apiKeyFor({ field: 'f', envName: 'MY_KEY', baseURL: 'https://api.example/v1' }, e)).toBe('sk-1');
    expect(apiKeyFor({ field: 'f', baseURL: 'https://anywhere.example/v1' }, e)).toBeUndefined();
    expect(() =>
      apiKeyFor(
        { field: 'f', envName: 'MY_KEY', baseURL: 'https://api.example/v1' },
        { DISTILLERY_KEY_POLICY: e.DISTILLERY_KEY_POLICY },
      ),
    ).toThrow(expect.objectContaining({ type: 'ApiKeyNotSet', nonRetryable: true }));
    expect(() => apiKeyFor({ field: 'f', envName: 'MY_KEY', baseURL: 'https://other.example/v1' }, e)).toThrow(
      expect.objectContaining({ type: 'ApiKeyHostNotAllowed' }),
    );
  });
});

describe('paths', () => {
  const refused = async (p: Promise<unknown>) => {
    const err = (await p.then(
      () => null,
      (e: unknown) => e,
    )) as (Error & { type?: string; nonRetryable?: boolean }) | null;
    expect(err).toMatchObject({ name: 'ApplicationFailure', type: 'PathOutsideRoots', nonRetryable: true });
    return err!.message;
  };

  test('inside a root: allowed (also a missing file, and a symlink that stays inside)', async () => {
    for (const p of [
      path.join(data, 'train.jsonl'),
      path.join(data, 'missing', 'x.jsonl'),
      path.join(data, 'link-in.jsonl'),
      path.join(artifacts, 'run-1'),
    ]) {
      await expect(confinePath({ field: 'dataset.source.path', path: p, access: 'read' }, env)).resolves.toBe(p);
    }
    await expect(
      confinePath({ field: 'artifactRoot', path: path.join(artifacts, 'new', 'deeper'), access: 'write' }, env),
    ).resolves.toBeTruthy();
  });

  test('`..` out of a root is refused, naming the field, the path, where it resolves and the rule', async () => {
    const p = path.join(data, '..', 'outside', 'secret.jsonl');
    const msg = await refused(confinePath({ field: 'dataset.source.path', path: p, access: 'read' }, env));
    expect(msg).toContain(`dataset.source.path ${p}`);
    expect(msg).toContain(path.join(outside, 'secret.jsonl'));
    expect(msg).toMatch(/is outside the directories this worker may read/);
    expect(msg).toMatch(/rule: spec paths are read only inside the worker's data or artifact roots/);
    // the same as a path relative to the working directory
    await refused(
      confinePath({ field: 'dataset.source.path', path: path.relative(process.cwd(), p), access: 'read' }, env),
    );
  });

  test('an absolute path outside every root is refused', async () => {
    const msg = await refused(
      confinePath({ field: 'evaluation.benchmarks.0.path', path: '/etc/passwd', access: 'read' }, env),
    );
    expect(msg).toMatch(/^evaluation\.benchmarks\.0\.path \/etc\/passwd is outside/);
  });

  test('a symlink inside a root that points out of it is refused', async () => {
    const msg = await refused(
      confinePath({ field: 'filters.length.tokenizer', path: path.join(data, 'link-out.jsonl'), access: 'read' }, env),
    );
    expect(msg).toContain(`(resolves to ${path.join(outside, 'secret.jsonl')})`);
    await refused(
      confinePath({ field: 'artifactRoot', path: path.join(artifacts, 'dir-out', 'arts'), access: 'write' }, env),
    );
    // a dangling one is followed to where a write through it would land
    await refused(
      confinePath({ field: 'artifactRoot', path: path.join(artifacts, 'dangling-out'), access: 'write' }, env),
    );
  });

  test('artifacts are written only inside the artifact roots: a data root is read-only', async () => {
    const msg = await refused(
      confinePath({ field: 'artifactRoot', path: path.join(data, 'arts'), access: 'write' }, env),
    );
    expect(msg).toMatch(/is outside the directories this worker may write to/);
    expect(msg).toMatch(/rule: artifacts are written only inside the worker's artifact roots/);
  });

  test('a whole spec: every refusal reported at once', async () => {
    const spec = RunSpecSchema.parse({
      name: 'bad',
      dataset: { source: { type: 'jsonl', path: '/etc/passwd' } },
      teacher: { baseURL: 'https://evil.example/v1', model: 'm', apiKeyEnv: 'HOME' },
      evaluation: {
        benchmark: { type: 'builtin', task: 'arithmetic' },
        benchmarks: [{ type: 'gsm8k', path: path.join(data, 'link-out.jsonl') }],
      },
      artifactRoot: path.join(outside, 'arts'),
    });
    const err = (await checkSpecAgainstPolicy(spec, env).catch((e: unknown) => e)) as Error & { type?: string };
    expect(err).toMatchObject({ type: 'WorkerPolicyViolation', nonRetryable: true });
    for (const field of ['teacher.apiKeyEnv', 'artifactRoot', 'dataset.source.path', 'evaluation.benchmarks.0.path'])
      expect(err.message).toContain(`- ${field}`);
  });
});
