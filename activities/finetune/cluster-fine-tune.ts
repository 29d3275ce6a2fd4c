import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { pythonBin, trainerScript } from '../../infra/paths';
import { currentActivity } from '../activity-context';
import { clusterEndpointsFromEnv, type ClusterEndpoints } from './cluster-endpoints';
import { jobIdBase, runOnCluster, type ClusterEngine } from './cluster-job';
import type { FineTuneInput, FineTuneResult } from './fine-tune';
import { kubeTrainJobEngine } from './kube-trainjob';
import { rayJobsEngine } from './ray-jobs';
import { processesPerNode, trainerFailure, trlResult } from './trl-outcome';

type Cluster = NonNullable<FineTuneInput['fineTune']['cluster']>;

function engineFor(cluster: Cluster, endpoints: ClusterEndpoints): ClusterEngine {
  if (cluster.engine === 'ray') {
    if (!endpoints.ray)
      throw ApplicationFailure.nonRetryable(
        'fineTune.cluster.engine is "ray" but this worker has no Ray cluster: set DISTILLERY_RAY_ADDRESS (the dashboard, e.g. http://ray-head:8265) on the GPU workers',
        'ClusterNotConfigured',
      );
    return rayJobsEngine({
      address: endpoints.ray.address,
      python: endpoints.python,
      trainerDir: endpoints.trainerDir,
    });
  }
  if (!endpoints.kubernetes)
    throw ApplicationFailure.nonRetryable(
      'fineTune.cluster.engine is "kubernetes" but this worker has no cluster: set DISTILLERY_KUBE_API, DISTILLERY_TRAINJOB_IMAGE, DISTILLERY_ARTIFACTS_CLAIM and DISTILLERY_ARTIFACTS_MOUNT on the GPU workers',
      'ClusterNotConfigured',
    );
  return kubeTrainJobEngine({
    ...endpoints.kubernetes,
    python: endpoints.python,
    trainerDir: endpoints.trainerDir,
    runtime: cluster.engine === 'kubernetes' ? cluster.runtime : 'torch-distributed',
  });
}

/** The memory estimate for the cluster's nodes, made here before anything is submitted (memory_estimate.py). */
async function estimateMemory(configPath: string, cluster: Cluster): Promise<void> {
  const args = [
    trainerScript(path.join('sft', 'memory_estimate.py')),
    '--config',
    configPath,
    '--nodes',
    String(cluster.nodes),
  ];
  if (cluster.gpusPerNode > 0)
    args.push('--gpus-per-node', String(cluster.gpusPerNode), '--gpu-memory-gib', String(cluster.gpuMemoryGiB));
  if (cluster.hostMemoryGiB) args.push('--host-memory-gib', String(cluster.hostMemoryGiB));
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      pythonBin(),
      args,
      { timeout: 300_000, env: { ...process.env, CUDA_VISIBLE_DEVICES: '' } },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
  if (r.code !== 0)
    throw trainerFailure(
      r.code,
      `the fine-tune was not submitted: ${r.stderr.trim().split('\n').slice(-3).join('\n')}`,
      r.stderr,
    );
  currentActivity()?.log.info('memory estimate for the cluster', JSON.parse(r.stdout));
}

/**
 * The trl trainer on a cluster (Ray Jobs or a Kubeflow TrainJob): the memory estimate first, then one job per
 * generation with a deterministic id, followed through the trainer's events file on the shared artifact storage;
 * every node reads the same config and data and writes the same checkpoints dir, so a new generation resumes
 * where the failed one stopped.
 */
export async function fineTuneOnCluster(
  input: FineTuneInput,
  outDir: string,
  configPath: string,
  resultPath: string,
  clusters?: ClusterEndpoints,
): Promise<FineTuneResult> {
  const ctx = currentActivity();
  const cluster = input.fineTune.cluster!;
  let endpoints = clusters;
  try {
    endpoints ??= clusterEndpointsFromEnv();
  } catch (e) {
    throw ApplicationFailure.nonRetryable(
      `this worker's cluster settings are incomplete: ${(e as Error).message}`,
      'ClusterNotConfigured',
    );
  }
  const engine = engineFor(cluster, endpoints);
  const eventsDir = path.join(outDir, 'cluster-events');
  await fs.mkdir(eventsDir, { recursive: true });
  const run = await runOnCluster({
    engine,
    base: jobIdBase(input.runDir),
    launch: (jobId) => ({
      configPath,
      eventsFile: path.join(eventsDir, `${jobId}.jsonl`),
      nodes: cluster.nodes,
      gpusPerNode: cluster.gpusPerNode,
      processesPerNode: processesPerNode(input.fineTune) ?? 1,
    }),
    beforeSubmit: async () => {
      const ticker = setInterval(
        () => ctx?.heartbeat({ step: 0, checkpoint: null, loss: null, phase: 'memory-estimate' }),
        2000,
      );
      try {
        await estimateMemory(configPath, cluster);
      } finally {
        clearInterval(ticker);
      }
    },
    pollMs: cluster.pollSeconds * 1000,
    signal: ctx?.cancellationSignal,
    heartbeat: (d) => ctx?.heartbeat(d),
    onEvent: (e) =>
      e.event === 'step' &&
      ctx?.log.info('train step', {
        step: e.step,
        total: e.total_steps,
        loss: e.loss,
        tokensPerSecond: e.tokens_per_s,
      }),
    log: (msg) => ctx?.log.info(msg),
  });
  const where = `${engine.name} job ${run.jobId} ${run.status.phase} at step ${run.lastStep} (last checkpoint ${run.lastCheckpoint ?? 'none'})`;
  if (run.status.phase === 'succeeded' && run.done) return trlResult(run.done, run, resultPath);
  if (run.status.phase === 'succeeded')
    throw new Error(`${where}, but the trainer wrote no done event to ${path.join(eventsDir, `${run.jobId}.jsonl`)}`);
  const message = run.status.message ?? '';
  throw trainerFailure(run.status.exitCode ?? null, `${where}: ${message.slice(-4000)}`, message);
}
