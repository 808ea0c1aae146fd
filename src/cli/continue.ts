/**
 * `train --adapter DIR`: training continues from an adapter folder (the playground's own, the
 * official LoRAMoE code's adapter_model.bin, or a PEFT LoRA adapter) instead of a fresh init.
 *
 * What the adapter is wins over flags: its mode, expert count, rank, alpha (so its scale) and
 * target modules. A flag that names a different value is an error that says so (leave the flag out
 * or give the adapter's value); a flag that repeats it is fine. Training settings of the adapter
 * (dropout, the balancing constraint's delta, beta and any other constraint setting) are the
 * adapter's unless a flag gives them. Expert groups: --groups when given; else the adapter's own
 * groups, matched to the data's types by name when the adapter names its types (the playground's
 * files), or by index when it does not (official files: type 0 downstream task, type 1 world
 * knowledge); a data type the adapter has no group for is an error naming it.
 */
import type { loadAdapter } from '../loramoe/files';

type Loaded = Awaited<ReturnType<typeof loadAdapter>>;
type Cfg = Loaded['cfg'];
type Flags = Record<string, string | boolean | undefined>;

/** Adapter settings a flag may change when continuing: config field -> flag. */
const TRAINING_FIELDS: readonly [string, string][] = [
  ['dropout', 'dropout'],
  ['lbcDelta', 'lbc-delta'],
  ['lbcBeta', 'lbc-beta'],
  ['lbcDirection', 'lbc-direction'],
  ['lbcImportance', 'lbc-importance'],
];

const sameNumber = (a: number, b: number) => a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));

/**
 * The configuration training continues with. `fresh` builds a configuration from flags (the
 * runner's own flag parser); it is called with the adapter's structure filled in, so the training
 * settings and --groups are parsed as usual against the adapter's expert count.
 */
export function continueAdapterConfig(
  dir: string,
  loaded: Pick<Loaded, 'cfg' | 'dataTypes' | 'peft'>,
  flags: Flags,
  names: readonly string[],
  fresh: (flags: Flags) => Cfg,
): Cfg {
  const a = loaded.cfg;
  const what = `the adapter in ${dir}`;
  const contradiction = (flag: string, given: string, has: string): never => {
    throw new Error(
      `--${flag} ${given} contradicts ${what} (${has}): when continuing, the adapter's mode, experts, rank, alpha and target modules ` +
        `are kept; leave --${flag} out or give the adapter's value`,
    );
  };
  const given = (flag: string): string | undefined => {
    const v = flags[flag];
    return typeof v === 'string' ? v : undefined;
  };
  const mode = given('mode');
  if (mode !== undefined && mode !== a.mode) {
    if (mode === 'full') throw new Error(`--mode full trains every backbone weight and has no adapter to continue; --adapter ${dir} continues its ${a.mode} adapter (leave --mode out)`);
    contradiction('mode', mode, `mode ${a.mode}`);
  }
  const experts = given('experts');
  if (experts !== undefined && Number(experts) !== a.numExperts) contradiction('experts', experts, `${a.numExperts} expert(s)`);
  const rank = given('rank');
  if (rank !== undefined && Number(rank) !== a.rank) contradiction('rank', rank, `rank ${a.rank}`);
  const alpha = given('alpha');
  if (alpha !== undefined && !sameNumber(Number(alpha), a.alpha)) {
    const rs = loaded.peft.rsLora;
    contradiction('alpha', alpha, rs ? `alpha ${a.alpha}: lora_alpha ${rs.loraAlpha} with use_rslora, i.e. ${rs.loraAlpha} * sqrt(${rs.rank})` : `alpha ${a.alpha}`);
  }
  const targets = given('targets');
  if (targets !== undefined) {
    const list = targets.split(',').map((t) => t.trim());
    if (list.length !== a.targets.length || !list.every((t) => (a.targets as readonly string[]).includes(t))) {
      contradiction('targets', targets, `target modules ${a.targets.join(',')}`);
    }
  }

  // Groups: --groups, else the adapter's own (by type name when it names its types, else by index
  // when the counts agree), else the official binary grouping over this data's types.
  const byName = loaded.dataTypes !== undefined && loaded.dataTypes.length === a.groups.length;
  const ownGroups = a.mode === 'loramoe' && given('groups') === undefined && (byName || a.groups.length === names.length);

  // The flags with the adapter's structure, so training settings and --groups parse as for a fresh
  // run against the adapter's expert count ("*" to every expert when the adapter's groups are kept:
  // a placeholder that parses for any count).
  const f = fresh({
    ...flags,
    mode: a.mode,
    experts: String(a.numExperts),
    rank: String(a.rank),
    alpha: String(a.alpha),
    targets: a.targets.join(','),
    ...(ownGroups ? { groups: `*=0-${a.numExperts - 1}` } : {}),
  });
  const out: Cfg = { ...a, targets: [...a.targets], groups: f.groups };
  // Fields are copied by name: each training setting is the adapter's unless its flag is given.
  const o = out as unknown as Record<string, unknown>;
  const fr = f as unknown as Record<string, unknown>;
  for (const [field, flag] of TRAINING_FIELDS) if (given(flag) !== undefined && field in fr) o[field] = fr[field];

  if (ownGroups && byName) {
    const groupOf = new Map(loaded.dataTypes!.map((t, i) => [t, a.groups[i]]));
    const unknown = names.filter((n) => !groupOf.has(n));
    if (unknown.length > 0) {
      throw new Error(
        `the data has type(s) ${unknown.map((n) => JSON.stringify(n)).join(', ')} that ${what} has no expert group for ` +
          `(it was trained on ${loaded.dataTypes!.map((n) => JSON.stringify(n)).join(', ')}); give --groups to map every type to its experts`,
      );
    }
    out.groups = names.map((n) => [...groupOf.get(n)!]);
  } else if (ownGroups) {
    out.groups = a.groups.map((g) => [...g]);
  }
  return out;
}

/** What an adapter folder held, in one line: its file, shape, scale and targets. */
export function describeLoaded(dir: string, loaded: Pick<Loaded, 'cfg' | 'weightsFile' | 'peft'>): string {
  const c = loaded.cfg;
  const shape = c.mode === 'loramoe' ? `LoRAMoE, ${c.numExperts} experts` : 'plain LoRA';
  const rs = loaded.peft.rsLora ? ` (use_rslora: lora_alpha ${loaded.peft.rsLora.loraAlpha} / sqrt(${loaded.peft.rsLora.rank}))` : '';
  return `${dir}/${loaded.weightsFile}: ${shape}, rank ${c.rank}, alpha ${c.alpha}${rs}, scale ${(c.alpha / c.rank).toPrecision(6)}, on ${c.targets.join(', ')}`;
}
