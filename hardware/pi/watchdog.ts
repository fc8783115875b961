import { execFile } from 'node:child_process';
import type { Logger } from '../../shared/log.js';

export interface Watchdog {
  stop(): Promise<void>;
}

/**
 * Tells systemd the agent is up and still alive, for fleet-agent.service's Type=notify
 * and WatchdogSec=: READY=1 once, then WATCHDOG=1 every WATCHDOG_USEC/2. A no-op unless
 * systemd started the process with NOTIFY_SOCKET set.
 *
 * The pings come from a timer on the main event loop, so they stop when the loop is
 * blocked or starved (a stuck SQLite call, a busy loop): systemd then kills and restarts
 * the agent, and the buffer, committed before anything else, loses nothing.
 *
 * They are sent by running the `systemd-notify` binary because the notify socket is a
 * unix *datagram* socket and Node has none (`dgram` is UDP only, `net` is streams); a
 * native addon for it would be one more thing to build on each Pi. An exec every 15 s
 * costs nothing. systemd-notify waits for systemd to have processed each message (its
 * BARRIER=1 handshake), so the message is attributed to this service even though its
 * sender exits right after; NotifyAccess=all in the unit lets that child speak for it.
 */
export function startWatchdog(log: Pick<Logger, 'info' | 'error'>, env: NodeJS.ProcessEnv = process.env): Watchdog {
  if (!env.NOTIFY_SOCKET) return { stop: async () => {} };

  let sending = false;
  const notify = (state: string, timeoutMs: number) => {
    // A ping still waiting for systemd is enough: do not pile up processes behind it.
    if (sending) return;
    sending = true;
    execFile('systemd-notify', [state], { env, timeout: timeoutMs }, (err, _stdout, stderr) => {
      sending = false;
      if (err) log.error({ err: err.message, stderr: stderr.trim() }, `systemd-notify ${state} failed`);
    });
  };

  const usec = Number(env.WATCHDOG_USEC);
  // WATCHDOG_PID names the process systemd expects the pings from; another process's value is not ours.
  const forUs = env.WATCHDOG_PID === undefined || env.WATCHDOG_PID === String(process.pid);
  const everyMs = Number.isFinite(usec) && usec > 0 && forUs ? Math.max(1, Math.floor(usec / 2000)) : undefined;

  notify('READY=1', everyMs ?? 10_000);
  if (everyMs === undefined) return { stop: async () => {} };
  log.info({ everyMs }, 'systemd watchdog pings started');
  const timer = setInterval(() => notify('WATCHDOG=1', everyMs), everyMs);
  // The pings must never be what keeps a finished agent running.
  timer.unref();
  return { stop: async () => clearInterval(timer) };
}
