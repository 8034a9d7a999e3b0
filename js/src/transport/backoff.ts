// Reconnect delays shared by the transports: exponential from 250 ms, capped at 10 s, with
// jitter so many tabs reconnecting to a restarted server do not arrive together.

export const BACKOFF_INITIAL_MS = 250;
export const BACKOFF_MAX_MS = 10_000;

/** The delay before reconnect attempt `attempt` (1-based), in milliseconds. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.75 + 0.5 * random()));
}
