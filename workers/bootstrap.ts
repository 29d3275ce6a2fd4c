import { existsSync } from 'node:fs';
import { DefaultLogger, NativeConnection, Runtime, type LogEntry, type Worker } from '@temporalio/worker';
import { workflowBundlePath } from './build-bundle';
import { describeWorkerPolicy, loadWorkerPolicy } from '../activities/security/worker-policy';
import { codecFromEnv, encryptionRequired } from '../infra/codec/aes-gcm-codec';

export interface WorkerEnv {
  address: string;
  namespace: string;
}

export function workerEnv(): WorkerEnv {
  return {
    address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
  };
}

/**
 * One JSON object per line on stderr: the SDK puts workflowId, runId, activityId, activityType, taskQueue and attempt
 * in each workflow and activity log entry's meta, so a log search by run id finds every line of that run.
 */
export function jsonLogLine(entry: LogEntry): void {
  const { message, level, timestampNanos, meta } = entry;
  const ts = new Date(Number(timestampNanos / 1_000_000n)).toISOString();
  process.stderr.write(
    JSON.stringify({ ts, level, msg: message, pid: process.pid, ...meta }, (_k, v) =>
      typeof v === 'bigint' ? v.toString() : v,
    ) + '\n',
  );
}

let runtimeInstalled = false;
export function installRuntime(): void {
  if (runtimeInstalled) return;
  const metricsAddress = process.env.DISTILLERY_METRICS_ADDRESS;
  const level = (process.env.DISTILLERY_LOG_LEVEL as 'INFO' | undefined) ?? 'INFO';
  Runtime.install({
    logger:
      process.env.DISTILLERY_LOG_FORMAT === 'text' ? new DefaultLogger(level) : new DefaultLogger(level, jsonLogLine),
    // Prometheus /metrics: the SDK runtime's temporal_* metrics and the project's distillery_* ones.
    ...(metricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } } } : {}),
  });
  runtimeInstalled = true;
}

/**
 * Loads the worker's key and path policy and its codec keys before it connects (a bad policy, or
 * DISTILLERY_REQUIRE_ENCRYPTION=1 without keys, stops the worker here, naming the setting) and logs the policy:
 * variable names, hosts and roots, never a value.
 */
export function loadSecurityPolicy(): void {
  const policy = loadWorkerPolicy();
  codecFromEnv();
  const line = {
    ts: new Date().toISOString(),
    level: 'INFO',
    msg: 'worker policy',
    pid: process.pid,
    ...describeWorkerPolicy(policy),
    requireEncryption: encryptionRequired(),
  };
  process.stderr.write(JSON.stringify(line) + '\n');
}

export async function connect(env: WorkerEnv): Promise<NativeConnection> {
  return NativeConnection.connect({ address: env.address });
}

export function workflowBundle(): { codePath: string } {
  if (!existsSync(workflowBundlePath))
    throw new Error(`No workflow bundle at ${workflowBundlePath}: run \`npm run build\``);
  return { codePath: workflowBundlePath };
}

/**
 * Runs workers until SIGTERM/SIGINT, then shuts them down gracefully: in-flight activities get the grace time to
 * heartbeat or checkpoint (the trainer writes a checkpoint on SIGTERM) before they are cancelled.
 */
export async function runUntilSignalled(
  workers: Worker[],
  connection: NativeConnection,
  ready: Record<string, unknown>,
): Promise<void> {
  const stop = () => workers.forEach((w) => w.getState() === 'RUNNING' && w.shutdown());
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const running = Promise.all(workers.map((w) => w.run()));
  console.log(JSON.stringify({ event: 'ready', pid: process.pid, ...ready }));
  try {
    await running;
  } finally {
    await connection.close();
  }
}

/** `--name value` from argv, else the environment variable, else the default. */
export function option(name: string, envName: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1]!;
  return process.env[envName] ?? fallback;
}
