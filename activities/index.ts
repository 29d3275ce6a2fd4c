import { generateShard } from './generate/generate-shard';
import { mergeShards } from './generate/merge-shards';
import { prepareDataset } from './prepare/prepare-dataset';
import { rejectSample } from './verify/reject-sample';
import { formatFilter } from './filter/format-filter';
import { createFineTune, type DeviceSlot } from './finetune/fine-tune';
import { createEvaluate } from './evaluate/evaluate';

/** Activities of the CPU queue: data preparation, teacher generation, verification and filtering. */
export function createCpuActivities() {
  return { prepareDataset, generateShard, mergeShards, rejectSample, formatFilter };
}

/** Activities of the GPU queue, bound to one device slot: fine-tuning and evaluation of the student. */
export function createGpuActivities(slot: DeviceSlot) {
  return { fineTune: createFineTune(slot), evaluate: createEvaluate({ threads: slot.threads }) };
}

export type CpuActivities = ReturnType<typeof createCpuActivities>;
export type GpuActivities = ReturnType<typeof createGpuActivities>;
export type { DeviceSlot };
