/**
 * Adapter files in the official LoRAMoE layout (a fork of Hugging Face PEFT): a folder with
 *   adapter_config.json        PEFT's LoraConfig fields plus LoRAMoE's lora_nums, blc_alpha, blc_weight,
 *                              and a "loramoe_playground" object for what those cannot say
 *   adapter_model.safetensors  per adapted projection (block = mlp or self_attn):
 *     base_model.model.model.layers.{L}.{block}.{proj}.lora_route.weight  [N, K]   (LoRAMoE only)
 *     base_model.model.model.layers.{L}.{block}.{proj}.lora_A{j}.weight   [R, K]   expert j = 0..N-1
 *     base_model.model.model.layers.{L}.{block}.{proj}.lora_B{j}.weight   [Nout, R]
 *   Plain LoRA (one expert, no router) uses PEFT's own names, `...{proj}.lora_A.weight` and
 *   `...{proj}.lora_B.weight`, so PEFT loads it as is.
 *
 * In memory (AdapterSet, src/loramoe/init.ts) the experts are in the GPU layouts: A stacked
 * [N*R, K] (expert j = rows j*R..j*R+R-1) and B concatenated Bcat [Nout, N*R] with
 * Bcat[o, j*R + r] = B_j[o, r]. Writing splits them into per-expert tensors, loading rebuilds them.
 *
 * Loading checks the adapter against the backbone it is loaded onto and says what differs: layer
 * indices past the backbone's layers or layers missing, target modules declared vs present, expert
 * count, rank, and every tensor's shape against the backbone's projection shapes.
 */
import { type FileSource, readJson } from '../io/files';
import { ADAPTER_BIN_FILE, adapterWeightsFile, normalizePeftConfig, type PeftConfigNotes, readAdapterWeights } from './adapter-import';
import { isFloatDtype, type SafetensorsTensorInfo, writeSafetensors, type TensorToWrite } from '../io/safetensors';
import { officialGroups } from '../reference/lbc';
import { checkAdapterConfig, defaultAdapterConfig } from './config';
import { type AdapterConfig, type AdapterMode, isRouted, orderedTargets, LBC_DIRECTIONS, LBC_IMPORTANCES, type LbcDirection, type LbcImportance } from '../method/adapter';
import { type Projection, PROJECTIONS, projectionShape, type LlamaShape } from '../method/shapes';
import { adapterKey, type AdapterArrays, type AdapterSet } from './init';
import { errorMessage } from '../util/errors';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
/** Largest expert count accepted from a file (the paper uses 2 to 8). */
const MAX_EXPERTS = 256;
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

const MLP_PROJECTIONS: readonly Projection[] = ['gate_proj', 'up_proj', 'down_proj'];

function projectionBlock(p: Projection): 'mlp' | 'self_attn' {
  return MLP_PROJECTIONS.includes(p) ? 'mlp' : 'self_attn';
}

/** `base_model.model.model.layers.{L}.{block}.{proj}`: the PEFT prefix of an adapted projection. */
function adapterModulePrefix(layer: number, p: Projection): string {
  return `base_model.model.model.layers.${layer}.${projectionBlock(p)}.${p}`;
}

const dims = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

function listNames(names: readonly string[], max = 5): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

// ---------------------------------------------------------------------------------------------
// Writing.
// ---------------------------------------------------------------------------------------------

/** The adapter's tensors under their official names, split into per-expert tensors (float32). */
export function adapterTensors(cfg: AdapterConfig, shape: LlamaShape, set: AdapterSet): TensorToWrite[] {
  if (cfg.mode !== 'loramoe' && cfg.mode !== 'lora') throw new Error(`adapter files: mode "${cfg.mode}" has no adapter to save`);
  checkAdapterConfig(cfg);
  const N = cfg.numExperts;
  const R = cfg.rank;
  const out: TensorToWrite[] = [];
  for (let l = 0; l < shape.numLayers; l++) {
    for (const p of orderedTargets(cfg)) {
      const key = adapterKey(l, p);
      const t = set.get(key);
      if (!t) throw new Error(`adapter files: no adapter tensors for layer ${l} ${p}`);
      const [K, Nout] = projectionShape(shape, p);
      const check = (part: string, data: Float32Array | null, want: number[]) => {
        const n = want[0] * want[1];
        if (!data || data.length !== n) {
          throw new Error(`adapter files: ${key} ${part} has ${data ? data.length : 'no'} values, expected ${dims(want)} = ${n}`);
        }
      };
      check('A', t.a, [N * R, K]);
      check('B', t.b, [Nout, N * R]);
      const prefix = adapterModulePrefix(l, p);
      if (cfg.mode === 'lora') {
        out.push({ name: `${prefix}.lora_A.weight`, dtype: 'F32', shape: [R, K], data: t.a });
        out.push({ name: `${prefix}.lora_B.weight`, dtype: 'F32', shape: [Nout, R], data: t.b });
        continue;
      }
      check('router', t.wr, [N, K]);
      out.push({ name: `${prefix}.lora_route.weight`, dtype: 'F32', shape: [N, K], data: t.wr! });
      for (let j = 0; j < N; j++) {
        out.push({ name: `${prefix}.lora_A${j}.weight`, dtype: 'F32', shape: [R, K], data: t.a.subarray(j * R * K, (j + 1) * R * K) });
      }
      for (let j = 0; j < N; j++) {
        // B_j[o, r] = Bcat[o, j*R + r]
        const bj = new Float32Array(Nout * R);
        for (let o = 0; o < Nout; o++) bj.set(t.b.subarray(o * N * R + j * R, o * N * R + (j + 1) * R), o * R);
        out.push({ name: `${prefix}.lora_B${j}.weight`, dtype: 'F32', shape: [Nout, R], data: bj });
      }
    }
  }
  return out;
}

/** adapter_model.safetensors: float32 tensors in the official layout, `__metadata__` {format: "pt"}. */
export function adapterToSafetensors(cfg: AdapterConfig, shape: LlamaShape, set: AdapterSet): Uint8Array {
  return writeSafetensors(adapterTensors(cfg, shape, set), { format: 'pt' }, ADAPTER_WEIGHTS_FILE);
}

/** What adapter_config.json holds beyond the official fields. */
interface PlaygroundAdapterInfo {
  /** Format version of this object. */
  version: 1;
  mode: AdapterMode;
  /** groups[t] = experts data type t is steered to (LoRAMoE). */
  groups: number[][];
  /** Names of the data types, index t = type label t, when known. */
  dataTypes?: string[];
  /** Which way the balancing constraint pushed (LoRAMoE). Absent: "official". */
  lbcDirection?: LbcDirection;
  /**
   * How samples' tokens made the constraint's importance (LoRAMoE). Absent in a file with this
   * object: "sum" (the only rule before the setting existed); absent with no object at all (the
   * official code's files): "mean", which equals the official loss at its one sample per device.
   */
  lbcImportance?: LbcImportance;
}

/**
 * adapter_config.json: the official LoRAMoE fields (PEFT's LoraConfig plus lora_nums, blc_alpha,
 * blc_weight) and a "loramoe_playground" object with the mode, the expert groups and the data type
 * names.
 */
export function adapterConfigJson(cfg: AdapterConfig, baseModelName: string, dataTypes?: readonly string[]): Record<string, unknown> {
  const extra: PlaygroundAdapterInfo = { version: 1, mode: cfg.mode, groups: cfg.groups.map((g) => [...g]) };
  if (dataTypes !== undefined) extra.dataTypes = [...dataTypes];
  if (isRouted(cfg)) {
    extra.lbcDirection = cfg.lbcDirection;
    extra.lbcImportance = cfg.lbcImportance;
  }
  if (cfg.mode !== 'loramoe' && cfg.mode !== 'lora') throw new Error(`adapter files: mode "${cfg.mode}" has no adapter to save`);
  // Plain LoRA leaves out LoRAMoE's own fields, so PEFT's LoraConfig sees only fields it knows
  // (recent PEFT versions ignore the unknown "loramoe_playground" with a warning).
  const moe = isRouted(cfg) ? { lora_nums: cfg.numExperts, blc_alpha: cfg.lbcDelta, blc_weight: cfg.lbcBeta } : {};
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModelName,
    r: cfg.rank,
    lora_alpha: cfg.alpha,
    ...moe,
    lora_dropout: cfg.dropout,
    target_modules: orderedTargets(cfg),
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    loramoe_playground: extra,
  };
}

/** Both files of an adapter folder, by file name. */
export function adapterFiles(
  cfg: AdapterConfig,
  shape: LlamaShape,
  set: AdapterSet,
  baseModelName: string,
  dataTypes?: readonly string[],
): Map<string, Uint8Array> {
  return new Map([
    [ADAPTER_CONFIG_FILE, new TextEncoder().encode(JSON.stringify(adapterConfigJson(cfg, baseModelName, dataTypes), null, 2))],
    [ADAPTER_WEIGHTS_FILE, adapterToSafetensors(cfg, shape, set)],
  ]);
}

// ---------------------------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------------------------

export interface LoadedAdapter {
  cfg: AdapterConfig;
  set: AdapterSet;
  /** base_model_name_or_path ('' when absent). */
  baseModel: string;
  dataTypes?: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads adapter_config.json into an AdapterConfig; every refusal names the field. */
export function parseAdapterConfig(json: unknown, fileName = ADAPTER_CONFIG_FILE): { cfg: AdapterConfig; baseModel: string; dataTypes?: string[] } {
  const fail = (msg: string): never => {
    throw new Error(`${fileName}: ${msg}`);
  };
  if (!isObject(json)) return fail('expected a JSON object');
  const present = (f: string) => json[f] !== undefined && json[f] !== null;
  const show = (v: unknown): string => {
    try {
      return JSON.stringify(v) ?? String(v);
    } catch {
      return Array.isArray(v) ? '[...]' : '{...}'; // nested too deep for JSON.stringify
    }
  };
  const expected = { int: 'a positive integer', positive: 'a positive number', nonneg: 'a number >= 0', unit: 'a number in [0, 1)' };
  const num = (f: string, kind: keyof typeof expected, fallback?: number): number => {
    const v = json[f];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      return fail(`${f} is missing (expected ${expected[kind]})`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) return fail(`${f} must be a number, found ${show(v)}`);
    if (kind === 'int' && !(Number.isInteger(v) && v >= 1)) fail(`${f} must be a positive integer, found ${show(v)}`);
    if (kind === 'positive' && !(v > 0)) fail(`${f} must be positive, found ${show(v)}`);
    if (kind === 'nonneg' && !(v >= 0)) fail(`${f} must be >= 0, found ${show(v)}`);
    if (kind === 'unit' && !(v >= 0 && v < 1)) fail(`${f} must be in [0, 1), found ${show(v)}`);
    return v;
  };

  if (present('peft_type') && json.peft_type !== 'LORA') fail(`peft_type ${show(json.peft_type)} is not supported (expected "LORA")`);
  if (present('bias') && json.bias !== 'none') fail(`bias ${show(json.bias)} is not supported (expected "none": adapters without bias terms)`);
  if (json.fan_in_fan_out === true) fail('fan_in_fan_out true is not supported (Llama projections are [out, in])');
  if (json.use_rslora === true) fail('use_rslora true is not supported (the scale is lora_alpha / r)');
  if (json.use_dora === true) fail('use_dora true is not supported');
  for (const f of ['rank_pattern', 'alpha_pattern']) {
    if (isObject(json[f]) && Object.keys(json[f] as object).length > 0) fail(`${f} is not supported (one r and lora_alpha for every module)`);
  }
  if (present('modules_to_save')) fail('modules_to_save is not supported (the backbone stays frozen)');

  const extraRaw = json.loramoe_playground;
  if (extraRaw !== undefined && extraRaw !== null && !isObject(extraRaw)) fail('loramoe_playground must be an object');
  const extra = (extraRaw ?? {}) as Record<string, unknown>;

  let mode: AdapterMode;
  if (extra.mode !== undefined) {
    if (extra.mode !== 'loramoe' && extra.mode !== 'lora') fail(`loramoe_playground.mode must be "loramoe" or "lora", found ${show(extra.mode)}`);
    mode = extra.mode as AdapterMode;
  } else {
    // Official LoRAMoE configs carry lora_nums; plain PEFT LoRA configs do not.
    mode = present('lora_nums') ? 'loramoe' : 'lora';
  }

  const rank = num('r', 'int');
  const alpha = num('lora_alpha', 'positive');
  const numExperts = mode === 'loramoe' ? num('lora_nums', 'int') : num('lora_nums', 'int', 1);
  if (mode === 'lora' && numExperts !== 1) fail(`lora_nums is ${numExperts} but loramoe_playground.mode is "lora" (one expert)`);
  if (numExperts > MAX_EXPERTS) fail(`lora_nums (${numExperts}) is more than the ${MAX_EXPERTS} experts supported`);
  // lora_dropout: PEFT's default when absent. The LBC fields are required in LoRAMoE configs; plain
  // LoRA has no LBC and takes the playground defaults (unused there).
  const dropout = num('lora_dropout', 'unit', 0);
  const defaults = defaultAdapterConfig('lora');
  const lbcDelta = num('blc_alpha', 'unit', mode === 'loramoe' ? undefined : defaults.lbcDelta);
  const lbcBeta = num('blc_weight', 'nonneg', mode === 'loramoe' ? undefined : defaults.lbcBeta);

  const tm = json.target_modules;
  if (tm === undefined || tm === null) fail(`target_modules is missing (expected a list of ${PROJECTIONS.join(', ')})`);
  if (!Array.isArray(tm) || !tm.every((t) => typeof t === 'string')) {
    fail(`target_modules must be a list of module names (${PROJECTIONS.join(', ')}), found ${show(tm)}`);
  }
  const unknown = (tm as string[]).filter((t) => !(PROJECTIONS as readonly string[]).includes(t));
  if (unknown.length > 0) fail(`target_modules names ${unknown.map((t) => JSON.stringify(t)).join(', ')}, not a Llama projection (${PROJECTIONS.join(', ')})`);
  const targets = PROJECTIONS.filter((p) => (tm as string[]).includes(p));
  if (targets.length === 0) fail('target_modules is empty');

  let groups: number[][];
  if (mode === 'lora') {
    groups = [[0]];
  } else if (extra.groups !== undefined) {
    const g = extra.groups;
    if (!Array.isArray(g) || !g.every((x) => Array.isArray(x) && x.every((n) => typeof n === 'number'))) {
      return fail(`loramoe_playground.groups must be a list of lists of expert indices, found ${show(g)}`);
    }
    groups = (g as number[][]).map((x) => [...x]);
  } else {
    groups = numExperts % 2 === 0 ? officialGroups(numExperts) : [Array.from({ length: numExperts }, (_, i) => i)];
  }

  let dataTypes: string[] | undefined;
  if (extra.dataTypes !== undefined) {
    if (!Array.isArray(extra.dataTypes) || !extra.dataTypes.every((t) => typeof t === 'string')) {
      fail(`loramoe_playground.dataTypes must be a list of strings, found ${show(extra.dataTypes)}`);
    }
    dataTypes = [...(extra.dataTypes as string[])];
  }

  if (extra.lbcDirection !== undefined && !LBC_DIRECTIONS.includes(extra.lbcDirection as LbcDirection)) {
    fail(`loramoe_playground.lbcDirection must be ${LBC_DIRECTIONS.map((d) => JSON.stringify(d)).join(' or ')}, found ${show(extra.lbcDirection)}`);
  }
  if (extra.lbcImportance !== undefined && !LBC_IMPORTANCES.includes(extra.lbcImportance as LbcImportance)) {
    fail(`loramoe_playground.lbcImportance must be ${LBC_IMPORTANCES.map((d) => JSON.stringify(d)).join(' or ')}, found ${show(extra.lbcImportance)}`);
  }
  const lbcDirection = (extra.lbcDirection as LbcDirection | undefined) ?? defaults.lbcDirection;
  // Unset: plain LoRA has no constraint (defaults, unused); a playground file from before the
  // setting existed summed; the official code's files match "mean" (one sample per device).
  const lbcImportance =
    (extra.lbcImportance as LbcImportance | undefined) ?? (mode !== 'loramoe' ? defaults.lbcImportance : extraRaw === undefined || extraRaw === null ? 'mean' : 'sum');

  const base = json.base_model_name_or_path;
  if (base !== undefined && base !== null && typeof base !== 'string') fail(`base_model_name_or_path must be a string, found ${show(base)}`);

  const cfg: AdapterConfig = { mode, numExperts, rank, alpha, dropout, targets, lbcDelta, lbcBeta, lbcDirection, lbcImportance, groups };
  try {
    checkAdapterConfig(cfg);
  } catch (e) {
    fail(errorMessage(e));
  }
  return { cfg, baseModel: typeof base === 'string' ? base : '', ...(dataTypes ? { dataTypes } : {}) };
}

/** One adapter tensor name, taken apart. */
interface ParsedName {
  layer: number;
  proj: Projection;
  /** 'route', or 'A' / 'B' with the expert index (null: PEFT's unnumbered plain-LoRA name). */
  part: 'route' | 'A' | 'B';
  expert: number | null;
}

const NAME_RE = /^base_model\.model\.model\.layers\.(0|[1-9]\d*)\.(mlp|self_attn)\.([a-z]+_proj)\.lora_(route|A|B)(0|[1-9]\d*)?\.weight$/;

function parseName(name: string): ParsedName | null {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  const proj = m[3] as Projection;
  if (!PROJECTIONS.includes(proj) || projectionBlock(proj) !== m[2]) return null;
  const part = m[4] as ParsedName['part'];
  if (part === 'route' && m[5] !== undefined) return null;
  return { layer: Number(m[1]), proj, part, expert: m[5] === undefined ? null : Number(m[5]) };
}

/**
 * Reads adapter_config.json and the weights, adapter_model.safetensors (F32, F16 or BF16) or
 * PyTorch's adapter_model.bin (official LoRAMoE or PEFT, through the restricted unpickler; see
 * ./adapter-import.ts for the PEFT config fields mapped), from `files`, checks them against the
 * backbone `shape` and rebuilds the GPU layouts.
 */
export async function loadAdapter(
  files: FileSource,
  shape: LlamaShape,
): Promise<LoadedAdapter & { weightsFile: string; peft: PeftConfigNotes }> {
  if (!(await files.has(ADAPTER_CONFIG_FILE))) {
    throw new Error(`${files.label}: ${ADAPTER_CONFIG_FILE} is missing (an adapter folder holds ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE} or ${ADAPTER_BIN_FILE})`);
  }
  const weightsFile = await adapterWeightsFile(files, ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE);
  const configWhere = `${files.label}/${ADAPTER_CONFIG_FILE}`;
  const { json, notes } = normalizePeftConfig(await readJson(files, ADAPTER_CONFIG_FILE), configWhere);
  const parsedCfg = parseAdapterConfig(json, configWhere);
  const w = await readAdapterWeights(files, weightsFile);
  const set = adapterFromTensors(parsedCfg.cfg, shape, w.tensors, w.read, w.where);
  return { ...parsedCfg, set, weightsFile, peft: notes };
}

/**
 * Checks adapter tensors (name -> info) against the config and the backbone, then rebuilds the GPU
 * layouts, reading each tensor's values through `read`.
 */
function adapterFromTensors(
  cfg: AdapterConfig,
  shape: LlamaShape,
  tensors: ReadonlyMap<string, Pick<SafetensorsTensorInfo, 'dtype' | 'shape'>>,
  read: (name: string) => Float32Array,
  where = ADAPTER_WEIGHTS_FILE,
): AdapterSet {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  const N = cfg.numExperts;
  const R = cfg.rank;
  const L = shape.numLayers;
  const routed = isRouted(cfg);
  const targets = orderedTargets(cfg);

  // 1. Every name must be an adapter tensor of a Llama projection.
  const parsed = new Map<string, ParsedName>();
  const unknown: string[] = [];
  for (const name of tensors.keys()) {
    const p = parseName(name);
    if (p) parsed.set(name, p);
    else unknown.push(name);
  }
  if (unknown.length > 0) {
    fail(
      `${unknown.length} unknown tensor(s): ${listNames(unknown)} ` +
        '(expected base_model.model.model.layers.{L}.{mlp|self_attn}.{proj}.lora_{route|A{j}|B{j}}.weight)',
    );
  }
  for (const [name, info] of tensors) {
    if (!isFloatDtype(info.dtype)) fail(`tensor ${name} has dtype ${info.dtype}; adapter tensors must be F32, F16 or BF16`);
  }

  // 2. Layers: none past the backbone's last layer.
  let maxLayer = -1;
  for (const p of parsed.values()) maxLayer = Math.max(maxLayer, p.layer);
  if (maxLayer >= L) {
    fail(`the adapter has tensors for layer ${maxLayer} but the backbone has ${L} layers (0..${L - 1}): the adapter is for a model with more layers`);
  }

  // 3. Target modules: those present must be those declared.
  const found = new Set<Projection>();
  for (const p of parsed.values()) found.add(p.proj);
  const undeclared = PROJECTIONS.filter((p) => found.has(p) && !targets.includes(p));
  const absent = targets.filter((p) => !found.has(p));
  if (undeclared.length > 0 || absent.length > 0) {
    fail(
      `target_modules declares ${targets.join(', ')} but the tensors adapt ${PROJECTIONS.filter((p) => found.has(p)).join(', ') || 'nothing'}` +
        (undeclared.length > 0 ? ` (not declared: ${undeclared.join(', ')})` : '') +
        (absent.length > 0 ? ` (no tensors: ${absent.join(', ')})` : ''),
    );
  }

  // 4. Naming style and expert count.
  for (const [name, p] of parsed) {
    if (!routed) {
      if (p.part === 'route') fail(`tensor ${name} is a router, but the config is plain LoRA (no lora_nums / mode "lora")`);
      if (p.expert !== null) fail(`tensor ${name} has an expert index, but the config is plain LoRA (expected lora_A.weight / lora_B.weight)`);
    } else if (p.part !== 'route' && p.expert === null) {
      fail(`tensor ${name} is plain LoRA (no expert index), but the config is LoRAMoE with lora_nums ${N} (expected lora_A{j} / lora_B{j})`);
    }
  }
  if (routed) {
    // Experts per module as counted from lora_A{j}.
    const experts = new Map<string, Set<number>>();
    for (const p of parsed.values()) {
      if (p.part !== 'A') continue;
      const k = adapterKey(p.layer, p.proj);
      let s = experts.get(k);
      if (!s) experts.set(k, (s = new Set()));
      s.add(p.expert!);
    }
    for (const [k, s] of experts) {
      const count = Math.max(...s) + 1;
      if (count !== N) {
        const [l, proj] = k.split('.');
        fail(
          `lora_nums is ${N} in ${ADAPTER_CONFIG_FILE} but layer ${l} ${proj} has ${count} experts ` +
            `(lora_A0..lora_A${count - 1}): the adapter has a different expert count`,
        );
      }
    }
  }

  // 5. Every expected tensor present; rank and shapes against the backbone.
  const missing: string[] = [];
  const missingLayers: number[] = [];
  for (let l = 0; l < L; l++) {
    if (![...parsed.values()].some((p) => p.layer === l)) missingLayers.push(l);
  }
  if (missingLayers.length > 0) {
    fail(
      `no tensors for layer(s) ${missingLayers.join(', ')}: the backbone has ${L} layers, the adapter covers ` +
        `${L - missingLayers.length} of them` + (maxLayer < L - 1 && missingLayers.every((l) => l > maxLayer) ? ' (it is for a model with fewer layers)' : ''),
    );
  }
  const expectedNames = (l: number, p: Projection): { name: string; part: 'route' | 'A' | 'B'; want: number[] }[] => {
    const prefix = adapterModulePrefix(l, p);
    const [K, Nout] = projectionShape(shape, p);
    if (!routed) {
      return [
        { name: `${prefix}.lora_A.weight`, part: 'A', want: [R, K] },
        { name: `${prefix}.lora_B.weight`, part: 'B', want: [Nout, R] },
      ];
    }
    const out: { name: string; part: 'route' | 'A' | 'B'; want: number[] }[] = [{ name: `${prefix}.lora_route.weight`, part: 'route', want: [N, K] }];
    for (let j = 0; j < N; j++) out.push({ name: `${prefix}.lora_A${j}.weight`, part: 'A', want: [R, K] });
    for (let j = 0; j < N; j++) out.push({ name: `${prefix}.lora_B${j}.weight`, part: 'B', want: [Nout, R] });
    return out;
  };
  const all: { l: number; p: Projection; list: ReturnType<typeof expectedNames> }[] = [];
  for (let l = 0; l < L; l++) for (const p of targets) all.push({ l, p, list: expectedNames(l, p) });
  const expectedSet = new Set<string>();
  for (const { list } of all) for (const e of list) {
    expectedSet.add(e.name);
    if (!tensors.has(e.name)) missing.push(`${e.name} ${dims(e.want)}`);
  }
  if (missing.length > 0) fail(`${missing.length} tensor(s) missing: ${listNames(missing)}`);
  const extra = [...tensors.keys()].filter((n) => !expectedSet.has(n));
  if (extra.length > 0) fail(`${extra.length} unexpected tensor(s): ${listNames(extra)} (lora_nums is ${N})`);
  // Rank first (it is the adapter's own number), then the backbone's dimensions.
  for (const { list } of all) for (const e of list) {
    const got = tensors.get(e.name)!.shape;
    if (e.part === 'route' || got.length !== 2) continue;
    const gotR = e.part === 'A' ? got[0] : got[1];
    if (gotR !== R) fail(`r is ${R} in ${ADAPTER_CONFIG_FILE} but tensor ${e.name} has shape ${dims(got)} (rank ${gotR}): the adapter has a different rank`);
  }
  for (const { list } of all) for (const e of list) {
    const got = tensors.get(e.name)!.shape;
    if (got.length !== e.want.length || got.some((d, i) => d !== e.want[i])) {
      fail(`tensor ${e.name} has shape ${dims(got)}, expected ${dims(e.want)} for this backbone (hidden_size ${shape.hiddenSize}, intermediate_size ${shape.intermediateSize})`);
    }
  }

  // 6. Rebuild the GPU layouts.
  const set: AdapterSet = new Map();
  for (const { l, p } of all) {
    const prefix = adapterModulePrefix(l, p);
    const [K, Nout] = projectionShape(shape, p);
    const a = new Float32Array(N * R * K);
    const b = new Float32Array(Nout * N * R);
    let wr: Float32Array | null = null;
    if (!routed) {
      a.set(read(`${prefix}.lora_A.weight`));
      b.set(read(`${prefix}.lora_B.weight`));
    } else {
      wr = read(`${prefix}.lora_route.weight`);
      for (let j = 0; j < N; j++) {
        a.set(read(`${prefix}.lora_A${j}.weight`), j * R * K);
        const bj = read(`${prefix}.lora_B${j}.weight`);
        for (let o = 0; o < Nout; o++) b.set(bj.subarray(o * R, (o + 1) * R), o * N * R + j * R);
      }
    }
    const arrays: AdapterArrays = { wr, a, b };
    set.set(adapterKey(l, p), arrays);
  }
  return set;
}
