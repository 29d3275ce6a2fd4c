import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { RunSpec } from '../schemas/run-spec';
import { createSchedule, describeForHumans, listSchedules, overlapPolicy, type OverlapName } from './schedules';

const collect = (v: string, prev: string[]) => [...prev, v];

/** `distill schedule create|list|describe|pause|unpause|trigger|backfill|delete`. */
export function registerScheduleCommand(
  program: Command,
  deps: {
    defaultAddress: string;
    connectClient: (address: string) => Promise<Client>;
    loadSpec: (file: string, o: { teacherUrl?: string }) => RunSpec;
  },
): void {
  const schedule = program
    .command('schedule')
    .description('nightly distillations on Temporal schedules (incremental over unseen prompts)');
  const withClient = async (address: string, fn: (client: Client) => Promise<void>) => {
    const client = await deps.connectClient(address);
    try {
      await fn(client);
    } finally {
      await client.connection.close();
    }
  };

  schedule
    .command('create <spec>')
    .description(
      'create a schedule that runs the spec (incremental: only prompts earlier successful runs have not seen)',
    )
    .option('--address <host:port>', 'Temporal frontend', deps.defaultAddress)
    .option('--id <scheduleId>', 'schedule id and lineage name (default: the spec name)')
    .option('--cron <expr>', 'cron expression in UTC, e.g. "0 2 * * *" (repeatable)', collect, [])
    .option('--every <interval>', 'fixed interval, e.g. 6h (repeatable)', collect, [])
    .option('--overlap <policy>', 'skip | buffer_one | buffer_all | cancel_other | terminate_other | allow_all', 'skip')
    .option('--catchup-window <duration>', 'how late a missed run may still start after an outage, e.g. 1h')
    .option('--paused', 'create it paused')
    .option('--note <text>', 'a note shown with the schedule')
    .option('--no-incremental', 'every run takes the whole dataset')
    .option('--teacher-url <url>', 'override teacher.baseURL')
    .action(
      async (
        file: string,
        o: {
          address: string;
          id?: string;
          cron: string[];
          every: string[];
          overlap: string;
          catchupWindow?: string;
          paused?: boolean;
          note?: string;
          incremental: boolean;
          teacherUrl?: string;
        },
      ) => {
        overlapPolicy(o.overlap);
        const spec = deps.loadSpec(file, o);
        await withClient(o.address, async (client) => {
          const r = await createSchedule(client, spec, {
            scheduleId: o.id,
            cron: o.cron,
            every: o.every,
            overlap: o.overlap as OverlapName,
            catchupWindow: o.catchupWindow,
            paused: o.paused,
            note: o.note,
            incremental: o.incremental,
          });
          console.log(JSON.stringify({ created: r.scheduleId, incremental: r.spec.incremental }, null, 2));
        });
      },
    );

  schedule
    .command('list')
    .description('list distillation schedules')
    .option('--address <host:port>', 'Temporal frontend', deps.defaultAddress)
    .action(async (o: { address: string }) =>
      withClient(o.address, async (client) => {
        const all = await listSchedules(client);
        console.log(
          JSON.stringify(
            all.map((s) => ({
              scheduleId: s.scheduleId,
              paused: s.state.paused,
              note: s.state.note ?? null,
              next: s.info.nextActionTimes[0] ?? null,
              recent: s.info.recentActions.at(-1)?.action.workflow.workflowId ?? null,
            })),
            null,
            2,
          ),
        );
      }),
    );

  schedule
    .command('describe <scheduleId>')
    .option('--address <host:port>', 'Temporal frontend', deps.defaultAddress)
    .action(async (id: string, o: { address: string }) =>
      withClient(o.address, async (client) =>
        console.log(JSON.stringify(describeForHumans(await client.schedule.getHandle(id).describe()), null, 2)),
      ),
    );

  const simple = (
    name: string,
    description: string,
    act: (h: ReturnType<Client['schedule']['getHandle']>, note?: string) => Promise<void>,
  ) =>
    schedule
      .command(`${name} <scheduleId>`)
      .description(description)
      .option('--address <host:port>', 'Temporal frontend', deps.defaultAddress)
      .option('--note <text>', 'why (kept with the schedule)')
      .action(async (id: string, o: { address: string; note?: string }) =>
        withClient(o.address, async (client) => {
          await act(client.schedule.getHandle(id), o.note);
          console.error(`${name}: ${id}`);
        }),
      );
  simple('pause', 'stop starting runs (running ones go on)', (h, note) => h.pause(note));
  simple('unpause', 'start runs again', (h, note) => h.unpause(note));
  simple('delete', 'delete the schedule (runs it started are not touched)', (h) => h.delete());

  schedule
    .command('trigger <scheduleId>')
    .description('start a run now')
    .option('--address <host:port>', 'Temporal frontend', deps.defaultAddress)
    .option('--overlap <policy>', 'overlap policy for this run (default: allow_all)')
    .action(async (id: string, o: { address: string; overlap?: string }) =>
      withClient(o.address, async (client) => {
        await client.schedule.getHandle(id).trigger(o.overlap ? overlapPolicy(o.overlap) : undefined);
        console.error(`triggered ${id}`);
      }),
    );

  schedule
    .command('backfill <scheduleId>')
    .description('take the runs the schedule would have started between two times')
    .requiredOption('--start <iso>', 'start of the range (ISO 8601)')
    .requiredOption('--end <iso>', 'end of the range (ISO 8601)')
    .option('--overlap <policy>', 'overlap policy for the backfilled runs', 'buffer_all')
    .option('--address <host:port>', 'Temporal frontend', deps.defaultAddress)
    .action(async (id: string, o: { address: string; start: string; end: string; overlap: string }) => {
      const start = new Date(o.start);
      const end = new Date(o.end);
      if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start)
        throw new Error('--start and --end must be ISO times with start < end');
      await withClient(o.address, async (client) => {
        await client.schedule.getHandle(id).backfill({ start, end, overlap: overlapPolicy(o.overlap) });
        console.error(`backfilled ${id} from ${start.toISOString()} to ${end.toISOString()}`);
      });
    });
}
