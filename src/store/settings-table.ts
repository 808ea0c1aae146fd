/**
 * The playground's settings as one typed table. Each entry names its URL parameter, its default,
 * a one-line explanation for the UI, and how to parse and serialise a value; the URL parser, the
 * URL serialiser, the settings store and the settings form all read this table, so a setting is
 * added in one place (the tensorflow/playground pattern: the whole state in the link, seed
 * included, so a link reproduces a run).
 *
 * Defaults: what trains and how, the default preset's (src/presets/default.json: the settings
 * that show the method on the demo in about a minute; docs/runner.md, "Presets", says why they
 * work); the help texts name the official LoRAMoE script's values, which the "official" preset holds
 * (delta and beta 0.1: the paper's values are not in the repository, see docs/method.md).
 */
import { PROJECTIONS, type Projection } from '../method/shapes';
import { LBC_DIRECTIONS, LBC_IMPORTANCES, type LbcDirection, type LbcImportance } from '../method/adapter';
import { DEFAULT_PRESET } from '../train/presets';
import { DEFAULT_FAULT_LIMIT } from '../run/faults';
import { WEIGHT_SETTINGS, type WeightSetting } from '../model/tensor-plan';
import { errorMessage } from '../util/errors';

export type TrainMode = 'loramoe' | 'lora' | 'full';
export type Section = 'adapter' | 'training' | 'run' | 'chat' | 'model';

interface DefBase<T> {
  /** URL query parameter. */
  url: string;
  label: string;
  /** One line for the form. */
  help: string;
  section: Section;
  default: T;
  /** Parses a URL or form value; throws an Error whose message says what is expected. */
  parse(raw: string): T;
  format(v: T): string;
}

export interface NumberDef extends DefBase<number> {
  kind: 'int' | 'float';
  min: number;
  max: number;
  /** True when min itself is not allowed (e.g. a learning rate must be > 0). */
  minExclusive?: boolean;
  /** True when max itself is not allowed (e.g. dropout < 1). */
  maxExclusive?: boolean;
  /** Suggested step of the form's input (0: any). */
  step: number;
}

export interface ChoiceDef<T extends string> extends DefBase<T> {
  kind: 'choice';
  options: readonly T[];
}

export interface ListDef<T extends string> extends DefBase<T[]> {
  kind: 'list';
  options: readonly T[];
}

export interface TextDef extends DefBase<string> {
  kind: 'text';
  maxLength: number;
}

export type SettingDef = NumberDef | ChoiceDef<string> | ListDef<string> | TextDef;

function rangeText(d: Pick<NumberDef, 'min' | 'max' | 'minExclusive' | 'maxExclusive' | 'kind'>): string {
  const lo = `${d.minExclusive ? '>' : '>='} ${d.min}`;
  const hi = d.max === Number.MAX_SAFE_INTEGER || d.max === Infinity ? '' : ` and ${d.maxExclusive ? '<' : '<='} ${d.max}`;
  return `${d.kind === 'int' ? 'an integer' : 'a number'} ${lo}${hi}`;
}

function numberDef(kind: 'int' | 'float', o: Omit<NumberDef, 'kind' | 'parse' | 'format' | 'step'> & { step?: number }): NumberDef {
  const def: NumberDef = {
    ...o,
    kind,
    step: o.step ?? (kind === 'int' ? 1 : 0),
    parse(raw: string): number {
      const s = raw.trim();
      // Number('') is 0 and Number('0x10') is 16: only plain decimal notation is accepted.
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw new Error(`"${raw}" is not a number; expected ${rangeText(def)}`);
      const v = Number(s);
      if (!Number.isFinite(v)) throw new Error(`"${raw}" is not a finite number`);
      if (kind === 'int' && !Number.isSafeInteger(v)) throw new Error(`"${raw}" is not an integer; expected ${rangeText(def)}`);
      const below = def.minExclusive ? v <= def.min : v < def.min;
      const above = def.maxExclusive ? v >= def.max : v > def.max;
      if (below || above) throw new Error(`${raw} is out of range; expected ${rangeText(def)}`);
      return v;
    },
    format: (v: number) => String(v),
  };
  return def;
}

const int = (o: Omit<NumberDef, 'kind' | 'parse' | 'format' | 'step'> & { step?: number }) => numberDef('int', o);
const float = (o: Omit<NumberDef, 'kind' | 'parse' | 'format' | 'step'> & { step?: number }) => numberDef('float', o);

function choice<T extends string>(o: Omit<ChoiceDef<T>, 'kind' | 'parse' | 'format'>): ChoiceDef<T> {
  return {
    ...o,
    kind: 'choice',
    parse(raw: string): T {
      const s = raw.trim();
      if (!(o.options as readonly string[]).includes(s)) throw new Error(`"${raw}" is not one of ${o.options.join(', ')}`);
      return s as T;
    },
    format: (v: T) => v,
  };
}

function list<T extends string>(o: Omit<ListDef<T>, 'kind' | 'parse' | 'format'>): ListDef<T> {
  return {
    ...o,
    kind: 'list',
    parse(raw: string): T[] {
      const items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      if (items.length === 0) throw new Error(`"${raw}" names nothing; expected a comma-separated list of ${o.options.join(', ')}`);
      const bad = items.filter((s) => !(o.options as readonly string[]).includes(s));
      if (bad.length > 0) throw new Error(`${bad.map((b) => `"${b}"`).join(', ')} not known; expected some of ${o.options.join(', ')}`);
      // Canonical order (the options' order), no duplicates.
      return o.options.filter((opt) => items.includes(opt));
    },
    format: (v: T[]) => v.join(','),
  };
}

function text(o: Omit<TextDef, 'kind' | 'parse' | 'format'>): TextDef {
  return {
    ...o,
    kind: 'text',
    parse(raw: string): string {
      if (raw.length > o.maxLength) throw new Error(`longer than ${o.maxLength} characters`);
      return raw;
    },
    format: (v: string) => v,
  };
}

/**
 * The defaults of what trains and how are the default preset's (src/presets/default.json), so the
 * page's first Train click trains that preset, as `train --preset default` does. The help texts
 * name the official LoRAMoE script's values, which the "official" preset holds.
 */
const DEFAULT_RUN = DEFAULT_PRESET.settings;

/** Every setting, in form order. */
export const SETTINGS = {
  // ---- what trains ---------------------------------------------------------------------------------
  mode: choice<TrainMode>({
    url: 'mode', label: 'Mode', section: 'adapter', default: DEFAULT_RUN.mode, options: ['loramoe', 'lora', 'full'],
    help: 'LoRAMoE (mixture of LoRA experts), plain LoRA (one expert, no router), or full fine-tuning of every weight.',
  }),
  experts: int({
    url: 'experts', label: 'Experts (N)', section: 'adapter', default: DEFAULT_RUN.experts, min: 1, max: 64,
    help: 'LoRA experts per adapted projection (official lora_nums 8); the official grouping needs an even number.',
  }),
  rank: int({ url: 'rank', label: 'Rank (r)', section: 'adapter', default: DEFAULT_RUN.rank, min: 1, max: 256, help: 'Rank of each expert: A is r x in, B is out x r (official 4).' }),
  alpha: float({ url: 'alpha', label: 'Alpha', section: 'adapter', default: DEFAULT_RUN.alpha, min: 0, minExclusive: true, max: 1e6, help: 'Scale of the expert sum is alpha / r (official 32, so 8 at rank 4).' }),
  dropout: float({ url: 'dropout', label: 'Dropout', section: 'adapter', default: DEFAULT_RUN.dropout, min: 0, max: 1, maxExclusive: true, step: 0.01, help: "Dropout on each expert's input; the router sees the undropped input (official 0.05)." }),
  targets: list<Projection>({
    url: 'targets', label: 'Target projections', section: 'adapter', default: [...DEFAULT_RUN.targets], options: PROJECTIONS,
    help: 'Projections that get experts; the official code adapts the feed-forward three, attention stays plain.',
  }),
  lbcDelta: float({ url: 'delta', label: 'LBC delta', section: 'adapter', default: DEFAULT_RUN.lbcDelta, min: 0, max: 1, maxExclusive: true, step: 0.01, help: "Importance boost: x(1+delta) inside a sample's expert group, x(1-delta) outside (blc_alpha)." }),
  lbcBeta: float({ url: 'beta', label: 'LBC beta', section: 'adapter', default: DEFAULT_RUN.lbcBeta, min: 0, max: 1e3, step: 0.01, help: 'Weight of the balancing constraint of each adapted layer in the loss (blc_weight).' }),
  lbcDirection: choice<LbcDirection>({
    url: 'lbcdir', label: 'LBC direction', section: 'adapter', default: DEFAULT_RUN.lbcDirection, options: LBC_DIRECTIONS,
    help: "official: as released, pushes each sample's weight away from its own group ((1-delta)/2 with two groups); own-group: sign flipped, toward it ((1+delta)/2).",
  }),
  lbcImportance: choice<LbcImportance>({
    url: 'lbcimp', label: 'LBC importance', section: 'adapter', default: DEFAULT_RUN.lbcImportance, options: LBC_IMPORTANCES,
    help: "mean: a sample's router weights averaged over its tokens, so every sample counts alike; sum: summed, so lengths shift where the constraint pushes.",
  }),
  groups: text({
    url: 'groups', label: 'Expert groups', section: 'adapter', default: DEFAULT_RUN.groups, maxLength: 2000,
    help: 'Data type to experts, e.g. "world knowledge=0-3; *=4-7". Empty: the official binary grouping.',
  }),
  // ---- how it trains -------------------------------------------------------------------------------
  lr: float({ url: 'lr', label: 'Learning rate', section: 'training', default: DEFAULT_RUN.lr, min: 0, minExclusive: true, max: 10, step: 1e-4, help: 'Peak learning rate of AdamW (official 2e-4).' }),
  schedule: choice<'cosine' | 'constant'>({ url: 'schedule', label: 'Schedule', section: 'training', default: DEFAULT_RUN.schedule, options: ['cosine', 'constant'], help: 'Cosine decay to 0 after linear warmup (official), or a constant rate.' }),
  warmup: float({ url: 'warmup', label: 'Warmup ratio', section: 'training', default: DEFAULT_RUN.warmup, min: 0, max: 1, maxExclusive: true, step: 0.01, help: 'Fraction of the steps spent warming the rate up from 0 (official 0.03).' }),
  weightDecay: float({ url: 'wd', label: 'Weight decay', section: 'training', default: DEFAULT_RUN.weightDecay, min: 0, max: 10, step: 0.01, help: 'Decoupled AdamW weight decay (official 0).' }),
  batch: int({ url: 'batch', label: 'Batch size', section: 'training', default: DEFAULT_RUN.batch, min: 1, max: 512, help: 'Samples per micro-batch; the logits tensor is batch x length x vocabulary.' }),
  accum: int({ url: 'accum', label: 'Accumulation', section: 'training', default: DEFAULT_RUN.accum, min: 1, max: 256, help: 'Micro-batches per optimizer step (gradient accumulation).' }),
  maxLength: int({ url: 'maxlen', label: 'Maximum length', section: 'training', default: DEFAULT_RUN.maxLength, min: 4, max: 2048, help: 'Tokens per sample; longer samples are cut, batches are padded to the longest sample.' }),
  steps: int({ url: 'steps', label: 'Steps', section: 'training', default: DEFAULT_RUN.steps, min: 1, max: 1_000_000, help: 'Optimizer steps of the run.' }),
  clip: float({ url: 'clip', label: 'Gradient clip', section: 'training', default: DEFAULT_RUN.clip, min: 0, max: 1e6, step: 0.1, help: 'Global gradient-norm clip (Hugging Face default 1; 0 turns it off).' }),
  seed: int({ url: 'seed', label: 'Seed', section: 'training', default: DEFAULT_RUN.seed, min: 0, max: 2 ** 32 - 1, help: 'Seeds the adapter init, shuffling and dropout: the same link reproduces the run.' }),
  // ---- run bookkeeping -----------------------------------------------------------------------------
  checkpointEvery: int({ url: 'ckpt', label: 'Checkpoint every', section: 'run', default: 10, min: 0, max: 1_000_000, help: 'Save a checkpoint in the browser every K steps (0: never); a reload can resume from it.' }),
  faultLimit: int({
    url: 'faults', label: 'Faults before rollback', section: 'run', default: DEFAULT_FAULT_LIMIT, min: 1, max: 1000,
    help: 'Steps in a row with a non-finite loss or gradient (each one skipped) before the run rolls back to its last good checkpoint.',
  }),
  weights: choice<WeightSetting>({
    url: 'weights', label: 'Backbone weights', section: 'run', default: 'auto', options: WEIGHT_SETTINGS,
    help: "How the frozen backbone's matrices sit on the GPU: f16 halves their memory (arithmetic stays f32); auto: f16 on a hardware GPU, f32 on a software one, where f16 is slower. Full fine-tuning always uses f32.",
  }),
  routingEvery: int({ url: 'routing', label: 'Routing window', section: 'run', default: 5, min: 1, max: 10_000, help: 'Steps between routing measurements: on the routing set (held out, dropout off) and over the training window since the last one.' }),
  // ---- chat ----------------------------------------------------------------------------------------
  temperature: float({ url: 'temp', label: 'Temperature', section: 'chat', default: 0, min: 0, max: 10, step: 0.1, help: '0: greedy decoding; higher samples more freely.' }),
  topK: int({ url: 'topk', label: 'Top-k', section: 'chat', default: 0, min: 0, max: 1_000_000, help: 'Sample among the k most likely tokens (0: off).' }),
  topP: float({ url: 'topp', label: 'Top-p', section: 'chat', default: 1, min: 0, minExclusive: true, max: 1, step: 0.05, help: 'Sample from the smallest set holding this probability mass (1: off).' }),
  maxNewTokens: int({ url: 'maxnew', label: 'Max new tokens', section: 'chat', default: 32, min: 1, max: 2048, help: 'Most tokens generated per answer.' }),
  // ---- backbone (never downloaded from the link alone: the user presses Download) -------------------
  hubRepo: text({ url: 'hub', label: 'Hub repository', section: 'model', default: 'HuggingFaceTB/SmolLM2-135M', maxLength: 200, help: 'A Hugging Face model repository id (owner/name).' }),
} as const;

export type SettingKey = keyof typeof SETTINGS;
type ValueOf<D> = D extends DefBase<infer T> ? T : never;
export type Settings = { -readonly [K in SettingKey]: ValueOf<(typeof SETTINGS)[K]> };

export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

export function defaultSettings(): Settings {
  const out = {} as Record<SettingKey, unknown>;
  for (const k of SETTING_KEYS) {
    const d = SETTINGS[k].default;
    out[k] = Array.isArray(d) ? [...d] : d;
  }
  return out as Settings;
}

export interface SettingError {
  key: SettingKey;
  /** The URL parameter. */
  param: string;
  raw: string;
  message: string;
}

/** Parses one setting from text (a form field or a URL value). */
export function parseSetting<K extends SettingKey>(key: K, raw: string): Settings[K] {
  return (SETTINGS[key] as unknown as DefBase<Settings[K]>).parse(raw);
}

export function formatSetting<K extends SettingKey>(key: K, v: Settings[K]): string {
  return (SETTINGS[key] as unknown as DefBase<Settings[K]>).format(v);
}

/**
 * Reads settings from a query string. Parameters that are absent take their default; an invalid
 * value is reported in `errors` and replaced by the default; parameters not in the table are left
 * alone (other features own them). `present` lists the settings the URL gave validly.
 */
export function parseSettingsQuery(search: string): { settings: Settings; errors: SettingError[]; present: SettingKey[] } {
  const params = new URLSearchParams(search);
  const settings = defaultSettings();
  const errors: SettingError[] = [];
  const present: SettingKey[] = [];
  const out = settings as Record<SettingKey, unknown>;
  for (const key of SETTING_KEYS) {
    const def = SETTINGS[key];
    const all = params.getAll(def.url);
    if (all.length === 0) continue;
    const raw = all[all.length - 1];
    try {
      out[key] = (def as DefBase<unknown>).parse(raw);
      present.push(key);
    } catch (e) {
      errors.push({ key, param: def.url, raw, message: errorMessage(e) });
    }
  }
  return { settings, errors, present };
}

/**
 * Writes every setting into a query string, in table order, keeping parameters of `base` that are
 * not settings (e.g. `views-demo`). Every setting is written, defaults too, so a link keeps its
 * meaning if a default changes later.
 */
export function serializeSettingsQuery(settings: Settings, base = ''): string {
  const params = new URLSearchParams(base);
  const own = new Set(SETTING_KEYS.map((k) => SETTINGS[k].url));
  for (const name of [...params.keys()]) if (own.has(name)) params.delete(name);
  for (const key of SETTING_KEYS) params.set(SETTINGS[key].url, formatSetting(key, settings[key]));
  return params.toString();
}

/** Settings whose values differ from the defaults (for a compact summary). */
export function changedSettings(settings: Settings): SettingKey[] {
  const d = defaultSettings();
  return SETTING_KEYS.filter((k) => formatSetting(k, settings[k]) !== formatSetting(k, d[k]));
}

/**
 * Settings read back from storage (an older version may have stored other fields or values): each
 * known field that parses through the table is kept, everything else dropped.
 */
export function sanitizeSettings(stored: unknown): Partial<Settings> {
  const out: Partial<Record<SettingKey, unknown>> = {};
  if (typeof stored !== 'object' || stored === null) return {};
  for (const key of SETTING_KEYS) {
    const v = (stored as Record<string, unknown>)[key];
    if (v === undefined || v === null || (typeof v === 'object' && !Array.isArray(v))) continue;
    try {
      out[key] = (SETTINGS[key] as unknown as DefBase<unknown>).parse(Array.isArray(v) ? v.map(String).join(',') : String(v));
    } catch {
      // an invalid stored value: the current one stays
    }
  }
  return out as Partial<Settings>;
}
