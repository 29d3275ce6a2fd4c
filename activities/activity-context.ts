import { Context } from '@temporalio/activity';

/** The activity context when running inside a Temporal activity, undefined when a stage is called directly (CLI, bench). */
export function currentActivity(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}
