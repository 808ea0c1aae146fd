/**
 * Prompt formatting. The official LoRAMoE template (the default): prompt = instruction, plus
 * "\n" + input when input is non-empty, followed by the end-of-sequence token; target = output
 * followed by end-of-sequence. Prompt tokens are masked out of the loss.
 */
import type { TextTokenizer } from './tokenizer';

export interface InstructionRecord {
  instruction: string;
  input: string;
  output: string;
  /** Data type name (e.g. "world knowledge"); maps to an expert group for the LBC. */
  type: string;
}

function officialPromptText(r: Pick<InstructionRecord, 'instruction' | 'input'>): string {
  return r.input.length > 0 ? `${r.instruction}\n${r.input}` : r.instruction;
}

export interface EncodedSample {
  /** Token ids: prompt then target. [L] */
  ids: number[];
  /** Number of leading prompt tokens (masked out of the loss). */
  promptLength: number;
  /** True when the sample was cut to the maximum length. */
  truncated: boolean;
  type: string;
}

/**
 * Tokenizes one record with the official template. The tokenizer's own special tokens (a BOS, for
 * Llama tokenizers) open the prompt, as the official code's tokenizer call adds them. A sample
 * longer than maxLength is cut at the end (as the official code's truncation does) and flagged.
 */
export function encodeOfficial(tok: TextTokenizer, r: InstructionRecord, maxLength: number): EncodedSample {
  const prompt = [...tok.encode(officialPromptText(r), true), tok.eosId];
  const target = [...tok.encode(r.output, false), tok.eosId];
  const all = [...prompt, ...target];
  const truncated = all.length > maxLength;
  return { ids: truncated ? all.slice(0, maxLength) : all, promptLength: Math.min(prompt.length, maxLength), truncated, type: r.type };
}

/**
 * A sample keeps at least one answer token after cutting: one position of it is in the loss. A
 * sample whose prompt alone fills the maximum length has none and is left out of training.
 */
export function hasAnswer(s: Pick<EncodedSample, 'ids' | 'promptLength'>): boolean {
  return s.ids.length > s.promptLength;
}

/** The text a user types in chat, encoded as a prompt the model was trained on. */
export function encodePrompt(tok: TextTokenizer, instruction: string, input = ''): number[] {
  return [...tok.encode(officialPromptText({ instruction, input }), true), tok.eosId];
}
