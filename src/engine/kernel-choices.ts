/**
 * Which kernel a matmul takes, per shape class, on this device. The op builders read the choice
 * (src/engine/kernels/matmul.ts `matmulOp`, for every call that leaves `variant` at `auto`); the
 * autotuner (./autotune.ts) fills it by timing the candidates on the model's shapes, a setting can
 * force one kernel everywhere. With no choices (the default) every matmul takes the fixed,
 * shape-dependent register-tiled kernel (`chooseMatmulVariant`), as before the autotuner existed.
 */

/**
 * The workgroup-memory tiled kernels of shaders/matmul_tiled.wgsl, named by their output tile
 * (rows x columns of C per workgroup) and, where two share a tile, the block per invocation.
 * Their tile parameters are in src/engine/kernels/matmul-tiled.ts.
 */
export const TILED_MATMULS = ['tiled-64x64', 'tiled-128x64', 'tiled-64x64-8x8', 'tiled-32x32'] as const;
export type TiledMatmul = (typeof TILED_MATMULS)[number];

/** What the autotuner chooses between: the fixed register-tiled choice, or a tiled kernel. */
export type MatmulChoice = 'fixed' | TiledMatmul;
export const MATMUL_CHOICES: readonly MatmulChoice[] = ['fixed', ...TILED_MATMULS];

/**
 * What a setting may force on every matmul: any choice, or one of the register-tiled kernels
 * (`vec4` falls back to `ragged` on the shapes it cannot read; `scalar` is the plain reference).
 */
export type MatmulForce = MatmulChoice | 'vec4' | 'ragged' | 'scalar';
export const MATMUL_FORCES: readonly MatmulForce[] = [...MATMUL_CHOICES, 'vec4', 'ragged', 'scalar'];

export function isMatmulForce(s: string): s is MatmulForce {
  return (MATMUL_FORCES as readonly string[]).includes(s);
}

/**
 * The transposition of the operands, BLAS style: first letter A, second B, `n` as stored, `t`
 * transposed. The model's forward x · Wᵀ is `nt`, its input gradient dy · W `nn`, its weight
 * gradient dyᵀ · x `tn`.
 */
type MatmulLayout = 'nn' | 'nt' | 'tn' | 'tt';

/**
 * How big a product is, in the terms that decide between kernels:
 * - `row`: at most 4 rows of C (a decode step, M = 1): a tile of 32 or more rows is mostly idle.
 * - `thin`: C or the inner dimension narrower than 32 (experts·rank, the router's experts, a
 *   short sequence): a tile is partly idle or a K step mostly padding.
 * - `wide`: everything else (the backbone's projections at training and prefill sizes).
 */
type MatmulSize = 'row' | 'thin' | 'wide';
export type MatmulShapeClass = `${MatmulLayout}-${MatmulSize}`;

export const MATMUL_SHAPE_CLASSES: readonly MatmulShapeClass[] = (['nt', 'nn', 'tn', 'tt'] as const).flatMap((l) =>
  (['wide', 'thin', 'row'] as const).map((s): MatmulShapeClass => `${l}-${s}`),
);

export interface MatmulShapeLike {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
}

export function matmulShapeClass(s: MatmulShapeLike): MatmulShapeClass {
  const layout: MatmulLayout = `${s.transA ? 't' : 'n'}${s.transB ? 't' : 'n'}`;
  const size: MatmulSize = s.M <= 4 ? 'row' : Math.min(s.M, s.N, s.K) < 32 ? 'thin' : 'wide';
  return `${layout}-${size}`;
}

export interface KernelChoices {
  /** Per shape class, the kernel an `auto` matmul takes; a class not listed takes `fixed`. */
  matmul: Partial<Record<MatmulShapeClass, MatmulChoice>>;
  /** When set, every `auto` matmul takes this kernel, whatever its class. */
  force: MatmulForce | null;
}

export function defaultKernelChoices(): KernelChoices {
  return { matmul: {}, force: null };
}

/** One line per chosen class, for logs and the runner ("nt-wide: tiled-64x64, ..."; "fixed" when none differ). */
export function describeKernelChoices(k: KernelChoices | undefined): string {
  if (!k) return 'fixed';
  if (k.force) return `forced: ${k.force}`;
  const picked = MATMUL_SHAPE_CLASSES.filter((c) => k.matmul[c] !== undefined && k.matmul[c] !== 'fixed').map((c) => `${c}: ${k.matmul[c]}`);
  return picked.length > 0 ? picked.join(', ') : 'fixed';
}
