import {
  patched,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityInterfaceFor,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { CpuActivities, GpuActivities } from '../activities';
import type { RunSpec } from '../schemas/run-spec';
import type { RunControl } from './run-control';
import { RUN_NAME, STUDENT, TEACHER } from './search-attributes';

/** What every stage of a run needs: its spec, identity, lineage and the activities of its task queues. */
export interface Run {
  spec: RunSpec;
  workflowId: string;
  /** The line of runs an incremental run belongs to (default: the spec's name). */
  lineage: string;
  /** Incremental over its lineage (runs that started before lineages existed replay without). */
  incremental: boolean;
  /** The promoted pointer this run's gate writes and its lineage starts from. */
  pointerName: string;
  cpu: ActivityInterfaceFor<CpuActivities>;
  gpu: ActivityInterfaceFor<GpuActivities>;
}

export function openRun(spec: RunSpec, control: RunControl): Run {
  control.progress.name = spec.name;
  // Runs that started before search attributes existed replay without them.
  if (patched('search-attributes')) {
    control.tagStages();
    upsertSearchAttributes([
      { key: RUN_NAME, value: spec.name },
      { key: TEACHER, value: spec.teacher.model },
      { key: STUDENT, value: studentName(spec) },
    ]);
  }
  const lineage = spec.incremental.lineage ?? spec.name;
  const incremental = spec.incremental.enabled && patched('incremental-lineage');
  const retry: RetryPolicy = {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
  };
  const timeouts = {
    startToCloseTimeout: spec.timeouts.stageHours * 3_600_000,
    heartbeatTimeout: spec.timeouts.heartbeatSeconds * 1000,
  };
  return {
    spec,
    workflowId: workflowInfo().workflowId,
    lineage,
    incremental,
    pointerName: spec.evaluation.gate?.name ?? spec.name,
    cpu: proxyActivities<CpuActivities>({ taskQueue: spec.taskQueues.cpu, ...timeouts, retry }),
    gpu: proxyActivities<GpuActivities>({ taskQueue: spec.taskQueues.gpu, ...timeouts, retry }),
  };
}

/** The student's name for the Web UI's list. */
function studentName(spec: RunSpec): string {
  const ft = spec.fineTune;
  if (ft.backend === 'openai') return ft.openai?.model ?? 'openai';
  if (ft.backend === 'trl')
    return ft.student.source
      .split('/')
      .pop()!
      .replace(/\.gguf$/, '');
  return `tiny-gpt-d${ft.model.dModel}-l${ft.model.nLayer}`;
}
