import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temp directory for one test file's inputs, removed by `cleanup`. */
export function tempFiles(): { write(name: string, content: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-replay-'));
  return {
    write(name, content) {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Minute-aligned, so windows of 10 s and 60 s both start on whole seconds of the test data. */
export const BASE = Date.UTC(2024, 2, 1, 8, 0, 0);

/** One `ts,value` line per second from `BASE + fromS`, value given by `at(second)`. */
export function seconds(fromS: number, toS: number, at: (s: number) => number, ts = (s: number) => String(BASE + s * 1000)): string[] {
  const lines: string[] = [];
  for (let s = fromS; s < toS; s++) lines.push(`${ts(s)},${at(s)}`);
  return lines;
}
