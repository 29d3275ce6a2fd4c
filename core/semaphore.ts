/** At most `limit` holders at once; the rest wait in arrival order. Peaks are kept for the servers' stats. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  peakActive = 0;
  peakWaiting = 0;
  constructor(private readonly limit: number) {}
  async acquire(): Promise<void> {
    if (this.active >= this.limit) {
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        this.peakWaiting = Math.max(this.peakWaiting, this.waiting.length);
      });
    } else {
      this.active++;
    }
    this.peakActive = Math.max(this.peakActive, this.active);
  }
  release(): void {
    const next = this.waiting.shift();
    if (next)
      next(); // slot handed over; active unchanged
    else this.active--;
  }
}
