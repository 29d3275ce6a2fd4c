import * as os from 'node:os';
import { Worker } from '@temporalio/worker';
import { createGpuActivities, type DeviceSlot } from '../activities';
import { dataConverterFromEnv } from '../infra/codec/aes-gcm-codec';
import { connect, installRuntime, loadSecurityPolicy, option, runUntilSignalled, workerEnv } from './bootstrap';

/**
 * The GPU worker: fine-tune and evaluate. One Temporal worker per slot, each running at most one activity at a
 * time and handing it its CUDA_VISIBLE_DEVICES.
 *   --gpu-slots "0,1"      two slots, one GPU each
 *   --gpu-slots "0-1,2-3"  two slots of two GPUs (a trainer may use torchrun across them)
 *   --gpu-slots cpu        one CPU slot (CUDA_VISIBLE_DEVICES=""), the default on machines without GPUs
 */
export function parseSlots(spec: string): DeviceSlot[] {
  if (spec.trim() === 'cpu') return [{ cudaVisibleDevices: '', threads: os.availableParallelism() }];
  return spec.split(',').map((s) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(s.trim());
    if (!m) throw new Error(`--gpu-slots: "${s}" is not a GPU index or range (e.g. 0 or 0-3)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    return { cudaVisibleDevices: Array.from({ length: to - from + 1 }, (_, i) => from + i).join(',') };
  });
}

async function main(): Promise<void> {
  installRuntime();
  loadSecurityPolicy();
  const env = workerEnv();
  const gpuQueue = option('gpu-queue', 'DISTILLERY_GPU_QUEUE', 'distillery-gpu');
  const slots = parseSlots(option('gpu-slots', 'DISTILLERY_GPU_SLOTS', 'cpu'));
  const connection = await connect(env);
  const workers = await Promise.all(
    slots.map((slot) =>
      Worker.create({
        connection,
        namespace: env.namespace,
        dataConverter: dataConverterFromEnv(),
        taskQueue: gpuQueue,
        activities: createGpuActivities(slot),
        maxConcurrentActivityTaskExecutions: 1,
        // Long enough for the trainer to write a checkpoint after SIGTERM.
        shutdownGraceTime: '60 seconds',
      }),
    ),
  );
  await runUntilSignalled(workers, connection, {
    worker: 'gpu',
    gpuQueue,
    slots: slots.map((s) => s.cudaVisibleDevices || 'cpu'),
  });
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
