/**
 * One limiter per teacher endpoint per worker process, shared by every shard that runs there: at most
 * `maxInFlight` requests at once, and optionally at most `requestsPerMinute` / `tokensPerMinute` over a sliding
 * minute. Shards ask it for a slot per request, so many shards together keep the endpoint saturated but not over.
 */
export interface EndpointLimits {
  maxInFlight: number;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

const WINDOW_MS = 60_000;

export class EndpointLimiter {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly requestTimes: number[] = [];
  private readonly tokenLog: { at: number; tokens: number }[] = [];
  peakInFlight = 0;

  constructor(public limits: EndpointLimits) {}

  /** Runs `fn` inside a slot; `fn` returns the tokens the request used, for the tokens-per-minute limit. */
  async run<T>(fn: () => Promise<T>, tokensOf: (result: T) => number): Promise<T> {
    await this.acquire();
    try {
      const result = await fn();
      if (this.limits.tokensPerMinute) this.tokenLog.push({ at: Date.now(), tokens: tokensOf(result) });
      return result;
    } finally {
      this.release();
    }
  }

  private async acquire(): Promise<void> {
    while (this.inFlight >= this.limits.maxInFlight) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight += 1;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    try {
      await this.waitForRate();
    } catch (err) {
      this.release();
      throw err;
    }
  }

  private release(): void {
    this.inFlight -= 1;
    this.waiting.shift()?.();
  }

  private async waitForRate(): Promise<void> {
    for (;;) {
      const now = Date.now();
      while (this.requestTimes.length && now - this.requestTimes[0]! >= WINDOW_MS) this.requestTimes.shift();
      while (this.tokenLog.length && now - this.tokenLog[0]!.at >= WINDOW_MS) this.tokenLog.shift();
      let waitMs = 0;
      const rpm = this.limits.requestsPerMinute;
      if (rpm && this.requestTimes.length >= rpm) waitMs = Math.max(waitMs, this.requestTimes[0]! + WINDOW_MS - now);
      const tpm = this.limits.tokensPerMinute;
      if (tpm) {
        let used = this.tokenLog.reduce((s, e) => s + e.tokens, 0);
        // Wait until enough of the window has expired to bring usage under the limit.
        for (const e of this.tokenLog) {
          if (used < tpm) break;
          used -= e.tokens;
          waitMs = Math.max(waitMs, e.at + WINDOW_MS - now);
        }
      }
      if (waitMs <= 0) {
        this.requestTimes.push(now);
        return;
      }
      await new Promise((r) => setTimeout(r, Math.min(waitMs, 1000)));
    }
  }
}

const limiters = new Map<string, EndpointLimiter>();

/** The process-wide limiter of an endpoint; the latest limits win (a run may change them while it runs). */
export function limiterFor(endpoint: string, limits: EndpointLimits): EndpointLimiter {
  let limiter = limiters.get(endpoint);
  if (!limiter) {
    limiter = new EndpointLimiter(limits);
    limiters.set(endpoint, limiter);
  } else limiter.limits = limits;
  return limiter;
}
