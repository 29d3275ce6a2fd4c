/**
 * Wall time per stage as a user following the run sees it: a stage starts when the progress query first reports
 * it and ends when the next one is first reported (or the run ends). One-second polling resolution is enough for
 * stages that take minutes; stages the run skipped or passed between two polls get no time.
 */
export class StageClock {
  private readonly marks: { stage: string; at: number }[] = [];

  constructor(private readonly startedAt: number) {}

  see(stage: string, at: number): void {
    if (this.marks.at(-1)?.stage !== stage) this.marks.push({ stage, at });
  }

  /** Seconds per stage in the order they ran (a stage seen twice, e.g. after a pause, adds up). */
  durations(endedAt: number): { stage: string; seconds: number }[] {
    const totals = new Map<string, number>();
    this.marks.forEach((m, i) => {
      const end = this.marks[i + 1]?.at ?? endedAt;
      if (m.stage === 'done') return;
      totals.set(m.stage, (totals.get(m.stage) ?? 0) + (end - m.at) / 1000);
    });
    return [...totals].map(([stage, seconds]) => ({ stage, seconds }));
  }

  /** `stage times: prepare 2 s · generate 41 s · … · evaluate 300 s (55% of 545 s)`, the share for `focus`. */
  line(endedAt: number, focus = 'evaluate'): string {
    const d = this.durations(endedAt);
    const wall = (endedAt - this.startedAt) / 1000;
    const parts = d.map((s) => `${s.stage} ${s.seconds.toFixed(0)} s`).join(' · ');
    const f = d.find((s) => s.stage === focus);
    const share = f && wall > 0 ? ` (${focus} ${((100 * f.seconds) / wall).toFixed(0)}% of ${wall.toFixed(0)} s)` : '';
    return `stage times: ${parts}${share}`;
  }
}
