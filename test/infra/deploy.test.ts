import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { goProblem, requires } from '../helpers/prerequisites';

/**
 * infra/deploy/validate.sh must pass on the deployment files as they are and fail, naming the problem, on copies
 * with one mistake each. The validator is built once (cached under DISTILLERY_CACHE, ~/.cache/distillery by default).
 */
const repo = path.resolve(__dirname, '..', '..');
const validate = path.join(repo, 'infra', 'deploy', 'validate.sh');
const roots: string[] = [];

/** A repository root in a temp dir: infra/deploy copied (to be broken), everything else linked to the real files. */
function copyOfRepo(): { root: string; deploy: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'deploy-'));
  roots.push(root);
  for (const e of readdirSync(repo)) if (e !== 'infra') symlinkSync(path.join(repo, e), path.join(root, e));
  mkdirSync(path.join(root, 'infra'));
  for (const e of readdirSync(path.join(repo, 'infra'))) {
    if (e !== 'deploy') symlinkSync(path.join(repo, 'infra', e), path.join(root, 'infra', e));
  }
  const deploy = path.join(root, 'infra', 'deploy');
  cpSync(path.join(repo, 'infra', 'deploy'), deploy, { recursive: true });
  return { root, deploy };
}

/** Replaces the nth (0-based) occurrence of `from`; throws if the files changed so the mistake no longer applies. */
function breakFile(file: string, from: string, to: string, nth = 0): void {
  const text = readFileSync(file, 'utf8');
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(from, at + 1);
    if (at < 0) throw new Error(`${path.basename(file)} no longer contains ${JSON.stringify(from)} (${nth + 1}×)`);
  }
  writeFileSync(file, text.slice(0, at) + to + text.slice(at + from.length));
}

function runValidate(root: string, deploy: string, checks: string[] = []): { status: number | null; output: string } {
  const r = spawnSync('bash', [validate, ...checks], {
    env: { ...process.env, DEPLOY_DIR: deploy, REPO_ROOT: root },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

requires('Go >= 1.24 (the validator is built with it)', goProblem([1, 24])).describe('infra/deploy/validate.sh', () => {
  test('passes on an unchanged copy of infra/deploy (builds the validator on first use)', () => {
    const { root, deploy } = copyOfRepo();
    const r = runValidate(root, deploy);
    expect(r.output).toMatch(/all deployment checks passed: compose k8s trainjob dockerfile/);
    expect(r.status).toBe(0);
  });

  const cases: Array<{
    name: string;
    check: string;
    file: string;
    from: string;
    to: string;
    nth?: number;
    error: RegExp;
  }> = [
    {
      name: 'an unknown field in a Deployment',
      check: 'k8s',
      file: 'k8s/cpu-worker.yaml',
      from: '  revisionHistoryLimit: 3',
      to: '  revisionHistoryLimt: 3',
      error: /cpu-worker\.yaml: .*unknown field "spec\.revisionHistoryLimt"/,
    },
    {
      name: 'a GPU worker whose slots do not use its nvidia.com/gpu limit',
      check: 'k8s',
      file: 'k8s/gpu-worker.yaml',
      from: 'nvidia.com/gpu: 1\n            limits:\n              memory: 64Gi\n              nvidia.com/gpu: 1',
      to: 'nvidia.com/gpu: 2\n            limits:\n              memory: 64Gi\n              nvidia.com/gpu: 2',
      error: /nvidia\.com\/gpu=2 but DISTILLERY_GPU_SLOTS=0 uses 1 GPU\(s\): one slot per GPU/,
    },
    {
      name: 'GPU slots beyond the GPUs the pod gets',
      check: 'k8s',
      file: 'k8s/gpu-worker.yaml',
      from: 'value: "0"',
      to: 'value: "0,1"',
      error: /DISTILLERY_GPU_SLOTS=0,1 uses GPU index 1 but the pod gets nvidia\.com\/gpu=1/,
    },
    {
      name: 'a temporal trigger without its task queue',
      check: 'k8s',
      file: 'k8s/keda-scaledobjects.yaml',
      from: '        taskQueueFromEnv: DISTILLERY_GPU_QUEUE\n',
      to: '',
      error:
        /ScaledObject\/distillery-gpu-worker: triggers\[0\] \(temporal\): metadata\.taskQueue \(or taskQueueFromEnv\) is required/,
    },
    {
      name: 'a trigger without the type KEDA requires',
      check: 'k8s',
      file: 'k8s/keda-scaledobjects.yaml',
      from: '    - type: temporal\n      name: gpu-activities',
      to: '    - name: gpu-activities',
      error: /ScaledObject\/distillery-gpu-worker: KEDA ScaledObject schema: .*missing propert.*type/,
    },
    {
      name: 'a scaler reading a variable the worker does not have',
      check: 'k8s',
      file: 'k8s/keda-scaledobjects.yaml',
      from: 'taskQueueFromEnv: DISTILLERY_GPU_QUEUE',
      to: 'taskQueueFromEnv: GPU_QUEUE',
      error: /taskQueueFromEnv: GPU_QUEUE is not set in the target container's environment/,
    },
    {
      name: 'a compose service on an undefined network',
      check: 'compose',
      file: 'docker-compose.yml',
      from: '    runtime: nvidia\n',
      to: '    runtime: nvidia\n    networks: [backend]\n',
      error: /service "gpu-worker" refers to undefined network backend/,
    },
    {
      name: 'a compose service on an undefined volume',
      check: 'compose',
      file: 'docker-compose.yml',
      from: '      - artifacts:/app/artifacts',
      to: '      - artefacts:/app/artifacts',
      nth: 1,
      error: /service "gpu-worker" refers to undefined volume artefacts/,
    },
    {
      name: 'the GPU worker built from the CPU target',
      check: 'compose',
      file: 'docker-compose.yml',
      from: '      target: gpu',
      to: '      target: cpu',
      error: /service gpu-worker runs "dist\/workers\/cpu\.js", not dist\/workers\/gpu\.js/,
    },
    {
      name: 'a build target the Dockerfile does not have',
      check: 'compose',
      file: 'docker-compose.yml',
      from: '      target: gpu',
      to: '      target: cuda',
      error: /service gpu-worker: build target "cuda" is not a stage of .*Dockerfile\.worker/,
    },
    {
      name: 'a worker waiting for a one-shot job to become healthy',
      check: 'compose',
      file: 'docker-compose.yml',
      from: '      temporal-namespace:\n        condition: service_completed_successfully',
      to: '      temporal-namespace:\n        condition: service_healthy',
      error: /service cpu-worker waits for temporal-namespace to be healthy, but temporal-namespace has no healthcheck/,
    },
    {
      name: 'a COPY of a file that is not in the build context',
      check: 'dockerfile',
      file: 'Dockerfile.worker',
      from: 'COPY infra/models/fetch-smollm2.sh infra/models/',
      to: 'COPY infra/models/fetch-nothing.sh infra/models/',
      error: /source "infra\/models\/fetch-nothing\.sh" is not in the build context/,
    },
    {
      name: 'apt-get pulling in recommended packages (hadolint)',
      check: 'dockerfile',
      file: 'Dockerfile.worker',
      from: 'apt-get install -y --no-install-recommends',
      to: 'apt-get install -y',
      error: /DL3015/,
    },
  ];

  test.each(cases)('fails on $name', ({ check, file, from, to, nth, error }) => {
    const { root, deploy } = copyOfRepo();
    breakFile(path.join(deploy, file), from, to, nth);
    const r = runValidate(root, deploy, [check]);
    expect(r.output).toMatch(error);
    expect(r.status).toBe(1);
  });
});
