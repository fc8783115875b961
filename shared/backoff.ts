/**
 * Delay before retry `attempt` (0-based): exponential, capped, with "equal jitter" so a
 * fleet that lost the gateway together does not reconnect together.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}
