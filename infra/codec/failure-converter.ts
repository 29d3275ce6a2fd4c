import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Failure messages and stack traces go into an encoded-attributes payload instead of plain fields, so the payload
 * codec encrypts them like any other payload (an error can quote a prompt or a path). Loaded by path: the workflow
 * bundle (workers/build-bundle.ts) and every worker and client data converter use the same one.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
