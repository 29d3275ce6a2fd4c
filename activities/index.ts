import { generateShard } from './generate/generate-shard';
import { mergeShards } from './generate/merge-shards';
import { prepareDataset } from './prepare/prepare-dataset';
import { listArtifacts } from './artifacts/list-artifacts';
import { writeReport } from './report/report';
import { getPromoted, promote, readIncumbent } from './evaluate/promoted';
import { mergeLineageAccepted, recordLineageRun } from './lineage/lineage';
import { rejectSample } from './verify/reject-sample';
import { formatFilter } from './filter/format-filter';
import { createFineTune, type DeviceSlot } from './finetune/fine-tune';
import { createOpenAIFineTune } from './finetune/openai-fine-tune';
import { createEvaluate } from './evaluate/evaluate';
import { currentActivity } from './activity-context';
import { recordVerdicts, timedStage } from './metrics';
import { normaliseRunSpec } from './spec/normalise-run-spec';

/** Each stage's wall time goes to the distillery_stage_duration_seconds histogram. */
function timed<I, O>(stage: string, fn: (input: I) => Promise<O>): (input: I) => Promise<O> {
  return (input) => timedStage(currentActivity(), stage, () => fn(input));
}

/** Local activities of the worker that runs the workflows (quick, pure steps whose answer the history must keep). */
export function createWorkflowActivities() {
  return { normaliseRunSpec };
}

/** Activities of the CPU queue: data preparation, teacher generation, verification and filtering. */
export function createCpuActivities() {
  return {
    prepareDataset: timed('prepare', prepareDataset),
    generateShard: timed('generate_shard', generateShard),
    mergeShards: timed('merge', mergeShards),
    rejectSample: timed('verify', async (input: Parameters<typeof rejectSample>[0]) => {
      const r = await rejectSample(input);
      recordVerdicts(currentActivity(), r.accepted, r.rejected);
      return r;
    }),
    formatFilter: timed('filter', formatFilter),
    listArtifacts,
    promote: timed('promote', promote),
    getPromoted,
    readIncumbent,
    mergeLineageAccepted: timed('merge_accepted', mergeLineageAccepted),
    recordLineageRun,
    writeReport: timed('report', writeReport),
    // A fine-tuning API trains on the provider's machines: polling it must not hold a GPU slot for hours.
    openaiFineTune: timed('finetune', createOpenAIFineTune()),
  };
}

/** Activities of the GPU queue, bound to one device slot: fine-tuning and evaluation of the student. */
export function createGpuActivities(slot: DeviceSlot) {
  return {
    fineTune: timed('finetune', createFineTune(slot)),
    evaluate: timed('evaluate', createEvaluate({ threads: slot.threads, cudaVisibleDevices: slot.cudaVisibleDevices })),
  };
}

export type WorkflowActivities = ReturnType<typeof createWorkflowActivities>;
export type CpuActivities = ReturnType<typeof createCpuActivities>;
export type GpuActivities = ReturnType<typeof createGpuActivities>;
export type { DeviceSlot };
