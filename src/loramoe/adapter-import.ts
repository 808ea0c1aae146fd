/**
 * Adapters from other tools, brought to the layout src/loramoe/files.ts loads:
 *
 * - Weights: `adapter_model.safetensors` or `adapter_model.bin` (PyTorch's torch.save zip, read by
 *   the restricted unpickler of src/io/torch-pickle.ts: nothing in the file is run). Both PEFT's
 *   plain LoRA names (`...{proj}.lora_A.weight` / `lora_B.weight`) and the official LoRAMoE names
 *   (`lora_route`, `lora_A{j}`, `lora_B{j}`) under `base_model.model.model.layers.{L}.{mlp|self_attn}`;
 *   when both files are present the safetensors file is read, as PEFT does.
 * - adapter_config.json as PEFT writes it: fields the playground expresses differently are mapped
 *   here before parseAdapterConfig reads the rest (normalizePeftConfig):
 *     use_rslora true      the scale is lora_alpha / sqrt(r) instead of lora_alpha / r; the
 *                          playground's scale is always alpha / r, so alpha becomes
 *                          lora_alpha * sqrt(r) (same scale, and a saved copy keeps it for PEFT:
 *                          lora_alpha * sqrt(r) / r with use_rslora false)
 *     modules_to_save      null or [] is nothing to save; a non-empty list (whole trainable copies
 *                          of modules such as lm_head) is refused by name: the backbone stays frozen
 *     target_modules       "all-linear" means every Llama projection (q, k, v, o, gate, up, down:
 *                          PEFT excludes the output layer); any other string is a regular
 *                          expression, refused (name the modules as a list)
 * - LoRA tensors of modules other than the layers' projections (lm_head, embed_tokens, ...) are
 *   refused with the modules named (checkAdaptedModules).
 */
import { type FileSource } from '../io/files';
import { getTensorF32, parseSafetensors, type SafetensorsDtype } from '../io/safetensors';
import { parseTorchFile } from '../io/torch-file';
import { PROJECTIONS } from '../method/shapes';

/** PyTorch's adapter weights file (torch.save), as PEFT and the official LoRAMoE code write it. */
export const ADAPTER_BIN_FILE = 'adapter_model.bin';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What normalizePeftConfig changed, for a note to the user. */
export interface PeftConfigNotes {
  /** Set when use_rslora was folded into alpha: the file's lora_alpha and r, and the alpha used. */
  rsLora?: { loraAlpha: number; rank: number; alpha: number };
  /** Set when target_modules was "all-linear". */
  allLinear?: boolean;
}

/**
 * adapter_config.json with PEFT's use_rslora, modules_to_save and target_modules strings mapped
 * (see the top of this file); anything else is left for parseAdapterConfig to check. The input is
 * not modified.
 */
export function normalizePeftConfig(json: unknown, fileName: string): { json: unknown; notes: PeftConfigNotes } {
  if (!isObject(json)) return { json, notes: {} };
  const fail = (msg: string): never => {
    throw new Error(`${fileName}: ${msg}`);
  };
  const out: Record<string, unknown> = { ...json };
  const notes: PeftConfigNotes = {};

  const mts = out.modules_to_save;
  if (mts === null || (Array.isArray(mts) && mts.length === 0)) delete out.modules_to_save;
  else if (Array.isArray(mts)) {
    const names = mts.map((m) => (typeof m === 'string' ? m : JSON.stringify(m) ?? String(m)));
    fail(
      `modules_to_save lists ${names.slice(0, 8).join(', ')}${names.length > 8 ? ` and ${names.length - 8} more` : ''}: ` +
        'whole trained copies of modules are not supported (the backbone stays frozen; only LoRA / LoRAMoE weights of the projections load)',
    );
  }

  const tm = out.target_modules;
  if (tm === 'all-linear') {
    out.target_modules = [...PROJECTIONS];
    notes.allLinear = true;
  } else if (typeof tm === 'string') {
    fail(`target_modules is the pattern ${JSON.stringify(tm.slice(0, 200))}; give a list of module names (${PROJECTIONS.join(', ')})`);
  }

  if (out.use_rslora === true) {
    const r = out.r;
    const a = out.lora_alpha;
    // Invalid values are left for parseAdapterConfig, which names the field.
    if (typeof r === 'number' && Number.isInteger(r) && r >= 1 && typeof a === 'number' && Number.isFinite(a) && a > 0) {
      const alpha = a * Math.sqrt(r);
      out.lora_alpha = alpha;
      notes.rsLora = { loraAlpha: a, rank: r, alpha };
    }
    delete out.use_rslora;
  } else if (out.use_rslora === false || out.use_rslora === null) {
    delete out.use_rslora;
  }
  return { json: out, notes };
}

/** A module the playground adapts: a projection of a layer, in its block. */
const MODULE_RE = /^base_model\.model\.model\.layers\.(0|[1-9]\d*)\.(mlp|self_attn)\.([a-z]+_proj)$/;

/**
 * Refuses LoRA tensors (names with ".lora_") of modules other than the layers' projections, naming
 * the modules (e.g. base_model.model.lm_head, base_model.model.model.embed_tokens). Other unknown
 * names are left to the loader's own check, which lists them.
 */
function checkAdaptedModules(names: Iterable<string>, where: string): void {
  const bad = new Set<string>();
  for (const name of names) {
    const i = name.indexOf('.lora_');
    if (i < 0) continue;
    const module = name.slice(0, i);
    const m = MODULE_RE.exec(module);
    const ok = m !== null && (PROJECTIONS as readonly string[]).includes(m[3]) && (m[2] === 'mlp') === ['gate_proj', 'up_proj', 'down_proj'].includes(m[3]);
    if (!ok) bad.add(module);
  }
  if (bad.size > 0) {
    const list = [...bad];
    throw new Error(
      `${where}: the adapter has LoRA weights for ${list.length} module(s) the playground cannot adapt: ` +
        `${list.slice(0, 6).join(', ')}${list.length > 6 ? ` and ${list.length - 6} more` : ''} ` +
        `(only the projections ${PROJECTIONS.join(', ')} of base_model.model.model.layers.{L}.{mlp|self_attn})`,
    );
  }
}

/** An adapter's weights file, read: its tensors' dtypes and shapes, and their float32 values. */
export interface AdapterWeights {
  /** The file read (adapter_model.safetensors or adapter_model.bin). */
  file: string;
  /** `${label}/${file}`, the prefix of every message about it. */
  where: string;
  tensors: ReadonlyMap<string, { dtype: SafetensorsDtype; shape: number[] }>;
  read(name: string): Float32Array;
}

/**
 * Which weights file the folder holds: `safetensorsFile` when present (as PEFT prefers it), else
 * adapter_model.bin; neither is an error naming both.
 */
export async function adapterWeightsFile(files: FileSource, safetensorsFile: string, configFile: string): Promise<string> {
  if (await files.has(safetensorsFile)) return safetensorsFile;
  if (await files.has(ADAPTER_BIN_FILE)) return ADAPTER_BIN_FILE;
  throw new Error(`${files.label}: ${safetensorsFile} is missing (an adapter folder holds ${configFile} and ${safetensorsFile} or ${ADAPTER_BIN_FILE})`);
}

/**
 * Reads weights file `file` of the folder (safetensors, or torch.save for adapter_model.bin) and
 * refuses LoRA weights of modules that are not layer projections.
 */
export async function readAdapterWeights(files: FileSource, file: string): Promise<AdapterWeights> {
  const where = `${files.label}/${file}`;
  const bytes = await files.readBytes(file);
  let out: AdapterWeights;
  if (file === ADAPTER_BIN_FILE) {
    const sd = parseTorchFile(bytes, where);
    out = { file, where, tensors: sd.tensors, read: (name) => sd.read(name) };
  } else {
    const st = parseSafetensors(bytes, where);
    out = { file, where, tensors: st.tensors, read: (name) => getTensorF32(st, bytes, name) };
  }
  checkAdaptedModules(out.tensors.keys(), out.where);
  return out;
}
