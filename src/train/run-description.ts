/**
 * The run description file: what to train, as a versioned JSON file that the page and the runner
 * both read. Presets (`src/presets/*.json`) are files in this format; the page's preset picker
 * applies one to the settings form and `train --preset NAME` trains it (docs/runner.md, "Presets").
 *
 *   {
 *     "version": 1,
 *     "name": "default",
 *     "summary": "one line: what a run of it shows",
 *     "backbone": "demo",
 *     "data": "demo",
 *     "settings": { every RunSettings field from "mode" to "seed", under the form's names }
 *   }
 *
 * Every training field is required: a description means the same run whatever the defaults of the
 * version reading it. The run's bookkeeping (checkpoint interval, fault limit, routing window) is
 * not part of it: it changes how a run is watched, not what it trains.
 *
 * Reading checks the version first (a file from a newer version is refused, never half-read), then
 * every field, and names the first one that is wrong. Files of older versions go through
 * `migrate`, the one place that knows them (version 1 is the first: there is nothing to migrate yet).
 */
import { LBC_DIRECTIONS, LBC_IMPORTANCES } from '../method/adapter';
import { PROJECTIONS } from '../method/shapes';
import type { TrainedSettings } from './run-settings';
import { parseJson } from '../util/errors';

export const RUN_DESCRIPTION_VERSION = 1;

/** The backbones and datasets a description can name. `demo`: the ones that ship with the app. */
export const DESCRIPTION_SOURCES = ['demo'] as const;
export type DescriptionSource = (typeof DESCRIPTION_SOURCES)[number];

export interface RunDescription {
  version: typeof RUN_DESCRIPTION_VERSION;
  /** Short identifier (the preset's file name without `.json`). */
  name: string;
  /** One line on what a run of it shows. */
  summary: string;
  backbone: DescriptionSource;
  data: DescriptionSource;
  settings: TrainedSettings;
}

type FieldCheck = (v: unknown) => string | null;

const positiveInt: FieldCheck = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 1 ? null : 'a whole number of at least 1');
const nonNegativeInt: FieldCheck = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? null : 'a whole number of at least 0');
const positive: FieldCheck = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : 'a number above 0');
const nonNegative: FieldCheck = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : 'a number of at least 0');
const fraction: FieldCheck = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < 1 ? null : 'a number from 0 up to (not including) 1');
const oneOf = (options: readonly string[]): FieldCheck => (v) => (typeof v === 'string' && options.includes(v) ? null : `one of ${options.map((o) => `"${o}"`).join(', ')}`);
const text: FieldCheck = (v) => (typeof v === 'string' ? null : 'a string');
const targets: FieldCheck = (v) =>
  Array.isArray(v) && v.length > 0 && v.every((p) => (PROJECTIONS as readonly unknown[]).includes(p)) && new Set(v).size === v.length
    ? null
    : `a non-empty list of distinct projections from ${PROJECTIONS.join(', ')}`;

/** Every field of `settings` with its check, in the order the file lists them. */
const SETTINGS_FIELDS: { [K in keyof TrainedSettings]-?: FieldCheck } = {
  mode: oneOf(['loramoe', 'lora', 'full']),
  experts: positiveInt,
  rank: positiveInt,
  alpha: positive,
  dropout: fraction,
  targets,
  lbcDelta: fraction,
  lbcBeta: nonNegative,
  lbcDirection: oneOf(LBC_DIRECTIONS),
  lbcImportance: oneOf(LBC_IMPORTANCES),
  groups: text,
  lr: positive,
  schedule: oneOf(['cosine', 'constant']),
  warmup: fraction,
  weightDecay: nonNegative,
  batch: positiveInt,
  accum: positiveInt,
  maxLength: (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 4 ? null : 'a whole number of at least 4'),
  steps: positiveInt,
  clip: nonNegative,
  seed: nonNegativeInt,
};

const TOP_FIELDS = ['version', 'name', 'summary', 'backbone', 'data', 'settings'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Brings a description of an older version up to the current one. The only place that knows the
 * older formats; version 1 is the first, so today it checks the version and returns the file.
 */
function migrate(raw: Record<string, unknown>, source: string): Record<string, unknown> {
  const v = raw.version;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`${source}: "version" must be a whole number of at least 1, got ${JSON.stringify(v)}`);
  if (v > RUN_DESCRIPTION_VERSION) {
    throw new Error(`${source}: written by a newer version of the playground (run description version ${v}; this one reads up to ${RUN_DESCRIPTION_VERSION}): update the playground to read it`);
  }
  return raw;
}

/**
 * Reads a run description from JSON text. `source` names the file in every error ("src/presets/x.json:
 * settings.lr must be a number above 0, got -1").
 */
export function parseRunDescription(json: string, source: string): RunDescription {
  const raw = parseJson(json, (m) => `${source}: not valid JSON (${m})`);
  if (!isObject(raw)) throw new Error(`${source}: expected a JSON object with ${TOP_FIELDS.join(', ')}`);
  const d = migrate(raw, source);
  const bad = (field: string, expected: string, got: unknown) => new Error(`${source}: ${field} must be ${expected}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`);
  for (const k of Object.keys(d)) if (!(TOP_FIELDS as readonly string[]).includes(k)) throw new Error(`${source}: unknown field "${k}" (a run description has ${TOP_FIELDS.join(', ')})`);
  if (typeof d.name !== 'string' || !/^[a-z0-9][a-z0-9-]*$/.test(d.name)) throw bad('name', 'lower-case letters, digits and dashes', d.name);
  if (typeof d.summary !== 'string' || d.summary.trim() === '') throw bad('summary', 'a non-empty line', d.summary);
  for (const k of ['backbone', 'data'] as const) {
    if (!(DESCRIPTION_SOURCES as readonly unknown[]).includes(d[k])) throw bad(k, DESCRIPTION_SOURCES.map((s) => `"${s}"`).join(' or '), d[k]);
  }
  if (!isObject(d.settings)) throw bad('settings', 'an object', d.settings);
  const s = d.settings;
  for (const k of Object.keys(s)) if (!(k in SETTINGS_FIELDS)) throw new Error(`${source}: unknown field "settings.${k}"`);
  for (const [k, check] of Object.entries(SETTINGS_FIELDS) as [keyof TrainedSettings, FieldCheck][]) {
    const problem = check(s[k]);
    if (problem) throw bad(`settings.${k}`, problem, s[k]);
  }
  return d as unknown as RunDescription;
}

/** The description as the file writes it: fields in a fixed order, one per line. */
export function formatRunDescription(d: RunDescription): string {
  const settings = Object.fromEntries(Object.keys(SETTINGS_FIELDS).map((k) => [k, d.settings[k as keyof TrainedSettings]]));
  return JSON.stringify({ version: d.version, name: d.name, summary: d.summary, backbone: d.backbone, data: d.data, settings }, null, 2) + '\n';
}
