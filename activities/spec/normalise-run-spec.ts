import { checkRunSpec, type SpecCheck } from '../../schemas/run-spec';

/**
 * The run spec parsed once, with the schema's defaults of the day the run started. The workflow calls it as a local
 * activity, so its answer (the normalised spec, or every bad field) is recorded in the run's history: a replay, or a
 * worker restarted on newer code, reads the recorded spec instead of parsing the raw input again with today's
 * defaults, which could change the commands a running workflow issues.
 */
export async function normaliseRunSpec(input: unknown): Promise<SpecCheck> {
  return checkRunSpec(input);
}
