/**
 * Nightly distillations on Temporal's Schedules API. A scheduled run is incremental by default: it belongs to the
 * lineage named after the schedule, takes only prompts its earlier successful runs have not distilled, and (with a
 * gate) fine-tunes from the student the lineage promoted last.
 */
import { ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleSummary } from '@temporalio/client';
import type { RunSpec } from '../schemas/run-spec';
import { RUN_NAME, STUDENT, TEACHER } from '../workflows/search-attributes';

export const OVERLAP_POLICIES = [
  'skip',
  'buffer_one',
  'buffer_all',
  'cancel_other',
  'terminate_other',
  'allow_all',
] as const;
export type OverlapName = (typeof OVERLAP_POLICIES)[number];

export function overlapPolicy(name: string): ScheduleOverlapPolicy {
  const key = name.toUpperCase() as keyof typeof ScheduleOverlapPolicy;
  if (!OVERLAP_POLICIES.includes(name as OverlapName) || !ScheduleOverlapPolicy[key]) {
    throw new Error(`--overlap must be one of ${OVERLAP_POLICIES.join(', ')}, got ${name}`);
  }
  return ScheduleOverlapPolicy[key]!;
}

export interface CreateScheduleOptions {
  scheduleId?: string;
  /** Cron expressions (UTC), e.g. "0 2 * * *". */
  cron?: string[];
  /** Fixed intervals, e.g. "1h", "30m". */
  every?: string[];
  overlap?: OverlapName;
  catchupWindow?: string;
  paused?: boolean;
  note?: string;
  /** Scheduled runs are incremental unless told otherwise. */
  incremental?: boolean;
}

/** The spec a scheduled run gets: incremental over the schedule's lineage unless the spec or the caller says no. */
export function scheduledSpec(spec: RunSpec, scheduleId: string, incremental = true): RunSpec {
  if (!incremental) return spec;
  const gate = !!spec.evaluation.gate;
  return {
    ...spec,
    incremental: {
      ...spec.incremental,
      enabled: true,
      lineage: spec.incremental.lineage ?? scheduleId,
      fromPromoted: spec.incremental.enabled ? spec.incremental.fromPromoted : gate,
    },
  };
}

export async function createSchedule(
  client: Client,
  spec: RunSpec,
  opts: CreateScheduleOptions,
): Promise<{ scheduleId: string; spec: RunSpec }> {
  if (!opts.cron?.length && !opts.every?.length)
    throw new Error('a schedule needs --cron "<expr>" or --every <interval>');
  const scheduleId = opts.scheduleId ?? spec.name;
  const runSpec = scheduledSpec(spec, scheduleId, opts.incremental ?? true);
  await client.schedule.create({
    scheduleId,
    spec: {
      ...(opts.cron?.length ? { cronExpressions: opts.cron } : {}),
      ...(opts.every?.length
        ? { intervals: opts.every.map((every) => ({ every: every as `${number}${'s' | 'm' | 'h' | 'd'}` })) }
        : {}),
    },
    action: {
      type: 'startWorkflow',
      workflowType: 'distillationWorkflow',
      // Temporal appends the scheduled time, so each run has its own id (and artifact directory).
      workflowId: scheduleId,
      taskQueue: runSpec.taskQueues.workflow,
      args: [runSpec],
      typedSearchAttributes: [
        { key: RUN_NAME, value: runSpec.name },
        { key: TEACHER, value: runSpec.teacher.model },
        {
          key: STUDENT,
          value: runSpec.fineTune.backend === 'trl' ? runSpec.fineTune.student.source : runSpec.fineTune.backend,
        },
      ],
    },
    policies: {
      overlap: overlapPolicy(opts.overlap ?? 'skip'),
      ...(opts.catchupWindow ? { catchupWindow: opts.catchupWindow as `${number}${'s' | 'm' | 'h' | 'd'}` } : {}),
    },
    state: { paused: opts.paused ?? false, ...(opts.note ? { note: opts.note } : {}) },
  });
  return { scheduleId, spec: runSpec };
}

export async function listSchedules(client: Client): Promise<ScheduleSummary[]> {
  const out: ScheduleSummary[] = [];
  for await (const s of client.schedule.list()) {
    if (s.action?.type === 'startWorkflow' && s.action.workflowType !== 'distillationWorkflow') continue;
    out.push(s);
  }
  return out;
}

/** A plain-JSON view of a schedule: what it runs, when, and what it has done. */
export function describeForHumans(d: ScheduleDescription): Record<string, unknown> {
  const action = d.action as { workflowType?: string; taskQueue?: string; args?: unknown[] };
  const spec = (action.args?.[0] ?? {}) as Partial<RunSpec>;
  return {
    scheduleId: d.scheduleId,
    paused: d.state.paused,
    note: d.state.note ?? null,
    calendars: d.spec.calendars ?? [],
    intervals: (d.spec.intervals ?? []).map((i) => i.every),
    overlap: d.policies.overlap,
    catchupWindowMs: d.policies.catchupWindow,
    workflowType: action.workflowType,
    taskQueue: action.taskQueue,
    runName: spec.name,
    incremental: spec.incremental ?? null,
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
    missedCatchupWindow: d.info.numActionsMissedCatchupWindow,
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    recent: d.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt,
      takenAt: a.takenAt,
      workflowId: a.action.workflow.workflowId,
    })),
    next: d.info.nextActionTimes.slice(0, 5),
  };
}
