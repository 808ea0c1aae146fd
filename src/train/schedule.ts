/**
 * Learning-rate schedule as Hugging Face's get_cosine_schedule_with_warmup (the official LoRAMoE
 * script's): linear warmup from 0 over ceil(warmupRatio * totalSteps) steps, then half a cosine to 0.
 * `step` counts optimizer steps from 0; the value is the lr used for that step.
 */
export function warmupSteps(totalSteps: number, warmupRatio: number): number {
  return Math.ceil(totalSteps * warmupRatio);
}

export function cosineWithWarmup(step: number, totalSteps: number, warmupRatio: number, baseLr: number): number {
  const warmup = warmupSteps(totalSteps, warmupRatio);
  if (step < warmup) return (baseLr * step) / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, totalSteps - warmup);
  return baseLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
