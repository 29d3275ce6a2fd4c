import { checkKeyUse, hostMatches, KeyPolicySchema, withKeyGrant } from '../../activities/security/key-policy';
import { specKeyUses, specPathUses } from '../../activities/security/spec-uses';
import { RunSpecSchema } from '../../schemas/run-spec';

/** The key policy's pure part: which host patterns match which endpoints, and what it refuses, with which rule. */

describe('host patterns', () => {
  test.each([
    ['api.openai.com', 'https://api.openai.com/v1', true],
    ['api.openai.com', 'http://api.openai.com:8080/v1', true],
    ['api.openai.com', 'https://api.openai.com.evil.example/v1', false],
    ['api.openai.com', 'https://evil.example/api.openai.com/v1', false],
    ['api.openai.com', 'https://api.openai.com@evil.example/v1', false],
    ['API.OpenAI.com', 'https://api.openai.com/v1', true],
    ['api.openai.com:443', 'https://api.openai.com/v1', true],
    ['api.openai.com:443', 'http://api.openai.com/v1', false],
    ['api.openai.com:443', 'https://api.openai.com:8443/v1', false],
    ['https://api.openai.com', 'https://api.openai.com/v1', true],
    ['https://api.openai.com', 'http://api.openai.com/v1', false],
    ['*.openai.azure.com', 'https://me.openai.azure.com/v1', true],
    ['*.openai.azure.com', 'https://openai.azure.com/v1', false],
    ['*.openai.azure.com', 'https://me.openai.azure.com.evil.example/v1', false],
    ['127.0.0.1:8400', 'http://127.0.0.1:8400/v1', true],
    ['127.0.0.1:8400', 'http://127.0.0.1:8401/v1', false],
    ['127.0.0.1', 'http://localhost:8400/v1', false],
    ['[::1]:8400', 'http://[::1]:8400/v1', true],
  ])('%s vs %s → %s', (pattern, url, ok) => {
    expect(hostMatches(pattern, new URL(url))).toBe(ok);
  });
});

describe('checkKeyUse', () => {
  const policy = KeyPolicySchema.parse({ OPENAI_API_KEY: ['api.openai.com'], LOCAL_KEY: ['127.0.0.1:8400'] });

  test('a variable the policy does not list is refused, naming the rule and the field', () => {
    const r = checkKeyUse(policy, {
      field: 'teacher.apiKeyEnv',
      envName: 'DISTILLERY_CODEC_KEYS',
      baseURL: 'https://evil.example/v1',
    });
    expect(r).toMatchObject({ type: 'ApiKeyNotAllowed', field: 'teacher.apiKeyEnv' });
    expect(r!.message).toMatch(
      /teacher\.apiKeyEnv names the environment variable DISTILLERY_CODEC_KEYS, which the worker's key policy does not list/,
    );
    expect(r!.message).toMatch(/rule: a run spec may name only the key variables listed in the worker's key policy/);
    expect(r!.message).toMatch(/listed now: OPENAI_API_KEY, LOCAL_KEY/);
    // Inherited object keys are not entries of the policy.
    expect(
      checkKeyUse(policy, { field: 'f', envName: 'constructor', baseURL: 'https://api.openai.com/v1' })?.type,
    ).toBe('ApiKeyNotAllowed');
  });

  test('a key bound to host A is refused for host B', () => {
    const r = checkKeyUse(policy, {
      field: 'verifier.judge.apiKeyEnv',
      envName: 'OPENAI_API_KEY',
      baseURL: 'https://collector.evil.example/v1',
    });
    expect(r).toMatchObject({ type: 'ApiKeyHostNotAllowed', field: 'verifier.judge.apiKeyEnv' });
    expect(r!.message).toMatch(/binds to api\.openai\.com, but the endpoint is https:\/\/collector\.evil\.example/);
    expect(r!.message).toMatch(/rule: a key is sent only to the hosts the worker's key policy binds it to/);
    expect(checkKeyUse(policy, { field: 'f', envName: 'LOCAL_KEY', baseURL: 'http://127.0.0.1:9999/v1' })?.type).toBe(
      'ApiKeyHostNotAllowed',
    );
  });

  test('a listed variable for a host it is bound to is allowed', () => {
    expect(
      checkKeyUse(policy, {
        field: 'teacher.apiKeyEnv',
        envName: 'OPENAI_API_KEY',
        baseURL: 'https://api.openai.com/v1',
      }),
    ).toBeNull();
    expect(
      checkKeyUse(policy, { field: 'teacher.apiKeyEnv', envName: 'LOCAL_KEY', baseURL: 'http://127.0.0.1:8400/v1' }),
    ).toBeNull();
  });

  test('the empty policy (the default) allows no variable', () => {
    expect(
      checkKeyUse({}, { field: 'teacher.apiKeyEnv', envName: 'OPENAI_API_KEY', baseURL: 'https://api.openai.com/v1' })
        ?.message,
    ).toMatch(/listed now: none/);
  });
});

describe('the policy schema', () => {
  test.each([
    [{ DISTILLERY_CODEC_KEYS: ['x.example'] }, /worker secret/],
    [{ DISTILLERY_CODEC_SERVER_TOKEN: ['x.example'] }, /worker secret/],
    [{ 'sk-abc': ['x.example'] }, /environment variable name/],
    [{ OPENAI_API_KEY: [] }, /at least one host/],
    [{ OPENAI_API_KEY: ['https://x.example/path'] }, /must be a host/],
    [{ OPENAI_API_KEY: ['*'] }, /must be a host/],
  ])('refuses %j', (policy, says) => {
    const r = KeyPolicySchema.safeParse(policy);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error!.issues)).toMatch(says);
  });

  test('a grant adds one host for one variable (the CLI verify command)', () => {
    const p = withKeyGrant({ A: ['a.example'] }, 'JUDGE_KEY', 'http://127.0.0.1:8400/v1');
    expect(p).toEqual({ A: ['a.example'], JUDGE_KEY: ['http://127.0.0.1:8400'] });
    expect(checkKeyUse(p, { field: 'f', envName: 'JUDGE_KEY', baseURL: 'http://127.0.0.1:8400/v1' })).toBeNull();
    expect(checkKeyUse(p, { field: 'f', envName: 'JUDGE_KEY', baseURL: 'http://127.0.0.1:8401/v1' })).not.toBeNull();
  });
});

test('every key and path a spec names is found, with its field', () => {
  const spec = RunSpecSchema.parse({
    name: 'x',
    dataset: { source: { type: 'jsonl', path: 'data/train.jsonl' } },
    teacher: { baseURL: 'https://api.openai.com/v1', model: 'm', apiKeyEnv: 'T_KEY' },
    verifier: { type: 'judge', judge: { baseURL: 'https://judge.example/v1', model: 'j', apiKeyEnv: 'J_KEY' } },
    filters: {
      length: { tokenizer: 'tok/tokenizer.json' },
      earlierDatasets: ['old.jsonl'],
      decontaminate: { benchmarks: [{ path: 'bench.jsonl' }] },
    },
    fineTune: { backend: 'trl', student: { source: 'models/s.gguf', initFrom: 'models/prev' } },
    evaluation: {
      benchmark: { type: 'builtin', task: 'arithmetic' },
      benchmarks: [{ type: 'gsm8k', path: 'gsm8k.jsonl' }],
      endpoints: [{ name: 'e', baseURL: 'https://e.example/v1', model: 'm', apiKeyEnv: 'E_KEY' }],
    },
    artifactRoot: '/srv/artifacts',
  });
  expect(specKeyUses(spec).map((u) => `${u.field}=${u.envName}`)).toEqual([
    'teacher.apiKeyEnv=T_KEY',
    'verifier.judge.apiKeyEnv=J_KEY',
    'evaluation.endpoints.0.apiKeyEnv=E_KEY',
  ]);
  expect(specPathUses(spec).map((u) => `${u.access}:${u.field}=${u.path}`)).toEqual([
    'write:artifactRoot=/srv/artifacts',
    'read:dataset.source.path=data/train.jsonl',
    'read:evaluation.benchmarks.0.path=gsm8k.jsonl',
    'read:filters.length.tokenizer=tok/tokenizer.json',
    'read:filters.earlierDatasets.0=old.jsonl',
    'read:filters.decontaminate.benchmarks.0.path=bench.jsonl',
    'read:fineTune.student.source=models/s.gguf',
    'read:fineTune.student.initFrom=models/prev',
  ]);
  // The builtin student, tokenizers and promoted students are names, not paths.
  const plain = RunSpecSchema.parse({
    name: 'y',
    dataset: { source: { type: 'builtin', task: 'arithmetic' } },
    teacher: { baseURL: 'http://127.0.0.1:8400/v1', model: 'm' },
    fineTune: { backend: 'trl', student: { initFrom: 'promoted:y' } },
  });
  expect(specPathUses(plain).map((u) => u.field)).toEqual(['artifactRoot']);
  expect(specKeyUses(plain)).toEqual([]);
});
