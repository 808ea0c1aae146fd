/**
 * The safetensors format's vocabulary, shared by the header reader (safetensors-header.ts) and the
 * public reader and writer (safetensors.ts, which re-exports all of it and describes the format and
 * its checks): the dtypes and their sizes, the header limit, the parsed file's types and the error
 * every check throws.
 */

/** Every dtype the safetensors format defines (the set the reference implementation accepts). */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
] as const;
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

/** Bytes per element of each dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** The largest header the reference implementation accepts. */
export const MAX_HEADER_BYTES = 100_000_000;

/** The header length at the start of a file: a little-endian unsigned 64-bit integer. */
export const HEADER_LENGTH_BYTES = 8;

export interface SafetensorsTensorInfo {
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first (row-major). */
  shape: number[];
  /** Byte range [begin, end) relative to the start of the data section (as stored in the file). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  fileName: string;
  /** Tensors in file order (sorted by data offset). */
  tensors: Map<string, SafetensorsTensorInfo>;
  /** `__metadata__`, empty when absent. */
  metadata: Record<string, string>;
  /** Header length `n` as stored in the first 8 bytes (padding included). */
  headerLength: number;
  /** Start of the data section in the file: 8 + headerLength. */
  dataOffset: number;
  /** Size of the data section (end of its last tensor). */
  dataLength: number;
  /** Size the whole file must have: dataOffset + dataLength. */
  byteLength: number;
}

export type SafetensorsErrorCode =
  | 'HeaderTooSmall'
  | 'HeaderTooLarge'
  | 'InvalidHeaderLength'
  | 'IncompleteHeader'
  | 'InvalidHeader'
  | 'InvalidHeaderDeserialization'
  | 'UnsafeInteger'
  | 'DuplicateKey'
  | 'ForbiddenKey'
  | 'InvalidOffset'
  | 'ValidationOverflow'
  | 'TensorInvalidInfo'
  | 'MetadataIncompleteBuffer'
  | 'TensorNotFound'
  | 'NotFloatDtype'
  | 'InvalidTensor';

export class SafetensorsError extends Error {
  readonly code: SafetensorsErrorCode;
  readonly fileName: string;
  /** The tensor concerned, when there is one. */
  readonly tensor: string | undefined;
  constructor(code: SafetensorsErrorCode, fileName: string, message: string, tensor?: string) {
    super(`${fileName}: ${message}`);
    this.name = 'SafetensorsError';
    this.code = code;
    this.fileName = fileName;
    this.tensor = tensor;
  }
}

/** A name as it appears in messages: JSON-quoted, so odd characters stay visible. */
export const q = (name: string): string => JSON.stringify(name);
