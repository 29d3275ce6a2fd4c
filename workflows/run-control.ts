import {
  condition,
  getExternalWorkflowHandle,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { STAGE } from './search-attributes';
import {
  generationProgressSignal,
  pauseSignal,
  progressQuery,
  resumeSignal,
  setTeacherLimitsUpdate,
  teacherLimitsSignal,
  type GenerationTally,
  type RunProgress,
  type Stage,
  type TeacherLimits,
} from './messages';

/** The generation child's workflow id: derived from the run's, so controls reach it without a lookup. */
export const generationIdOf = (workflowId: string): string => `${workflowId}-generate`;

const LIMIT_NAMES = ['maxInFlight', 'concurrency', 'maxShardsInFlight'];
const AFTER_GENERATION: Stage[] = ['verify', 'filter', 'finetune', 'evaluate', 'done'];

/** A run's live state (the `progress` query) and the controls a person has over it while it runs. */
export interface RunControl {
  progress: RunProgress;
  /** Waits while the run is paused (a paused run starts no new stage), then moves it to `stage`. */
  enter(stage: Stage): Promise<void>;
  /** From now on every stage is also written to the DistilleryStage search attribute. */
  tagStages(): void;
}

/**
 * Registers the run's query, signals and update: `progress`; `pause` / `resume` (forwarded to the generation child
 * while it runs); `setTeacherLimits` (validated, forwarded, refused once generation is over); and the child's
 * progress reports.
 */
export function installRunControl(): RunControl {
  const { workflowId } = workflowInfo();
  const progress: RunProgress = {
    runId: workflowId,
    name: null,
    stage: 'validate',
    stageStartedAt: new Date().toISOString(),
    counts: {},
    generation: null,
    acceptanceRate: null,
    tokens: { prompt: 0, completion: 0 },
    paused: false,
    teacherLimits: null,
  };
  setHandler(progressQuery, () => progress);
  const generationId = generationIdOf(workflowId);
  const toGeneration = async (send: (child: ReturnType<typeof getExternalWorkflowHandle>) => Promise<void>) => {
    if (progress.stage === 'generate') await send(getExternalWorkflowHandle(generationId)).catch(() => undefined);
  };
  setHandler(pauseSignal, async () => {
    progress.paused = true;
    await toGeneration((child) => child.signal(pauseSignal));
  });
  setHandler(resumeSignal, async () => {
    progress.paused = false;
    await toGeneration((child) => child.signal(resumeSignal));
  });
  setHandler(
    setTeacherLimitsUpdate,
    async (limits: TeacherLimits) => {
      progress.teacherLimits = { ...progress.teacherLimits, ...limits };
      await toGeneration((child) => child.signal(teacherLimitsSignal, limits));
      return progress.teacherLimits;
    },
    {
      validator: (limits: TeacherLimits) => {
        for (const [k, v] of Object.entries(limits)) {
          if (!LIMIT_NAMES.includes(k)) throw new Error(`unknown limit ${k}`);
          if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer`);
        }
        if (AFTER_GENERATION.includes(progress.stage)) throw new Error(`generation is over (stage ${progress.stage})`);
      },
    },
  );
  setHandler(generationProgressSignal, (tally: GenerationTally) => {
    progress.generation = tally;
    progress.tokens = { prompt: tally.promptTokens, completion: tally.completionTokens };
  });

  let tagged = false;
  return {
    progress,
    enter: async (stage) => {
      await condition(() => !progress.paused);
      progress.stage = stage;
      progress.stageStartedAt = new Date().toISOString();
      if (tagged) upsertSearchAttributes([{ key: STAGE, value: stage }]);
    },
    tagStages: () => void (tagged = true),
  };
}
