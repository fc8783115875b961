import { parentPort, workerData } from 'node:worker_threads';
import type { RuleSet } from '../../shared/rules/rule-set.js';
import { scoreDay, type DaySpec } from './score-day.js';

/** Scores the days it is given, one message per day, so the parent can show progress. */
const { days, rules } = workerData as { days: DaySpec[]; rules: RuleSet };
for (const spec of days) parentPort!.postMessage(scoreDay(spec, rules));
