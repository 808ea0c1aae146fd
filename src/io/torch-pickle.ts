/**
 * A restricted unpickler for PyTorch state dicts: the `data.pkl` of a `torch.save` zip archive
 * (src/io/torch-file.ts reads the archive around it).
 *
 * Python's pickle format is a small stack machine whose GLOBAL and REDUCE opcodes import and call
 * any Python function the file names: loading an untrusted pickle with `pickle.load` runs arbitrary
 * code. Nothing here imports or calls anything. The machine below knows a fixed list of opcodes
 * and a fixed list of names, and every name maps to a plain data constructor written in
 * TypeScript. That list is what `torch.save(state_dict)` writes and nothing more:
 *
 *   collections.OrderedDict               called with no arguments: an empty (ordered) dict
 *   torch._utils._rebuild_tensor_v2       (storage, storage_offset, size, stride, requires_grad,
 *                                          backward_hooks[, metadata]): a tensor view of a storage
 *   torch.FloatStorage / torch.HalfStorage / torch.BFloat16Storage
 *                                         only inside a persistent id (below), naming the dtype
 *
 * Persistent ids (BINPERSID) must be ('storage', storage_type, key, location, numel): storage
 * `key` is the archive entry `data/<key>` holding `numel` elements of the storage type's dtype.
 *
 * Opcodes accepted (protocol 2 as torch.save writes it, plus the protocol 4 forms of the same
 * values): PROTO, FRAME, MARK, STOP, EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, TUPLE, TUPLE1-3, BININT,
 * BININT1, BININT2, LONG1, NONE, NEWTRUE, NEWFALSE, BINUNICODE, SHORT_BINUNICODE, BINUNICODE8,
 * GLOBAL, STACK_GLOBAL, BINPERSID, REDUCE, BUILD (on a dict: OrderedDict's attribute dict, such as
 * a state dict's `_metadata`, which is ignored), SETITEM, SETITEMS, APPEND, APPENDS, BINPUT,
 * LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET. Any other opcode or name is refused with an error
 * naming the file, the opcode or name and its byte offset.
 *
 * Bounds: every read is checked against the end of the data (a truncated file says what it was
 * reading and where); lengths read from the file are checked before anything is sliced; memo
 * indices must have been stored; MARK nesting is capped at MAX_MARK_DEPTH; the machine takes one
 * pass over the bytes with O(1) work per opcode byte (TUPLE/SETITEMS/APPENDS pop what earlier
 * opcodes pushed), and never recurses into values, so shared or cyclic references (BINGET of a
 * list into itself) cannot make it loop.
 */

import type { FloatDtype } from './dtypes';

/** A torch storage type the unpickler accepts, and the dtype of its elements. */
const TORCH_STORAGE_TYPES: Readonly<Record<string, FloatDtype>> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
};

/** Storage types torch can write that an adapter cannot use (named in the refusal). */
const OTHER_STORAGE_TYPES: Readonly<Record<string, string>> = {
  'torch.DoubleStorage': 'float64',
  'torch.LongStorage': 'int64',
  'torch.IntStorage': 'int32',
  'torch.ShortStorage': 'int16',
  'torch.CharStorage': 'int8',
  'torch.ByteStorage': 'uint8',
  'torch.BoolStorage': 'bool',
  'torch.ComplexFloatStorage': 'complex64',
  'torch.ComplexDoubleStorage': 'complex128',
  'torch.QInt8Storage': 'qint8',
  'torch.QUInt8Storage': 'quint8',
  'torch.QInt32Storage': 'qint32',
};

const ORDERED_DICT = 'collections.OrderedDict';
const REBUILD_TENSOR_V2 = 'torch._utils._rebuild_tensor_v2';

/** Every name the unpickler resolves (for messages and the README). */
const ALLOWED_GLOBALS: readonly string[] = [ORDERED_DICT, REBUILD_TENSOR_V2, ...Object.keys(TORCH_STORAGE_TYPES)];

/** Deepest MARK nesting accepted: a state dict uses 3 (dict items > tensor args > persistent id). */
export const MAX_MARK_DEPTH = 64;

/** Longest module or name line of a GLOBAL opcode. */
const MAX_GLOBAL_LINE = 256;

/** A refusal of a pickle: names the file, and the byte offset of the opcode when there is one. */
export class TorchPickleError extends Error {
  readonly fileName: string;
  readonly offset: number | undefined;
  constructor(fileName: string, message: string, offset?: number) {
    super(`${fileName}: ${message}${offset === undefined ? '' : ` (at byte ${offset})`}`);
    this.name = 'TorchPickleError';
    this.fileName = fileName;
    this.offset = offset;
  }
}

/** A storage as a persistent id names it: archive entry data/<key> of `numel` elements. */
interface TorchStorageRef {
  readonly kind: 'storage';
  dtype: FloatDtype;
  /** The storage type's Python name, e.g. "torch.HalfStorage". */
  typeName: string;
  key: string;
  /** Device it was saved from ("cpu", "cuda:0"): informational, everything loads to the CPU. */
  location: string;
  numel: number;
}

/** A tensor: a strided view of a storage (what _rebuild_tensor_v2 builds). */
export interface TorchTensorRef {
  readonly kind: 'tensor';
  storage: TorchStorageRef;
  /** Offset into the storage, in elements. */
  offset: number;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Strides in elements, one per dimension. */
  stride: number[];
  requiresGrad: boolean;
}

// ---------------------------------------------------------------------------------------------
// Values on the machine's stack.
// ---------------------------------------------------------------------------------------------

interface PTuple {
  readonly kind: 'tuple';
  items: PValue[];
}
interface PList {
  readonly kind: 'list';
  items: PValue[];
}
interface PDict {
  readonly kind: 'dict';
  /** Keys are Python str or int (JS Map keeps insertion order, as OrderedDict and dict do). */
  entries: Map<string | number, PValue>;
  ordered: boolean;
}
interface PGlobal {
  readonly kind: 'global';
  name: string;
}
type PValue = null | boolean | number | string | PTuple | PList | PDict | PGlobal | TorchStorageRef | TorchTensorRef;

/** A Python-ish description of a value's type, for messages (never recurses). */
function typeName(v: PValue): string {
  if (v === null) return 'None';
  switch (typeof v) {
    case 'boolean':
      return 'a bool';
    case 'number':
      return 'an int';
    case 'string':
      return 'a str';
  }
  switch (v.kind) {
    case 'tuple':
      return `a tuple of ${v.items.length}`;
    case 'list':
      return 'a list';
    case 'dict':
      return 'a dict';
    case 'global':
      return `the global ${v.name}`;
    case 'storage':
      return `a storage (${v.typeName})`;
    case 'tensor':
      return 'a tensor';
  }
}

/** Opcode names, for messages about opcodes that are not allowed. */
const OPCODE_NAMES: Readonly<Record<number, string>> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2', 0x87: 'TUPLE3',
  0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS',
  0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME', 0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

function opcodeLabel(op: number): string {
  const hex = `0x${op.toString(16).padStart(2, '0')}`;
  const name = OPCODE_NAMES[op];
  return name ? `${name} (${hex})` : `${hex} (not a pickle opcode)`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Runs the restricted machine over `bytes` (a whole pickle) and returns the object STOP leaves:
 * a dict of name -> tensor. `fileName` prefixes every message (e.g. "x/adapter_model.bin: data.pkl").
 */
export function unpickleStateDict(bytes: Uint8Array, fileName: string): Map<string, TorchTensorRef> {
  const result = runPickle(bytes, fileName);
  const fail = (msg: string): never => {
    throw new TorchPickleError(fileName, msg);
  };
  if (result === null || typeof result !== 'object' || result.kind !== 'dict') {
    return fail(`the pickle holds ${typeName(result)}, not a state dict (a dict of tensor name -> tensor)`);
  }
  const out = new Map<string, TorchTensorRef>();
  for (const [k, v] of result.entries) {
    if (typeof k !== 'string') fail(`state dict key ${k} is an int, not a tensor name`);
    const key = k as string;
    if (v === null || typeof v !== 'object' || v.kind !== 'tensor') fail(`state dict entry ${JSON.stringify(key)} is ${typeName(v)}, not a tensor`);
    out.set(key, v as TorchTensorRef);
  }
  return out;
}

/** The machine: returns the value on the stack at STOP. */
function runPickle(bytes: Uint8Array, fileName: string): PValue {
  const n = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  /** Offset of the opcode being run (for messages). */
  let at = 0;
  /** Values pushed since the last MARK (MARK saves the stack below it, as Python's metastack does). */
  let stack: PValue[] = [];
  const marks: PValue[][] = [];
  const memo = new Map<number, PValue>();

  const fail = (msg: string, offset = at): never => {
    throw new TorchPickleError(fileName, msg, offset);
  };
  const op = () => OPCODE_NAMES[bytes[at]] ?? '?';
  const need = (k: number, what: string) => {
    if (pos + k > n) fail(`the pickle ends inside ${op()} (${what} needs ${k} bytes, ${n - pos} left): the file is truncated`);
  };
  const u8 = (): number => {
    need(1, 'an argument');
    return bytes[pos++];
  };
  const u16 = (): number => {
    need(2, 'an argument');
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4, 'an argument');
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4, 'an argument');
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  /** A little-endian unsigned 64-bit length that must fit in the remaining bytes. */
  const u64len = (): number => {
    need(8, 'a length');
    const lo = view.getUint32(pos, true);
    const hi = view.getUint32(pos + 4, true);
    pos += 8;
    if (hi !== 0) fail(`${op()} has a length of ${hi} * 2^32 + ${lo} bytes, past the end of the ${n}-byte pickle`);
    return lo;
  };
  const text = (len: number): string => {
    need(len, `a ${len}-byte string`);
    const s = bytes.subarray(pos, pos + len);
    pos += len;
    try {
      return utf8.decode(s);
    } catch {
      return fail(`${op()} holds a string that is not UTF-8`);
    }
  };
  const push = (v: PValue) => {
    stack.push(v);
  };
  const pop = (what: string): PValue => {
    if (stack.length === 0) fail(`${op()} needs ${what} but the stack is empty`);
    return stack.pop()!;
  };
  const top = (what: string): PValue => {
    if (stack.length === 0) fail(`${op()} needs ${what} but the stack is empty`);
    return stack[stack.length - 1];
  };
  /** Everything pushed since the last MARK; restores the stack below it. */
  const popMark = (): PValue[] => {
    const below = marks.pop();
    if (below === undefined) fail(`${op()} needs a MARK but there is none`);
    const items = stack;
    stack = below!;
    return items;
  };
  const tuple = (items: PValue[]): PTuple => ({ kind: 'tuple', items });
  const dictOf = (v: PValue, what: string): PDict => {
    if (v === null || typeof v !== 'object' || v.kind !== 'dict') return fail(`${op()} ${what} ${typeName(v)}, not a dict`);
    return v;
  };
  const setItem = (d: PDict, k: PValue, v: PValue) => {
    if (typeof k !== 'string' && typeof k !== 'number') fail(`${op()} uses ${typeName(k)} as a dict key (only str and int keys are accepted)`);
    const key = k as string | number;
    if (d.entries.has(key)) fail(`${op()} sets the dict key ${JSON.stringify(key)} twice`);
    d.entries.set(key, v);
  };
  const resolveGlobal = (module: string, name: string): PGlobal => {
    const full = `${module}.${name}`;
    if (full === ORDERED_DICT || full === REBUILD_TENSOR_V2 || full in TORCH_STORAGE_TYPES) return { kind: 'global', name: full };
    if (full in OTHER_STORAGE_TYPES) {
      return fail(`global ${full} is not allowed: ${OTHER_STORAGE_TYPES[full]} tensors cannot be adapter weights (float32, float16 or bfloat16 only)`);
    }
    return fail(
      `global ${JSON.stringify(full).slice(1, -1)} is not allowed: a state dict of tensors names only ${ALLOWED_GLOBALS.join(', ')} ` +
        '(nothing in the file is imported or run)',
    );
  };
  const memoGet = (i: number): PValue => {
    if (!memo.has(i)) fail(`${op()} reads memo entry ${i}, which was never stored`);
    return memo.get(i)!;
  };
  const int = (v: PValue, what: string): number => {
    if (typeof v !== 'number') return fail(`${op()}: ${what} is ${typeName(v)}, expected an int`);
    return v;
  };
  const intTuple = (v: PValue, what: string): number[] => {
    if (v === null || typeof v !== 'object' || v.kind !== 'tuple') return fail(`${op()}: ${what} is ${typeName(v)}, expected a tuple of ints`);
    return v.items.map((x, i) => {
      const d = int(x, `${what}[${i}]`);
      if (d < 0) fail(`${op()}: ${what}[${i}] is ${d}, expected >= 0`);
      return d;
    });
  };

  /** REDUCE: the callable is one of the allowed globals; each builds plain data. */
  const reduce = (f: PValue, args: PValue): PValue => {
    if (f === null || typeof f !== 'object' || f.kind !== 'global') return fail(`REDUCE calls ${typeName(f)}; only the allowed globals can be called`);
    if (args === null || typeof args !== 'object' || args.kind !== 'tuple') return fail(`REDUCE calls ${f.name} with ${typeName(args)}, not an argument tuple`);
    const a = args.items;
    if (f.name === ORDERED_DICT) {
      if (a.length !== 0) fail(`REDUCE calls ${ORDERED_DICT} with ${a.length} arguments; a state dict's OrderedDict is built empty and filled by SETITEMS`);
      return { kind: 'dict', entries: new Map(), ordered: true };
    }
    if (f.name === REBUILD_TENSOR_V2) {
      if (a.length !== 6 && a.length !== 7) fail(`REDUCE calls ${REBUILD_TENSOR_V2} with ${a.length} arguments, expected 6 or 7 (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`);
      const storage = a[0];
      if (storage === null || typeof storage !== 'object' || storage.kind !== 'storage') return fail(`${REBUILD_TENSOR_V2}: the storage argument is ${typeName(storage)}, expected a persistent storage id`);
      const offset = int(a[1], 'storage_offset');
      if (offset < 0) fail(`${REBUILD_TENSOR_V2}: storage_offset is ${offset}, expected >= 0`);
      const shape = intTuple(a[2], 'size');
      const stride = intTuple(a[3], 'stride');
      if (shape.length !== stride.length) fail(`${REBUILD_TENSOR_V2}: size has ${shape.length} dimensions but stride has ${stride.length}`);
      if (typeof a[4] !== 'boolean') fail(`${REBUILD_TENSOR_V2}: requires_grad is ${typeName(a[4])}, expected a bool`);
      const hooks = a[5];
      if (hooks === null || typeof hooks !== 'object' || hooks.kind !== 'dict' || hooks.entries.size !== 0) {
        fail(`${REBUILD_TENSOR_V2}: backward_hooks is ${typeName(hooks)}, expected an empty OrderedDict`);
      }
      if (a.length === 7 && a[6] !== null && !(typeof a[6] === 'object' && a[6].kind === 'dict')) {
        fail(`${REBUILD_TENSOR_V2}: metadata is ${typeName(a[6])}, expected None or a dict`);
      }
      return { kind: 'tensor', storage, offset, shape, stride, requiresGrad: a[4] as boolean };
    }
    return fail(`REDUCE calls ${f.name}, which only names a storage type inside a persistent id and cannot be called`);
  };

  /** BINPERSID: ('storage', storage_type, key, location, numel). */
  const persistent = (pid: PValue): TorchStorageRef => {
    if (pid === null || typeof pid !== 'object' || pid.kind !== 'tuple') return fail(`BINPERSID: the persistent id is ${typeName(pid)}, expected ('storage', storage_type, key, location, numel)`);
    const p = pid.items;
    if (p.length !== 5 || p[0] !== 'storage') {
      return fail(`BINPERSID: the persistent id is a tuple of ${p.length} starting with ${typeName(p[0] ?? null)}, expected ('storage', storage_type, key, location, numel)`);
    }
    const t = p[1];
    if (t === null || typeof t !== 'object' || t.kind !== 'global' || !(t.name in TORCH_STORAGE_TYPES)) {
      return fail(`BINPERSID: the storage type is ${typeName(t)}, expected one of ${Object.keys(TORCH_STORAGE_TYPES).join(', ')}`);
    }
    if (typeof p[2] !== 'string') fail(`BINPERSID: the storage key is ${typeName(p[2])}, expected a str`);
    if (typeof p[3] !== 'string') fail(`BINPERSID: the storage location is ${typeName(p[3])}, expected a str`);
    const numel = int(p[4], 'the element count');
    if (numel < 0) fail(`BINPERSID: the element count is ${numel}, expected >= 0`);
    return { kind: 'storage', dtype: TORCH_STORAGE_TYPES[t.name], typeName: t.name, key: p[2] as string, location: p[3] as string, numel };
  };

  /** Reads a GLOBAL argument line (module or name), newline-terminated, ASCII. */
  const line = (what: string): string => {
    const end = Math.min(n, pos + MAX_GLOBAL_LINE + 1);
    let i = pos;
    while (i < end && bytes[i] !== 0x0a) i++;
    if (i >= n) fail(`the pickle ends inside GLOBAL's ${what} line: the file is truncated`);
    if (i >= end) fail(`GLOBAL's ${what} line is longer than ${MAX_GLOBAL_LINE} bytes`);
    let s = '';
    for (let j = pos; j < i; j++) {
      const c = bytes[j];
      if (c < 0x20 || c > 0x7e) fail(`GLOBAL's ${what} line holds byte 0x${c.toString(16).padStart(2, '0')}, not printable ASCII`);
      s += String.fromCharCode(c);
    }
    pos = i + 1;
    return s;
  };

  for (;;) {
    if (pos >= n) {
      return fail(n === 0 ? 'the pickle is empty' : 'the pickle ends without a STOP opcode: the file is truncated', n);
    }
    at = pos;
    const code = bytes[pos++];
    switch (code) {
      case 0x80: {
        // PROTO
        const v = u8();
        if (v > 5) fail(`PROTO ${v}: pickle protocol ${v} is newer than 5`);
        break;
      }
      case 0x95: // FRAME (protocol 4): an 8-byte frame length, a framing hint only
        u64len();
        break;
      case 0x28: // MARK
        if (marks.length >= MAX_MARK_DEPTH) fail(`MARKs nest deeper than ${MAX_MARK_DEPTH}`);
        marks.push(stack);
        stack = [];
        break;
      case 0x2e: {
        // STOP
        if (marks.length > 0) fail(`STOP with ${marks.length} MARK(s) still open`);
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack, expected 1`);
        return pop('the result');
      }
      case 0x7d: // EMPTY_DICT
        push({ kind: 'dict', entries: new Map(), ordered: false });
        break;
      case 0x5d: // EMPTY_LIST
        push({ kind: 'list', items: [] });
        break;
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x74: // TUPLE
        push(tuple(popMark()));
        break;
      case 0x85: {
        // TUPLE1
        const a = pop('1 item');
        push(tuple([a]));
        break;
      }
      case 0x86: {
        // TUPLE2
        const b = pop('2 items');
        const a = pop('2 items');
        push(tuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop('3 items');
        const b = pop('3 items');
        const a = pop('3 items');
        push(tuple([a, b, c]));
        break;
      }
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: {
        // LONG1: a length byte, then that many bytes of a little-endian two's-complement integer
        const len = u8();
        need(len, `a ${len}-byte integer`);
        if (len > 8) fail(`LONG1 holds a ${len}-byte integer; sizes and offsets fit in 8 bytes`);
        let v = 0n;
        for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
        if (len > 0 && bytes[pos + len - 1] & 0x80) v -= 1n << BigInt(8 * len);
        pos += len;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) fail(`LONG1 integer ${v} is beyond 2^53 - 1`);
        push(Number(v));
        break;
      }
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64len()));
        break;
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = line('module');
        const name = line('name');
        push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop('a name');
        const module = pop('a module');
        if (typeof module !== 'string' || typeof name !== 'string') fail(`STACK_GLOBAL needs two str, found ${typeName(module)} and ${typeName(name)}`);
        push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x51: // BINPERSID
        push(persistent(pop('a persistent id')));
        break;
      case 0x52: {
        // REDUCE
        const args = pop('an argument tuple');
        const f = pop('a callable');
        push(reduce(f, args));
        break;
      }
      case 0x62: {
        // BUILD: only an OrderedDict's attribute dict (a state dict's `_metadata`), which is ignored
        const state = pop('a state');
        const obj = top('an object to build');
        if (obj === null || typeof obj !== 'object' || obj.kind !== 'dict' || !obj.ordered) fail(`BUILD on ${typeName(obj)}; only an OrderedDict's attributes can be set`);
        if (state !== null && !(typeof state === 'object' && state.kind === 'dict')) fail(`BUILD with ${typeName(state)} as the state, expected a dict of attributes`);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop('a value');
        const k = pop('a key');
        setItem(dictOf(top('a dict'), 'sets an item of'), k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) fail(`SETITEMS with an odd number (${items.length}) of keys and values`);
        const d = dictOf(top('a dict'), 'sets items of');
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop('a value');
        const l = top('a list');
        if (l === null || typeof l !== 'object' || l.kind !== 'list') fail(`APPEND to ${typeName(l)}, not a list`);
        (l as PList).items.push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = top('a list');
        if (l === null || typeof l !== 'object' || l.kind !== 'list') fail(`APPENDS to ${typeName(l)}, not a list`);
        for (const v of items) (l as PList).items.push(v);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top('a value to store'));
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top('a value to store'));
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top('a value to store'));
        break;
      case 0x68: // BINGET
        push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        push(memoGet(u32()));
        break;
      default:
        return fail(`opcode ${opcodeLabel(code)} is not allowed: a state dict of tensors does not use it (nothing in the file is imported or run)`);
    }
  }
}
