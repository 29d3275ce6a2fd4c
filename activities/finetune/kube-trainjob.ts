import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ClusterEngine, JobStatus, Launch } from './cluster-job';
import { httpCall } from './http-json';

export interface TrainJobOptions {
  apiServer: string;
  namespace: string;
  tokenFile?: string;
  image: string;
  artifactsClaim: string;
  mountPath: string;
  serviceAccountName?: string;
  /** The ClusterTrainingRuntime (Kubeflow Trainer's torch-distributed by default). */
  runtime: string;
  python: string;
  trainerDir: string;
}

const GROUP = 'trainer.kubeflow.org';
const VERSION = 'v1alpha1';

/**
 * A Kubeflow Trainer TrainJob that runs train_sft.py under torch.distributed.run on `nodes` pods (the torch runtime
 * sets PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR, PET_NPROC_PER_NODE, which torch.distributed.run reads), each with
 * the artifacts claim mounted at the path the workers use, so the config, the data and the checkpoints are where the
 * activity wrote and will read them.
 */
export function renderTrainJob(
  name: string,
  launch: Launch,
  o: Omit<TrainJobOptions, 'apiServer' | 'tokenFile'>,
): Record<string, unknown> {
  const gpus = launch.gpusPerNode;
  const resources =
    gpus > 0
      ? { limits: { 'nvidia.com/gpu': gpus }, requests: { 'nvidia.com/gpu': gpus } }
      : { requests: { cpu: String(launch.processesPerNode) } };
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'TrainJob',
    metadata: {
      name,
      namespace: o.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'distillery', 'app.kubernetes.io/component': 'fine-tune' },
    },
    spec: {
      runtimeRef: { name: o.runtime, kind: 'ClusterTrainingRuntime', apiGroup: GROUP },
      trainer: {
        image: o.image,
        command: [
          o.python,
          '-m',
          'torch.distributed.run',
          path.join(o.trainerDir, 'sft', 'train_sft.py'),
          '--config',
          launch.configPath,
        ],
        numNodes: launch.nodes,
        numProcPerNode: launch.processesPerNode,
        resourcesPerNode: resources,
        env: [
          { name: 'DISTILLERY_EVENTS_FILE', value: launch.eventsFile },
          { name: 'PYTHONUNBUFFERED', value: '1' },
        ],
      },
      podSpecOverrides: [
        {
          targetJobs: [{ name: 'node' }],
          ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
          containers: [
            {
              name: 'node',
              volumeMounts: [
                { name: 'artifacts', mountPath: o.mountPath },
                ...(gpus > 0 ? [{ name: 'dshm', mountPath: '/dev/shm' }] : []),
              ],
            },
          ],
          // NCCL and the data loader share memory through /dev/shm, which a container gets only 64 MiB of by default.
          volumes: [
            { name: 'artifacts', persistentVolumeClaim: { claimName: o.artifactsClaim } },
            ...(gpus > 0 ? [{ name: 'dshm', emptyDir: { medium: 'Memory' } }] : []),
          ],
        },
      ],
    },
  };
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** A TrainJob's state from its conditions (Complete, Failed, Suspended: the Trainer controller's types). */
export function trainJobStatus(obj: {
  spec?: { suspend?: boolean };
  status?: { conditions?: Condition[] };
}): JobStatus {
  const conds = obj.status?.conditions ?? [];
  const on = (t: string) => conds.find((c) => c.type === t && c.status === 'True');
  const failed = on('Failed');
  if (failed) return { phase: 'failed', message: [failed.reason, failed.message].filter(Boolean).join(': ') };
  const complete = on('Complete');
  if (complete) return { phase: 'succeeded', message: complete.message };
  if (on('Suspended') || obj.spec?.suspend)
    return { phase: 'stopped', message: on('Suspended')?.message ?? 'suspended' };
  return { phase: conds.length ? 'running' : 'pending' };
}

/**
 * TrainJobs through the Kubernetes API (create, get, merge-patch `spec.suspend: true` on cancel). The bearer token is
 * read from the worker's token file on each call (a projected service-account token rotates). For a private CA
 * (in a pod: the service account's ca.crt) start the worker with NODE_EXTRA_CA_CERTS.
 */
export function kubeTrainJobEngine(o: TrainJobOptions & { timeoutMs?: number }): ClusterEngine {
  const base = `${o.apiServer}/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(o.namespace)}/trainjobs`;
  const call = async (method: string, url: string, body?: unknown, contentType = 'application/json') => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (o.tokenFile) headers.authorization = `Bearer ${readFileSync(o.tokenFile, 'utf8').trim()}`;
    if (body) headers['content-type'] = contentType;
    return httpCall(method, url, { headers, body: body ? JSON.stringify(body) : undefined, timeoutMs: o.timeoutMs });
  };
  const fail = (what: string, r: { status: number; text: string }) =>
    new Error(`Kubernetes API ${what}: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
  return {
    name: 'kubernetes',
    async status(name: string) {
      const r = await call('GET', `${base}/${encodeURIComponent(name)}`);
      if (r.status === 404) return null;
      if (r.status !== 200) throw fail(`GET trainjobs/${name}`, r);
      return trainJobStatus(JSON.parse(r.text));
    },
    async submit(name: string, launch: Launch) {
      const r = await call('POST', base, renderTrainJob(name, launch, o));
      if (r.status === 201 || r.status === 200) return 'created';
      if (r.status === 409) return 'exists';
      throw fail('POST trainjobs', r);
    },
    async stop(name: string) {
      const r = await call(
        'PATCH',
        `${base}/${encodeURIComponent(name)}`,
        { spec: { suspend: true } },
        'application/merge-patch+json',
      );
      if (r.status !== 200 && r.status !== 404) throw fail(`PATCH trainjobs/${name}`, r);
    },
  };
}
