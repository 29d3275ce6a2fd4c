import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes, so runs can be found and filtered in the Web UI's list (e.g.
 * `DistilleryStage = "finetune" AND DistilleryTeacher = "gpt-4o"`). They must exist in the namespace before a workflow
 * sets them: the dev server is started with them, and workers register them at start-up (infra/search-attributes.ts).
 */
export const RUN_NAME = defineSearchAttributeKey('DistilleryRunName', SearchAttributeType.KEYWORD);
export const STAGE = defineSearchAttributeKey('DistilleryStage', SearchAttributeType.KEYWORD);
export const TEACHER = defineSearchAttributeKey('DistilleryTeacher', SearchAttributeType.KEYWORD);
export const STUDENT = defineSearchAttributeKey('DistilleryStudent', SearchAttributeType.KEYWORD);

export const DISTILLERY_SEARCH_ATTRIBUTES = [RUN_NAME, STAGE, TEACHER, STUDENT];
