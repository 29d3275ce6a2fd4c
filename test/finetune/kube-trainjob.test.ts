/**
 * fineTune.cluster.engine "kubernetes": the TrainJob the activity renders, and its submit / watch / cancel logic.
 *
 * - The rendered TrainJobs pass infra/deploy/validate.sh's `trainjob` check (Kubeflow Trainer v2.0.0's TrainJob CRD
 *   schema, strictly, plus the volume and one-process-per-GPU rules); copies with one mistake each fail, naming it. The
 *   committed examples in infra/deploy/trainjob/ are what the renderer writes (UPDATE_TRAINJOB_EXAMPLES=1 rewrites them).
 * - Against a fake API server (test/helpers/fake-kube-apiserver.ts, a TEST DOUBLE that also runs each TrainJob's
 *   container command on this host, one process per node, with the torch runtime's PET_* variables): two attempts of
 *   one fine-tune at once create one TrainJob, whose 2 "nodes" train the random-weight student with FSDP (torchrun
 *   multi-node over gloo) and both attempts return its result; a cancelled run is suspended and its nodes stop.
 *
 * The schema test needs Go (as test/infra does) and is skipped without it. About 3 minutes on 2 cores.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { clusterEndpointsFromEnv, type ClusterEndpoints } from '../../activities/finetune/cluster-endpoints';
import { jobIdBase, type Launch } from '../../activities/finetune/cluster-job';
import { createFineTune, type FineTuneInput, type FineTuneResult } from '../../activities/finetune/fine-tune';
import { renderTrainJob } from '../../activities/finetune/kube-trainjob';
import { projectRoot } from '../../infra/paths';
import { FineTuneSchema } from '../../schemas/run-spec';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../helpers/fake-kube-apiserver';
import { pidsWith, randomStudent, sftRunDir } from '../helpers/trainer-fixture';

const validate = path.join(projectRoot, 'infra', 'deploy', 'validate.sh');
const examplesDir = path.join(projectRoot, 'infra', 'deploy', 'trainjob');
const hasGo =
  !!process.env.PATH?.split(path.delimiter).some((d) => existsSync(path.join(d, 'go'))) ||
  existsSync('/usr/local/go/bin/go');
const work = mkdtempSync(path.join(os.tmpdir(), 'kube-ft-'));

/** As deployed by infra/deploy/k8s: the GPU worker's image, the artifacts claim mounted at /app/artifacts. */
const deployed = {
  namespace: 'distillery',
  image: 'distillery/worker:0.1.0-gpu',
  artifactsClaim: 'distillery-artifacts',
  mountPath: '/app/artifacts',
  runtime: 'torch-distributed',
  python: '/opt/distillery/venv/bin/python',
  trainerDir: '/app/infra/trainer',
};
const exampleLaunch = (run: string, nodes: number, gpus: number): Launch => ({
  configPath: `/app/artifacts/${run}/finetune/config.json`,
  eventsFile: `/app/artifacts/${run}/finetune/cluster-events/${jobIdBase(`/app/artifacts/${run}`)}-0.jsonl`,
  nodes,
  gpusPerNode: gpus,
  processesPerNode: Math.max(gpus, 1),
});
const EXAMPLES: Record<string, { name: string; launch: Launch }> = {
  'qwen2.5-7b-one-node.yaml': { name: `${jobIdBase('/app/artifacts/r1-7b')}-0`, launch: exampleLaunch('r1-7b', 1, 8) },
  'qwen2.5-32b-four-nodes.yaml': {
    name: `${jobIdBase('/app/artifacts/r1-32b')}-0`,
    launch: exampleLaunch('r1-32b', 4, 8),
  },
};
const header = (file: string) =>
  `# Rendered by activities/finetune/kube-trainjob.ts (renderTrainJob) for the run in ${path.dirname(path.dirname(EXAMPLES[file]!.launch.configPath))}:\n# checked by infra/deploy/validate.sh trainjob and kept equal to the renderer by test/finetune/kube-trainjob.test.ts.\n`;
const toYaml = (file: string) =>
  header(file) + YAML.stringify(renderTrainJob(EXAMPLES[file]!.name, EXAMPLES[file]!.launch, deployed));

test('the committed example TrainJobs are what the activity renders', () => {
  if (process.env.UPDATE_TRAINJOB_EXAMPLES === '1') {
    mkdirSync(examplesDir, { recursive: true });
    for (const f of Object.keys(EXAMPLES)) writeFileSync(path.join(examplesDir, f), toYaml(f));
  }
  expect(readdirSync(examplesDir).sort()).toEqual(Object.keys(EXAMPLES).sort());
  for (const f of Object.keys(EXAMPLES)) expect(readFileSync(path.join(examplesDir, f), 'utf8')).toBe(toYaml(f));
});

(hasGo ? test : test.skip)(
  'rendered TrainJobs pass the TrainJob CRD schema; copies with one mistake fail, naming it',
  () => {
    const run = (dir: string) => {
      const r = spawnSync('bash', [validate, 'trainjob'], {
        env: { ...process.env, TRAINJOB_DIR: dir },
        encoding: 'utf8',
        timeout: 900_000,
      });
      return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
    };
    const good = path.join(work, 'rendered');
    mkdirSync(good);
    for (const f of Object.keys(EXAMPLES)) writeFileSync(path.join(good, f), toYaml(f));
    // A CPU-only TrainJob (the fake cluster below runs this shape).
    writeFileSync(
      path.join(good, 'cpu.yaml'),
      YAML.stringify(
        renderTrainJob('distillery-0123456789ab-3', exampleLaunch('cpu', 2, 0), {
          ...deployed,
          serviceAccountName: 'distillery-trainer',
        }),
      ),
    );
    const ok = run(good);
    expect(ok.output).toMatch(/ok: TrainJob manifests in/);
    expect(ok.status).toBe(0);

    const mistakes: Array<{ name: string; edit: (tj: any) => void; error: RegExp }> = [
      {
        name: 'a misspelt trainer field',
        edit: (tj) => ((tj.spec.trainer.numProcsPerNode = 8), delete tj.spec.trainer.numProcPerNode),
        error: /Kubeflow Trainer TrainJob schema: .*numProcsPerNode/,
      },
      {
        name: 'GPUs that are not one per process',
        edit: (tj) => (tj.spec.trainer.numProcPerNode = 4),
        error: /nvidia\.com\/gpu=8 but numProcPerNode=4: one process per GPU/,
      },
      {
        name: 'the artifacts volume not mounted',
        edit: (tj) => (tj.spec.podSpecOverrides[0].containers[0].volumeMounts[0].mountPath = '/data'),
        error: /the trainer config \/app\/artifacts\/.* is not on a volume mounted in the node container/,
      },
      {
        name: 'a name the controller cannot use',
        edit: (tj) => (tj.metadata.name = 'Distillery_7B'),
        error: /metadata\.name "Distillery_7B"/,
      },
      {
        name: 'runtimeRef without a name',
        edit: (tj) => delete tj.spec.runtimeRef.name,
        error: /schema: .*runtimeRef.*name|missing propert.*name/,
      },
    ];
    for (const m of mistakes) {
      const dir = path.join(work, `bad-${mistakes.indexOf(m)}`);
      mkdirSync(dir);
      const tj = renderTrainJob(
        EXAMPLES['qwen2.5-7b-one-node.yaml']!.name,
        EXAMPLES['qwen2.5-7b-one-node.yaml']!.launch,
        deployed,
      ) as any;
      m.edit(tj);
      writeFileSync(path.join(dir, 'tj.yaml'), YAML.stringify(tj));
      const r = run(dir);
      if (r.status === 0 || !m.error.test(r.output)) console.log(`${m.name}:\n${r.output}`);
      expect(r.status).toBe(1);
      expect(r.output).toMatch(m.error);
    }
  },
  900_000,
);

describe('against a fake Kubernetes API server (test double)', () => {
  const token = 'test-token-3f9a';
  let api: FakeKubeApiServer;
  let clusters: ClusterEndpoints;
  let student = '';

  beforeAll(async () => {
    student = randomStudent(path.join(work, 'student'));
    api = await startFakeKubeApiServer({ namespace: 'distillery', token });
    const tokenFile = path.join(work, 'token');
    writeFileSync(tokenFile, `${token}\n`);
    const local = clusterEndpointsFromEnv({});
    clusters = {
      ...local,
      kubernetes: {
        apiServer: api.url,
        namespace: 'distillery',
        tokenFile,
        image: 'distillery/worker:test',
        artifactsClaim: 'distillery-artifacts',
        mountPath: os.tmpdir(),
      },
    };
  });
  afterAll(async () => api?.close());

  const fineTune = (nodes: number, maxSteps: number) =>
    FineTuneSchema.parse({
      backend: 'trl',
      batchSize: 4,
      lr: 1e-3,
      warmupRatio: 0,
      checkpointEvery: 2,
      maxSteps,
      seed: 1,
      student: { source: student, maxSeqLen: 64 },
      export: { onnx: false, gguf: false },
      distributed: { strategy: 'fsdp' },
      cluster: { engine: 'kubernetes', nodes, gpusPerNode: 0, pollSeconds: 0.5 },
    });

  test('two attempts at once create one TrainJob; its 2 nodes train with FSDP and both attempts get the result', async () => {
    const { runDir, sft } = await sftRunDir(64);
    const input: FineTuneInput = { runDir, sft, fineTune: fineTune(2, 6) };
    const name = `${jobIdBase(runDir)}-0`;
    const [a, b] = await Promise.all(
      [1, 2].map(
        (attempt) =>
          new MockActivityEnvironment({ attempt }).run(
            createFineTune({ cudaVisibleDevices: '' }, clusters),
            input,
          ) as Promise<FineTuneResult>,
      ),
    );
    const posts = api.requests.filter((r) => r.method === 'POST');
    console.log(`POSTs: ${posts.map((p) => p.status).join(', ')}; TrainJobs ${[...api.trainJobs.keys()].join(', ')}`);
    expect(posts.filter((p) => p.status === 201)).toHaveLength(1);
    expect([...api.trainJobs.keys()]).toEqual([name]);
    expect(api.nodes.get(name)).toHaveLength(2);
    expect(api.trainJobs.get(name)!.status!.conditions.map((c) => c.type)).toEqual(['Complete']);
    expect(a.steps).toBe(6);
    expect(b).toEqual(a);
    // The checkpoints are sharded over both nodes' ranks: world size 2.
    const shards = readdirSync(path.join(runDir, 'finetune', 'checkpoints', 'checkpoint-6', 'pytorch_model_fsdp_0'))
      .filter((f) => f.endsWith('.distcp'))
      .sort();
    expect(shards).toEqual(['__0_0.distcp', '__1_0.distcp']);
    expect(existsSync(path.join(a.modelDir, 'model.safetensors'))).toBe(true);
    // Every call carried the worker's token (the double answers 401 otherwise).
    expect(api.requests.filter((r) => r.status === 401)).toEqual([]);
  }, 600_000);

  test('cancelling suspends the TrainJob; its nodes get SIGTERM and stop', async () => {
    const { runDir, sft } = await sftRunDir(400);
    const input: FineTuneInput = { runDir, sft, fineTune: fineTune(1, 100) };
    const name = `${jobIdBase(runDir)}-0`;
    const env = new MockActivityEnvironment({ attempt: 1 });
    let cancelledAt = 0;
    env.on('heartbeat', (d: { step?: number; phase?: string }) => {
      if (cancelledAt || !d?.step) return;
      cancelledAt = d.step;
      env.cancel();
    });
    const failure = await env.run(createFineTune({ cudaVisibleDevices: '' }, clusters), input).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(CancelledFailure);
    expect(
      api.requests.some((r) => r.method === 'PATCH' && r.path.endsWith(`/trainjobs/${name}`) && r.status === 200),
    ).toBe(true);
    expect(api.trainJobs.get(name)!.spec.suspend).toBe(true);
    const node = api.nodes.get(name)![0]!;
    const deadline = Date.now() + 60_000;
    while (node.exitCode === null && node.signalCode === null && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    console.log(
      `cancelled at step ${cancelledAt}; the node exited with ${node.exitCode ?? node.signalCode}; ${(failure as Error).message}`,
    );
    // torchrun passes SIGTERM on to the rank, which finishes its step, checkpoints and exits 143.
    expect(node.exitCode ?? node.signalCode).not.toBeNull();
    expect(pidsWith('train_sft.py', '--config', path.join(runDir, 'finetune', 'config.json'))).toEqual([]);
    expect(api.trainJobs.get(name)!.status!.conditions.map((c) => c.type)).toContain('Suspended');
  }, 600_000);

  test('a student that cannot fit the cluster is refused before anything is submitted', async () => {
    const big = randomStudent(path.join(work, 'qwen2.5-32b'), { preset: 'qwen2.5-32b', configOnly: true });
    const { runDir, sft } = await sftRunDir(8);
    const before = api.requests.length;
    const fineTune = FineTuneSchema.parse({
      backend: 'trl',
      batchSize: 1,
      student: { source: big, maxSeqLen: 4096 },
      export: { onnx: false, gguf: false },
      distributed: { strategy: 'fsdp', activationCheckpointing: true },
      cluster: { engine: 'kubernetes', nodes: 1, gpusPerNode: 8, gpuMemoryGiB: 80 },
    });
    const failure = await new MockActivityEnvironment()
      .run(createFineTune({ cudaVisibleDevices: '' }, clusters), { runDir, sft, fineTune })
      .catch((e: Error) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).type).toBe('StudentDoesNotFit');
    expect((failure as Error).message).toMatch(
      /32\.76B-parameter student .* with fsdp on 8 GPU\(s\) needs about \d+\.\d+ GiB per GPU .* it would fit with fsdp or zero3 across at least 16 GPUs/,
    );
    // It looked for an earlier job (GET), and created none.
    expect(api.requests.slice(before).filter((r) => r.method !== 'GET')).toEqual([]);
  }, 300_000);
});
