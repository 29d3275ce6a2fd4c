import { Worker } from '@temporalio/worker';
import { createCpuActivities, createWorkflowActivities } from '../activities';
import { dataConverterFromEnv } from '../infra/codec/aes-gcm-codec';
import { ensureSearchAttributes } from '../infra/search-attributes';
import {
  connect,
  installRuntime,
  loadSecurityPolicy,
  option,
  runUntilSignalled,
  workerEnv,
  workflowBundle,
} from './bootstrap';

/**
 * The CPU worker: runs the workflows (orchestration queue) and the CPU stages (prepare, generate, verify, filter).
 * Queue names must match the run spec's `taskQueues`.
 */
async function main(): Promise<void> {
  installRuntime();
  loadSecurityPolicy();
  const env = workerEnv();
  const workflowQueue = option('workflow-queue', 'DISTILLERY_WORKFLOW_QUEUE', 'distillery');
  const cpuQueue = option('cpu-queue', 'DISTILLERY_CPU_QUEUE', 'distillery-cpu');
  const concurrency = Number(option('max-activities', 'DISTILLERY_CPU_MAX_ACTIVITIES', '16'));
  const connection = await connect(env);
  const added = await ensureSearchAttributes(connection, env.namespace);
  if (added.length) console.error(JSON.stringify({ level: 'INFO', msg: 'registered search attributes', names: added }));
  const common = {
    connection,
    namespace: env.namespace,
    shutdownGraceTime: '10 seconds',
    dataConverter: dataConverterFromEnv(),
  } as const;
  const workflows = await Worker.create({
    ...common,
    taskQueue: workflowQueue,
    workflowBundle: workflowBundle(),
    activities: createWorkflowActivities(),
  });
  const activities = await Worker.create({
    ...common,
    taskQueue: cpuQueue,
    activities: createCpuActivities(),
    maxConcurrentActivityTaskExecutions: concurrency,
  });
  await runUntilSignalled([workflows, activities], connection, { worker: 'cpu', workflowQueue, cpuQueue });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
