/**
 * The matmul shaders' assembly. WGSL has no include, so a matmul shader is its shared parts followed
 * by its own file: shaders/matmul_operands.wgsl (the uniform block Dims, TRANS_A / TRANS_B, A and C)
 * for every matmul, and shaders/matmul_blocked.wgsl (the 8x8 register-blocked kernels' body) for
 * the f32 and f16-weight ones, which differ only in how they read B.
 */
import type { ShaderSource } from '../pipelines';
import blockedCode from '../../../shaders/matmul_blocked.wgsl?raw';
import operandsCode from '../../../shaders/matmul_operands.wgsl?raw';

/** A matmul shader: the operands, then (`blocked`) the blocked kernels' body, then `own`. */
export function matmulShader(name: string, own: string, blocked: boolean): ShaderSource {
  return { name, code: [operandsCode, ...(blocked ? [blockedCode] : []), own].join('\n') };
}
