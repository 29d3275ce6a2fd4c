import { StageClock } from '../../cli/stage-clock';

describe('StageClock', () => {
  it('charges each stage from its first report to the next stage, and a stage seen again adds up', () => {
    const c = new StageClock(0);
    for (const [stage, at] of [
      ['prepare', 1000],
      ['generate', 3000],
      ['generate', 9000],
      ['verify', 13_000],
      ['generate', 14_000],
      ['verify', 15_000],
      ['evaluate', 20_000],
      ['done', 40_000],
    ] as const)
      c.see(stage, at);
    expect(c.durations(41_000)).toEqual([
      { stage: 'prepare', seconds: 2 },
      { stage: 'generate', seconds: 11 },
      { stage: 'verify', seconds: 6 },
      { stage: 'evaluate', seconds: 20 },
    ]);
    expect(c.line(41_000)).toBe(
      'stage times: prepare 2 s · generate 11 s · verify 6 s · evaluate 20 s (evaluate 49% of 41 s)',
    );
  });

  it('names no share for a run that never reached the stage', () => {
    const c = new StageClock(0);
    c.see('prepare', 0);
    expect(c.line(5000)).toBe('stage times: prepare 5 s');
  });
});
