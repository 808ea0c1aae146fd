#!/usr/bin/env python3
"""
Independent float64 cross-check of a LoRAMoE loss, in numpy only (no PyTorch).

It ports the forward semantics of
  * the official LoRAMoE code (github.com/Ablustrund/LoRAMoE, a fork of PEFT + transformers):
    peft/tuners/lora.py `Linear.forward` and `cv_squared`, transformers/models/llama/modeling_llama.py
    `LlamaMLP.forward` (gate/up/down each return (y, blc_loss), the three are added), `LlamaModel`
    (blc losses summed over layers), `LlamaForCausalLM` (loss = CE + summed blc losses);
  * Hugging Face transformers' current Llama for the backbone (the official fork predates grouped
    key/value heads and the `head_dim` config field): RMSNorm, RoPE (rotate_half, inv_freq computed
    in float32 as HF does), grouped-query causal attention with the padding mask, SwiGLU MLP, tied or
    untied head, optional q/k/v/o biases when the checkpoint has them.

Inputs
  --model DIR    Hugging Face model directory: config.json and model.safetensors (or
                 model.safetensors.index.json plus shards). Dtypes F32, F16, BF16 (F64 accepted).
  --adapter DIR  adapter_config.json (r, lora_alpha, lora_nums, blc_alpha, blc_weight, target_modules)
                 and adapter_model.safetensors with the official keys
                   base_model.model.model.layers.{L}.mlp.{proj}.lora_route.weight  [N, in]
                   base_model.model.model.layers.{L}.mlp.{proj}.lora_A{j}.weight   [r, in]
                   base_model.model.model.layers.{L}.mlp.{proj}.lora_B{j}.weight   [out, r]
                 Omit it for the plain backbone (lbc = 0).
  --batch FILE   JSON {"input_ids": [B][T], "labels": [B][T], "attention_mask": [B][T],
                 "task_types": [B] (or [B][T] with a constant row)}. Labels are Hugging Face style,
                 NOT shifted: labels[b][t] is the token at position t (or -100), and the loss shifts
                 them (logits[:, :-1] against labels[:, 1:]), exactly as the official collator and
                 LlamaForCausalLM do. Right padding.

Options
  --q-over all   (default) the official code: Q[b, n] = route_weight.sum(dim=1), i.e. over every
                 position of the row, padding included.
  --q-over real  Q over positions with attention_mask 1 only.
  --pad-attn eager (default) the official modeling_llama.py attention: padding keys are masked, and a
                 padding query still attends to its row's real keys (causal), so padding positions
                 get real hidden states and real router weights.
  --pad-attn flash the official training script's --flash_attn patch (flash_attn_patch.py): unpad /
                 pad_input make the attention output exactly 0 at padding positions (o_proj is then
                 applied to zeros). Real positions are unaffected; only `--q-over all` can differ.
  --rope-tables f32 (default) cos/sin tables as HF's float32 model holds them (freqs = position *
                 inv_freq and cos/sin rounded to float32); f64: the same angles' exact cos/sin.

Output (stdout): JSON {"ce", "lbc", "loss", "count", ...}: ce = mean cross-entropy over the
count = number of labels[:, 1:] != -100; lbc = sum over every adapted projection of every layer of
  blc_weight * var(Z, unbiased) / (mean(Z)^2 + 1e-10),   Z = (Q * I).flatten(),
  I[b, n] = 1 + blc_alpha if (task_type[b] == 1 and n < N/2) or (task_type[b] == 0 and n >= N/2)
            else 1 - blc_alpha    (a task type other than 0/1 gets 1 - blc_alpha everywhere, as in
            the official torch.where on the two boolean halves);
loss = ce + lbc. Dropout is off (evaluation).
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

IGNORE_INDEX = -100
CV_EPS = 1e-10  # cv_squared's eps
MAX_HEADER = 100 * 1024 * 1024

# ---------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------

_DTYPES = {'F64': 8, 'F32': 4, 'F16': 2, 'BF16': 2}


def read_safetensors(path):
    """name -> float64 ndarray. Checks the header and that the tensors tile the data section."""
    with open(path, 'rb') as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f'{path}: shorter than 8 bytes')
    (n,) = struct.unpack('<Q', raw[:8])
    if n > MAX_HEADER or 8 + n > len(raw):
        raise ValueError(f'{path}: header length {n} is over the limit or past the end of the file')
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    if not isinstance(header, dict):
        raise ValueError(f'{path}: header is not a JSON object')
    header.pop('__metadata__', None)
    data = memoryview(raw)[8 + n:]
    spans = []
    out = {}
    for name, info in header.items():
        dtype, shape, (begin, end) = info['dtype'], info['shape'], info['data_offsets']
        if dtype not in _DTYPES:
            raise ValueError(f'{path}: tensor {name} has dtype {dtype} (supported: {", ".join(_DTYPES)})')
        count = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                raise ValueError(f'{path}: tensor {name} has shape {shape}')
            count *= d
        if not (0 <= begin <= end <= len(data)) or end - begin != count * _DTYPES[dtype]:
            raise ValueError(f'{path}: tensor {name} [{begin}, {end}) does not hold {shape} {dtype}')
        spans.append((begin, end, name))
        buf = data[begin:end]
        if dtype == 'F64':
            a = np.frombuffer(buf, dtype='<f8')
        elif dtype == 'F32':
            a = np.frombuffer(buf, dtype='<f4')
        elif dtype == 'F16':
            a = np.frombuffer(buf, dtype='<f2')
        else:  # BF16: the top 16 bits of a float32
            a = (np.frombuffer(buf, dtype='<u2').astype(np.uint32) << 16).view(np.float32)
        out[name] = a.astype(np.float64).reshape(shape)
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise ValueError(f'{path}: tensor {name} begins at {begin}, expected {pos} (hole or overlap)')
        pos = end
    if pos != len(data):
        raise ValueError(f'{path}: the data section has {len(data) - pos} bytes after the last tensor')
    return out


def read_model_weights(model_dir):
    single = os.path.join(model_dir, 'model.safetensors')
    index = os.path.join(model_dir, 'model.safetensors.index.json')
    if os.path.exists(single):
        return read_safetensors(single)
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)['weight_map']
        out = {}
        for shard in sorted(set(weight_map.values())):
            out.update(read_safetensors(os.path.join(model_dir, shard)))
        missing = [k for k in weight_map if k not in out]
        if missing:
            raise ValueError(f'{index}: tensors listed but not in their shard: {missing[:5]}')
        return out
    raise FileNotFoundError(f'{model_dir}: no model.safetensors or model.safetensors.index.json')


# ---------------------------------------------------------------------------------------------
# Llama (Hugging Face semantics), float64
# ---------------------------------------------------------------------------------------------


class Config:
    def __init__(self, j):
        mt = j.get('model_type', 'llama')
        if mt not in ('llama', 'mistral', 'qwen2'):
            raise ValueError(f'config.json: model_type {mt!r} (this port implements the Llama block)')
        if j.get('hidden_act', 'silu') != 'silu':
            raise ValueError(f'config.json: hidden_act {j.get("hidden_act")!r}, only silu')
        rs = j.get('rope_scaling')
        if rs not in (None, {}) and (rs.get('rope_type') or rs.get('type')) != 'default':
            raise ValueError(f'config.json: rope_scaling {rs} is not implemented (plain RoPE only)')
        self.model_type = mt
        self.C = j['hidden_size']
        self.F = j['intermediate_size']
        self.L = j['num_hidden_layers']
        self.H = j['num_attention_heads']
        self.KV = j.get('num_key_value_heads') or self.H
        self.D = j.get('head_dim') or self.C // self.H
        self.eps = j.get('rms_norm_eps', 1e-6)
        self.theta = j.get('rope_theta', 10000.0)
        self.V = j['vocab_size']
        # HF's LlamaConfig default is False; Qwen2's is False too.
        self.tied = bool(j.get('tie_word_embeddings', False))
        self.sliding_window = j.get('sliding_window') if j.get('use_sliding_window', mt == 'mistral') else None
        if self.H % self.KV != 0:
            raise ValueError('num_attention_heads must be a multiple of num_key_value_heads')


def rms_norm(x, w, eps):
    # LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_inv_freq(D, theta):
    """HF's default RoPE inv_freq, computed in float32 as torch does, returned as float64.
    (1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)))"""
    e = np.arange(0, D, 2, dtype=np.int64).astype(np.float32) / np.float32(D)
    return (np.float32(1.0) / (np.float32(theta) ** e)).astype(np.float64)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def silu(x):
    return x / (1.0 + np.exp(-x))


class Adapter:
    def __init__(self, adapter_dir):
        with open(os.path.join(adapter_dir, 'adapter_config.json')) as f:
            j = json.load(f)
        self.config = j
        self.r = j['r']
        self.alpha = j['lora_alpha']
        self.N = j['lora_nums']
        self.blc_alpha = j.get('blc_alpha') or 0.0
        self.blc_weight = j.get('blc_weight') or 0.0
        self.scaling = self.alpha / self.r  # official: self.lora_alpha / self.r
        tm = j['target_modules']
        self.targets = tm.split(',') if isinstance(tm, str) else list(tm)
        mlp = {'gate_proj', 'up_proj', 'down_proj'}
        if not set(self.targets) <= mlp:
            # The official fork only threads task_types through LlamaMLP; an adapted attention
            # projection would return a (y, blc) tuple into LlamaAttention's .view and fail.
            raise ValueError(f'target_modules {self.targets}: the official code adapts MLP projections only')
        if self.N % 2 != 0:
            note(f'lora_nums {self.N} is odd: the official boost mask (two halves of lora_nums//2) would not have N columns')
        self.tensors = read_safetensors(os.path.join(adapter_dir, 'adapter_model.safetensors'))
        extra = j.get('loramoe_playground') or {}
        if 'groups' in extra:
            half = self.N // 2
            official = [list(range(half, self.N)), list(range(0, half))]
            if [sorted(g) for g in extra['groups']] != official:
                note(f'loramoe_playground.groups {extra["groups"]} differ from the official binary grouping '
                     f'{official}; this check uses the official one')

    def get(self, layer, proj):
        if proj not in self.targets:
            return None
        p = f'base_model.model.model.layers.{layer}.mlp.{proj}'
        t = self.tensors
        return {
            'route': t[f'{p}.lora_route.weight'],
            'A': [t[f'{p}.lora_A{j}.weight'] for j in range(self.N)],
            'B': [t[f'{p}.lora_B{j}.weight'] for j in range(self.N)],
        }


def note(msg):
    print(f'note: {msg}', file=sys.stderr)


def lora_moe_linear(x, W, bias, ad, adapter, task_types, q_mask):
    """peft/tuners/lora.py Linear.forward (eval: dropout is the identity) and its blc loss.
    x [B, T, K], W [Nout, K]. Returns (y [B, T, Nout], blc scalar)."""
    result = x @ W.T
    if bias is not None:
        result = result + bias
    if ad is None:
        return result, 0.0
    N = adapter.N
    # route_weight = softmax(lora_route(x), dim=-1)                                     [B, T, N]
    route_weight = softmax(x @ ad['route'].T, axis=-1)
    for i in range(N):
        # result += route_weight[:, :, i, None] * lora_B_i(lora_A_i(dropout(x))) * scaling
        result = result + route_weight[:, :, i:i + 1] * ((x @ ad['A'][i].T) @ ad['B'][i].T) * adapter.scaling
    blc = 0.0
    if task_types is not None and adapter.blc_weight != 0:
        # Q = route_weight.sum(dim=1) (official: every position; q_mask = 1 everywhere for --q-over all)
        Q = np.sum(route_weight * q_mask[:, :, None], axis=1)                               # [B, N]
        tt = task_types.reshape(-1, 1)
        half = N // 2
        inside = np.concatenate([np.repeat(tt == 1, half, axis=1), np.repeat(tt == 0, half, axis=1)], axis=1)
        I = np.where(inside, 1.0 + adapter.blc_alpha, 1.0 - adapter.blc_alpha)           # [B, N]
        Z = (Q * I).flatten()
        if Z.shape[0] == 1:
            blc = 0.0  # cv_squared returns 0 for a single value
        else:
            blc = float(np.var(Z, ddof=1) / (np.mean(Z) ** 2 + CV_EPS)) * adapter.blc_weight
    return result, blc


def forward(cfg, w, adapter, input_ids, attention_mask, task_types, q_over, pad_attn, rope_tables='f32'):
    """Returns (logits [B, T, V], blc_total, blc_per_projection list)."""
    B, T = input_ids.shape
    H, KV, D = cfg.H, cfg.KV, cfg.D
    am = attention_mask.astype(bool)
    q_mask = np.ones((B, T)) if q_over == 'all' else am.astype(np.float64)

    x = w['model.embed_tokens.weight'][input_ids]                                          # [B, T, C]

    # RoPE tables: position_ids = arange(T) for every row (right padding).
    inv_freq = rope_inv_freq(D, cfg.theta)                                                  # [D/2]
    freqs = np.arange(T, dtype=np.float64)[:, None] * inv_freq[None, :]                     # [T, D/2]
    if rope_tables == 'f32':
        # HF builds freqs = position * inv_freq and cos/sin in float32 (autocast off), then casts
        # them to the activations' dtype: model that rounding (correctly rounded float32 values).
        freqs = freqs.astype(np.float32).astype(np.float64)
    emb = np.concatenate([freqs, freqs], axis=-1)                                           # [T, D]
    cos, sin = np.cos(emb), np.sin(emb)
    if rope_tables == 'f32':
        cos = cos.astype(np.float32).astype(np.float64)
        sin = sin.astype(np.float32).astype(np.float64)

    # Attention mask: key j visible to query i when j <= i and attention_mask[b, j] == 1.
    causal = np.tril(np.ones((T, T), dtype=bool))
    if cfg.sliding_window is not None:
        causal &= ~np.tril(np.ones((T, T), dtype=bool), -cfg.sliding_window)
    allowed = causal[None, :, :] & am[:, None, :]                                           # [B, T, T]
    # A query with no visible key (a row that is all padding): HF's float32 mask adds finfo.min to
    # every score, so they all equal finfo.min and the softmax is uniform over all T keys.
    empty = ~np.any(allowed, axis=-1)                                                       # [B, T]

    blc_total = 0.0
    blc_parts = []
    for l in range(cfg.L):
        p = f'model.layers.{l}.'
        # --- attention ---
        h = rms_norm(x, w[p + 'input_layernorm.weight'], cfg.eps)

        def proj(name, n_heads):
            y = h @ w[p + f'self_attn.{name}.weight'].T
            b = w.get(p + f'self_attn.{name}.bias')
            if b is not None:
                y = y + b
            return y.reshape(B, T, n_heads, D).transpose(0, 2, 1, 3)                        # [B, h, T, D]

        q, k, v = proj('q_proj', H), proj('k_proj', KV), proj('v_proj', KV)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = H // KV                                                                        # repeat_kv
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        scores = (q @ k.transpose(0, 1, 3, 2)) * (D ** -0.5)                                # [B, H, T, T]
        scores = np.where(allowed[:, None], scores, -np.inf)
        scores = np.where(empty[:, None, :, None], 0.0, scores)
        att = softmax(scores, axis=-1)
        o = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, H * D)                             # [B, T, H*D]
        if pad_attn == 'flash':
            o = o * am[:, :, None]  # pad_input fills padding rows with zeros
        o = o @ w[p + 'self_attn.o_proj.weight'].T
        ob = w.get(p + 'self_attn.o_proj.bias')
        if ob is not None:
            o = o + ob
        x = x + o

        # --- MLP (official LlamaMLP: each projection returns (y, blc), the three blc are added) ---
        h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], cfg.eps)

        def lin(name, inp):
            ad = adapter.get(l, name) if adapter is not None else None
            return lora_moe_linear(inp, w[p + f'mlp.{name}.weight'], w.get(p + f'mlp.{name}.bias'), ad, adapter, task_types, q_mask)

        g, lg = lin('gate_proj', h)
        u, lu = lin('up_proj', h)
        d, ld = lin('down_proj', silu(g) * u)
        x = x + d
        for name, val in (('gate_proj', lg), ('up_proj', lu), ('down_proj', ld)):
            if adapter is not None and name in adapter.targets:
                blc_parts.append({'layer': l, 'proj': name, 'lbc': val})
        blc_total += lg + lu + ld

    x = rms_norm(x, w['model.norm.weight'], cfg.eps)
    head = w['model.embed_tokens.weight'] if cfg.tied or 'lm_head.weight' not in w else w['lm_head.weight']
    if not cfg.tied and 'lm_head.weight' not in w:
        raise ValueError('tie_word_embeddings is false but the checkpoint has no lm_head.weight')
    logits = x @ head.T                                                                     # [B, T, V]
    return logits, blc_total, blc_parts


def causal_lm_ce(logits, labels):
    """LlamaForCausalLM: CrossEntropyLoss()(logits[:, :-1], labels[:, 1:]), mean over labels != -100."""
    V = logits.shape[-1]
    sl = logits[:, :-1, :].reshape(-1, V)
    lb = labels[:, 1:].reshape(-1)
    keep = lb != IGNORE_INDEX
    if np.any((lb[keep] < 0) | (lb[keep] >= V)):
        raise ValueError('a label is outside the vocabulary')
    sl, lb = sl[keep], lb[keep]
    m = np.max(sl, axis=-1)
    lse = m + np.log(np.sum(np.exp(sl - m[:, None]), axis=-1))
    nll = lse - sl[np.arange(lb.shape[0]), lb]
    count = int(keep.sum())
    return (float(np.mean(nll)) if count > 0 else float('nan')), count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', required=True)
    ap.add_argument('--adapter')
    ap.add_argument('--batch', required=True)
    ap.add_argument('--q-over', choices=['all', 'real'], default='all')
    ap.add_argument('--pad-attn', choices=['eager', 'flash'], default='eager')
    ap.add_argument('--rope-tables', choices=['f32', 'f64'], default='f32',
                    help='f32 (default): cos/sin tables rounded to float32 as HF builds them; f64: exact')
    ap.add_argument('--per-sample', action='store_true',
                    help='also evaluate every row as a batch of one (the official script: batch size 1 per device)')
    ap.add_argument('--per-layer', action='store_true', help='also print the lbc of every adapted projection')
    a = ap.parse_args(argv)

    with open(os.path.join(a.model, 'config.json')) as f:
        cfg = Config(json.load(f))
    w = read_model_weights(a.model)
    adapter = Adapter(a.adapter) if a.adapter else None

    with open(a.batch) as f:
        bj = json.load(f)
    input_ids = np.array(bj['input_ids'], dtype=np.int64)
    labels = np.array(bj['labels'], dtype=np.int64)
    B, T = input_ids.shape
    attention_mask = np.array(bj.get('attention_mask', np.ones((B, T))), dtype=np.int64)
    tt = bj.get('task_types')
    task_types = None
    if tt is not None:
        tt = np.array(tt, dtype=np.int64)
        if tt.ndim == 2:
            if np.any(tt != tt[:, :1]):
                raise ValueError('task_types [B][T] must be constant along each row')
            tt = tt[:, 0]
        if tt.shape != (B,):
            raise ValueError(f'task_types has shape {tt.shape}, expected [{B}]')
        task_types = tt
        if np.any((tt != 0) & (tt != 1)):
            note('task types other than 0/1 get 1 - blc_alpha on every expert (official torch.where on the two halves)')
    if labels.shape != (B, T) or attention_mask.shape != (B, T):
        raise ValueError('input_ids, labels and attention_mask must all be [B][T]')
    if np.any((input_ids < 0) | (input_ids >= cfg.V)):
        raise ValueError('an input id is outside the vocabulary')

    logits, lbc, parts = forward(cfg, w, adapter, input_ids, attention_mask, task_types, a.q_over, a.pad_attn, a.rope_tables)
    ce, count = causal_lm_ce(logits, labels)
    out = {'ce': ce, 'lbc': lbc, 'loss': ce + lbc, 'count': count, 'q_over': a.q_over, 'pad_attn': a.pad_attn,
           'B': B, 'T': T, 'real_tokens': int(attention_mask.sum())}
    if a.per_layer:
        out['lbc_per_projection'] = parts
    if a.per_sample:
        out['per_sample'] = per_sample(cfg, w, adapter, input_ids, labels, attention_mask, task_types, a.rope_tables)
    print(json.dumps(out))


def per_sample(cfg, w, adapter, input_ids, labels, attention_mask, task_types, rope_tables):
    """Every row as a batch of its own, trimmed to its real tokens (what the official script does with
    per_device_*_batch_size 1: no padding, so Q over all positions = Q over real tokens).
    ce: token-weighted over rows (sum of every row's NLL / all targets); lbc: mean of the rows' lbc;
    trainer_eval_loss: mean over rows of (row ce + row lbc), as HF Trainer's evaluation_loop averages
    per-batch losses weighted by batch size."""
    rows = []
    for b in range(input_ids.shape[0]):
        m = attention_mask[b]
        n = int(m.sum())
        if np.any(m[:n] != 1) or np.any(m[n:] != 0):
            raise ValueError(f'row {b} is not right-padded')
        if np.any(labels[b, n:] != IGNORE_INDEX):
            raise ValueError(f'row {b} has labels on padding')
        tt = None if task_types is None else task_types[b:b + 1]
        logits, lbc, _ = forward(cfg, w, adapter, input_ids[b:b + 1, :n], attention_mask[b:b + 1, :n], tt, 'all', 'eager', rope_tables)
        ce, count = causal_lm_ce(logits, labels[b:b + 1, :n])
        rows.append({'ce': ce, 'lbc': lbc, 'count': count, 'tokens': n})
    total = sum(r['count'] for r in rows)
    return {
        'ce': sum(r['ce'] * r['count'] for r in rows if r['count'] > 0) / total if total > 0 else float('nan'),
        'lbc': float(np.mean([r['lbc'] for r in rows])),
        'trainer_eval_loss': float(np.mean([r['ce'] + r['lbc'] for r in rows])),
        'count': total,
        'rows': rows,
    }


if __name__ == '__main__':
    main()
