import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';

/**
 * A TEST DOUBLE of the Kubernetes API server for Kubeflow Trainer TrainJobs, honest about what it is: an in-memory
 * store behind the few endpoints the fine-tune activity uses (create, get, merge-patch of trainjobs in one
 * namespace, with a bearer token), plus a stand-in for the Trainer controller and kubelet that runs each TrainJob's
 * container command on this host, one process per node with the torch runtime's PET_* variables, and keeps the
 * TrainJob's conditions (Complete, Failed, Suspended) in step with those processes. No scheduling, images,
 * admission webhooks or watch streams.
 */
export interface FakeKubeApiServer {
  url: string;
  /** Every request, in order: `${method} ${path}` and the response status. */
  requests: Array<{ method: string; path: string; status: number }>;
  /** The stored TrainJobs by name. */
  trainJobs: Map<string, TrainJobObject>;
  /** The node processes started for each TrainJob. */
  nodes: Map<string, ChildProcess[]>;
  close(): Promise<void>;
}

interface TrainJobObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; creationTimestamp?: string; [k: string]: unknown };
  spec: {
    suspend?: boolean;
    trainer: {
      command: string[];
      numNodes: number;
      numProcPerNode: number;
      env?: Array<{ name: string; value: string }>;
    };
    [k: string]: unknown;
  };
  status?: {
    conditions: Array<{ type: string; status: string; reason: string; message: string; lastTransitionTime: string }>;
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startFakeKubeApiServer(opts: {
  namespace: string;
  token: string;
  env?: NodeJS.ProcessEnv;
}): Promise<FakeKubeApiServer> {
  const trainJobs = new Map<string, TrainJobObject>();
  const nodes = new Map<string, ChildProcess[]>();
  const requests: FakeKubeApiServer['requests'] = [];
  const prefix = `/apis/trainer.kubeflow.org/v1alpha1/namespaces/${opts.namespace}/trainjobs`;

  const condition = (tj: TrainJobObject, type: string, reason: string, message: string) => {
    tj.status = {
      conditions: [
        ...(tj.status?.conditions ?? []).filter((c) => c.type !== type),
        { type, status: 'True', reason, message, lastTransitionTime: new Date().toISOString() },
      ],
    };
  };

  /** The controller and kubelet: one process per node running the trainer container's command. */
  const runNodes = async (tj: TrainJobObject) => {
    const t = tj.spec.trainer;
    const port = await freePort();
    const env = Object.fromEntries((t.env ?? []).map((e) => [e.name, e.value]));
    const procs: ChildProcess[] = [];
    let left = t.numNodes;
    let failed = 0;
    for (let rank = 0; rank < t.numNodes; rank++) {
      const p = spawn(t.command[0]!, t.command.slice(1), {
        stdio: 'ignore',
        env: {
          ...process.env,
          ...opts.env,
          ...env,
          CUDA_VISIBLE_DEVICES: '',
          OMP_NUM_THREADS: '1',
          PET_NNODES: String(t.numNodes),
          PET_NPROC_PER_NODE: String(t.numProcPerNode),
          PET_NODE_RANK: String(rank),
          PET_MASTER_ADDR: '127.0.0.1',
          PET_MASTER_PORT: String(port),
        },
      });
      p.once('exit', (code, signal) => {
        if (code !== 0) failed++;
        if (--left > 0) return;
        if (tj.spec.suspend) condition(tj, 'Suspended', 'Suspended', 'TrainJob is suspended');
        else if (failed) condition(tj, 'Failed', 'JobFailed', `node exited with ${code ?? signal}`);
        else condition(tj, 'Complete', 'JobsCompleted', 'TrainJob is completed');
      });
      procs.push(p);
    }
    nodes.set(tj.metadata.name, procs);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, body: unknown) => {
        requests.push({ method: req.method!, path: req.url!, status });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const status = (code: number, reason: string, message: string) =>
        reply(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });
      if (req.headers.authorization !== `Bearer ${opts.token}`) return status(401, 'Unauthorized', 'Unauthorized');
      const url = new URL(req.url!, 'http://x');
      if (!url.pathname.startsWith(prefix))
        return status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
      const name = decodeURIComponent(url.pathname.slice(prefix.length).replace(/^\//, ''));
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      if (req.method === 'POST' && !name) {
        if (req.headers['content-type'] !== 'application/json')
          return status(415, 'UnsupportedMediaType', 'want application/json');
        const tj = body as TrainJobObject;
        if (tj.kind !== 'TrainJob' || !tj.metadata?.name)
          return status(422, 'Invalid', 'kind TrainJob with metadata.name required');
        if (tj.metadata.namespace && tj.metadata.namespace !== opts.namespace)
          return status(400, 'BadRequest', 'the namespace of the object does not match the namespace on the request');
        if (trainJobs.has(tj.metadata.name))
          return status(409, 'AlreadyExists', `trainjobs.trainer.kubeflow.org "${tj.metadata.name}" already exists`);
        tj.metadata = {
          ...tj.metadata,
          namespace: opts.namespace,
          uid: `uid-${trainJobs.size}`,
          creationTimestamp: new Date().toISOString(),
        };
        trainJobs.set(tj.metadata.name, tj);
        if (!tj.spec.suspend) void runNodes(tj);
        return reply(201, tj);
      }
      const tj = trainJobs.get(name);
      if (!tj) return status(404, 'NotFound', `trainjobs.trainer.kubeflow.org "${name}" not found`);
      if (req.method === 'GET') return reply(200, tj);
      if (req.method === 'PATCH') {
        if (req.headers['content-type'] !== 'application/merge-patch+json')
          return status(415, 'UnsupportedMediaType', 'want application/merge-patch+json');
        const suspend = body?.spec?.suspend;
        if (typeof suspend === 'boolean') {
          tj.spec.suspend = suspend;
          // Suspending deletes the pods: SIGTERM, as the kubelet sends before the grace period ends.
          if (suspend) for (const p of nodes.get(name) ?? []) if (p.exitCode === null) p.kill('SIGTERM');
        }
        return reply(200, tj);
      }
      return status(405, 'MethodNotAllowed', `${req.method} is not supported here`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    trainJobs,
    nodes,
    close: async () => {
      for (const procs of nodes.values())
        for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
