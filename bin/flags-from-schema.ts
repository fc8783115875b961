import { type Command, Option } from 'commander';
import { z } from 'zod';
import { envName, flagName } from '../shared/config.js';

/**
 * A command's flags made from its settings schema, so a setting is declared once: its key
 * names the flag (`bufferMaxBytes` → `--buffer-max-bytes`) and the environment variable,
 * its `.describe()` text is the help, its default is the one the help shows. Values stay
 * strings here: the schema parses flags, environment and config files alike (see `int`,
 * `bool` and `list` in shared/config.ts), so each source is read the same way and a bad
 * value is named by the flag it came from.
 */

/** What a setting takes, as far as a flag is concerned. */
type SettingValue =
  | { kind: 'boolean' }
  | { kind: 'number' }
  | { kind: 'string' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'list'; item: SettingValue }
  | { kind: 'nested' };

export interface SettingFlag {
  key: string;
  /** `--buffer-max-bytes <bytes>` */
  term: string;
  /** The help line: the description, the default, and for a secret its environment variable. */
  help: string;
  /** Neither optional nor defaulted: a command whose only source is its flags must be given it. */
  required: boolean;
}

/** Units a number's flag shows as its value; other numbers show `<n>`. */
const NUMBER_UNITS = new Set(['ms', 's', 'hz', 'bytes', 'port']);
/** Choices longer than this are listed in the help, not in the flag's value, to keep the help's columns narrow. */
const MAX_CHOICES_SHOWN = 24;

/** A schema's settings by key (zod types an object's shape loosely). */
export const settingsOf = (schema: z.ZodObject): [string, z.ZodType][] => Object.entries<z.ZodType>(schema.shape);

/** The flag of every setting not marked `flag: false`, in the schema's order. */
export function settingFlags(schema: z.ZodObject): SettingFlag[] {
  return settingsOf(schema)
    .filter(([, setting]) => metaOf(setting).flag !== false)
    .map(([key, setting]) => {
      const value = valueOf(setting);
      const meta = metaOf(setting);
      if (value.kind === 'nested') throw new Error(`setting ${key} is nested: mark it flag: false and say why`);
      if (!meta.description) throw new Error(`setting ${key} has no description for its flag's help`);
      const term = `${flagName(key)} ${placeholder(key, value, meta.arg)}`;
      const choices = choicesOf(value);
      const unset = setting.safeParse(undefined);
      const shown = meta.defaultText ?? shownDefault(unset.data);
      const help = [
        meta.description,
        choices && !term.includes(choices.join('|')) ? ` (${value.kind === 'list' ? 'each ' : ''}one of ${choices.join(', ')})` : '',
        shown === undefined ? '' : ` (default: ${shown})`,
        meta.secret ? ` (prefer ${envName(key)})` : '',
      ].join('');
      return { key, term, help, required: !unset.success };
    });
}

/** Settings that are deliberately not flags (see `flag: false` where each is declared). */
export function flaglessSettings(schema: z.ZodObject): string[] {
  return settingsOf(schema)
    .filter(([, setting]) => metaOf(setting).flag === false)
    .map(([key]) => key);
}

/**
 * Adds a flag for each setting. With `mandatory`, for commands whose flags are their only
 * source, a required setting's flag must be given (commander says so before anything runs).
 */
export function addSettingFlags(cmd: Command, schema: z.ZodObject, { mandatory = false } = {}): Command {
  for (const flag of settingFlags(schema)) {
    const option = new Option(flag.term, flag.help);
    // commander's name for the parsed value must be the setting's, or the value would not reach it.
    if (option.attributeName() !== flag.key) throw new Error(`flag ${flag.term} would set ${option.attributeName()}, not ${flag.key}`);
    if (mandatory && flag.required) option.makeOptionMandatory();
    cmd.addOption(option);
  }
  return cmd;
}

/** The schema around a setting's value: defaults, optional, and preprocessing that turns strings into the value. */
function layersOf(setting: z.ZodType): z.ZodType[] {
  const layers = [setting];
  for (;;) {
    const s = layers.at(-1)!;
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) layers.push(s.unwrap() as z.ZodType);
    else if (s instanceof z.ZodPipe) layers.push(s.out as z.ZodType);
    else return layers;
  }
}

/** Metadata may sit on any layer (`.describe()` before or after `.default()`); the outer one wins. */
function metaOf(setting: z.ZodType): z.GlobalMeta {
  return Object.assign(
    {},
    ...layersOf(setting)
      .reverse()
      .map((s) => s.meta() ?? {}),
  ) as z.GlobalMeta;
}

function valueOf(setting: z.ZodType): SettingValue {
  const s = layersOf(setting).at(-1)!;
  if (s instanceof z.ZodBoolean) return { kind: 'boolean' };
  if (s instanceof z.ZodNumber) return { kind: 'number' };
  if (s instanceof z.ZodString || s instanceof z.ZodLiteral) return { kind: 'string' };
  if (s instanceof z.ZodEnum) return { kind: 'enum', values: s.options.map(String) };
  // `a URL, or '' for none` and the like: a flag takes what the first alternative takes.
  if (s instanceof z.ZodUnion) return valueOf(s.options[0] as z.ZodType);
  if (s instanceof z.ZodArray) {
    const item = valueOf(s.element as z.ZodType);
    return item.kind === 'nested' || item.kind === 'list' ? { kind: 'nested' } : { kind: 'list', item };
  }
  if (s instanceof z.ZodObject) return { kind: 'nested' };
  throw new Error(`no flag for a ${s.type} setting`);
}

/** The values an enum, or each item of a list, may take. */
function choicesOf(value: SettingValue): readonly string[] | undefined {
  if (value.kind === 'enum') return value.values;
  return value.kind === 'list' ? choicesOf(value.item) : undefined;
}

/**
 * What the flag's value looks like in the help: `[true|false]` (a bare `--compress` means
 * true), `<FULL|NORMAL>`, `<broker,...>`, a number's unit, or a string's last word
 * (`mqttUrl` → `<url>`), unless the setting names it (`arg`).
 */
function placeholder(key: string, value: SettingValue, arg?: string): string {
  if (value.kind === 'boolean') return '[true|false]';
  return `<${arg ?? valueText(key, value)}>`;
}

function valueText(key: string, value: SettingValue): string {
  const word = key
    .split(/(?=[A-Z])/)
    .at(-1)!
    .toLowerCase();
  switch (value.kind) {
    case 'enum':
      return value.values.join('|').length <= MAX_CHOICES_SHOWN ? value.values.join('|') : word;
    case 'list':
      return `${valueText(word.replace(/s$/, ''), value.item)},...`;
    case 'number':
      return NUMBER_UNITS.has(word) ? word : 'n';
    default:
      return word;
  }
}

/** A default as a user would type it; none for an empty value (nothing is set). */
function shownDefault(value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.join(',');
  return `${value as string | number | boolean}`;
}
