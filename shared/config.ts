import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** A configuration problem, reported as `source: field: what is wrong` and exit code 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

declare module 'zod' {
  /**
   * What a setting's schema says beyond its type and `.describe()` text, for the flags and
   * help made from it (bin/flags-from-schema.ts).
   */
  interface GlobalMeta {
    /** The value's name in the help where the key's last word does not say it: `--rules <file>`. */
    arg?: string;
    /** The default as help shows it, where the schema cannot hold it (it is worked out at run time). */
    defaultText?: string;
    /** A secret: its help points to the environment variable, which stays out of shell history and `ps`. */
    secret?: boolean;
    /** Not a command-line flag (config file, or environment, only); say why in a comment beside it. */
    flag?: false;
  }
}

/** Environment and flags arrive as strings: these accept both the string and the typed form. */
export const num = () => z.coerce.number<unknown>().refine(Number.isFinite, 'expected a finite number');
export const int = () => z.coerce.number<unknown>().int('expected a whole number');
export const bool = () => z.preprocess((v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v), z.boolean());

/** A list from a comma-separated flag or variable, or from a JSON array. */
export const list = <T extends z.ZodType>(item: T, min = 0) =>
  z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : v,
    z.array(item).min(min),
  );

export interface ConfigSources {
  /** Path of a JSON config file (optional). */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Parsed command-line options; undefined values are ignored. */
  flags?: Record<string, unknown>;
}

/**
 * Merges defaults ← file ← environment (FLEET_<FIELD>) ← flags and validates the result
 * against the command's schema. Any bad field is named with where it came from.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, sources: ConfigSources): z.infer<S> {
  const fromFile = sources.file ? readConfigFile(sources.file) : {};
  const fromEnv: Record<string, unknown> = {};
  const env = sources.env ?? {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[envName(key)];
    if (value !== undefined && value !== '') fromEnv[key] = value;
  }
  const fromFlags = Object.fromEntries(Object.entries(sources.flags ?? {}).filter(([, v]) => v !== undefined));
  const merged = { ...fromFile, ...fromEnv, ...fromFlags };
  const result = schema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.flatMap((issue) => {
      // Zod reports unknown keys at their parent (the top level for a setting): name each
      // key as the field, so its source (file or flag) is found like any other's.
      const unknown = issue.code === 'unrecognized_keys';
      const paths = unknown ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
      return paths.map((path) => {
        const field = fieldPath(path) || '(top level)';
        const key = String(path[0] ?? '');
        // Own keys only: `in` also finds Object.prototype's, which blamed a file's unknown
        // `constructor` or `toString` on a flag of that name (found by fuzzing).
        const has = (o: object) => Object.hasOwn(o, key);
        const origin = has(fromFlags)
          ? `flag --${kebab(key)}`
          : has(fromEnv)
            ? `env ${envName(key)}`
            : sources.file && has(fromFile)
              ? sources.file
              : 'config';
        return `${origin}: ${field}: ${unknown ? 'unknown setting' : plain(issue.message)}`;
      });
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}

/** A file a setting names (a certificate, a key): a missing one is a configuration error naming the setting. */
export function readSettingFile(setting: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${setting}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON: ${(err as Error).message}`);
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  const doc = readJsonFile(path);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ConfigError(`${path}: must hold a JSON object of settings`);
  }
  return doc as Record<string, unknown>;
}

/** Validates a data file (rules, ...) against a schema, naming the file and the field. */
export function parseFile<S extends z.ZodType>(schema: S, path: string): z.infer<S> {
  const result = schema.safeParse(readJsonFile(path));
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${path}: ${fieldPath(i.path) || '(top level)'}: ${plain(i.message)}`);
    throw new ConfigError(lines.join('\n'));
  }
  return result.data;
}

export const envName = (key: string) => `FLEET_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
/** The command-line flag that sets a setting: `opsPort` → `--ops-port`. */
export const flagName = (key: string) => `--${kebab(key)}`;

/** `rules[0].above`: how a user finds the field in their JSON. */
function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/** Zod's "Invalid input: expected number, …" prefix adds nothing once the field is named. */
export function plain(message: string): string {
  return message.replace(/^[A-Za-z ]+: (?=expected)/, '');
}
