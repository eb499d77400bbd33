"""Plain reference of BSWA (Algorithm 1) and TransformerFAM (Algorithm 2) of Hwang et al. (arXiv 2404.09173),
written from the paper with Python loops: every block and layer recomputed from scratch, attention as an
explicit softmax per query over an explicit list of keys, RoPE from its formula. The HF model supplies only
its weights (projections, norms, FFN). The parity tests compare the fast streaming path (fam.py) with it.
"""

import math

import torch


def rope(x, pos, theta):
    """x (H, T, hd) rotated to integer positions pos (T,) with base theta (rotate-half convention of Llama)."""
    hd = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = pos.double()[:, None] * inv[None]  # (T, hd/2)
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1).to(x.dtype), torch.cat([ang.sin(), ang.sin()], -1).to(x.dtype)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Llama:
    def __init__(self, model):
        self.m, c = model, model.config
        self.layers, self.H = model.model.layers, c.num_attention_heads
        self.Hkv = c.num_key_value_heads
        self.hd = c.hidden_size // self.H
        self.theta = c.rope_parameters["rope_theta"]

    def embed(self, ids, pos):
        return self.m.model.embed_tokens(ids)

    def qkv(self, li, x, pos, rotate=True):  # x (T, D) -> (H, T, hd) each, k/v repeated to H heads
        lay = self.layers[li]
        h = lay.input_layernorm(x)
        q = lay.self_attn.q_proj(h).view(-1, self.H, self.hd).transpose(0, 1)
        k = lay.self_attn.k_proj(h).view(-1, self.Hkv, self.hd).transpose(0, 1)
        v = lay.self_attn.v_proj(h).view(-1, self.Hkv, self.hd).transpose(0, 1)
        if rotate:
            q, k = rope(q, pos, self.theta), rope(k, pos, self.theta)
        rep = self.H // self.Hkv
        return q, k.repeat_interleave(rep, 0), v.repeat_interleave(rep, 0)

    def out(self, li, o):
        return self.layers[li].self_attn.o_proj(o)

    def ffn(self, li, x):
        lay = self.layers[li]
        return x + lay.mlp(lay.post_attention_layernorm(x))

    def head(self, x):
        return self.m.lm_head(self.m.model.norm(x))


class GPT2:
    def __init__(self, model):
        self.m, c = model, model.config
        self.layers, self.H, self.hd = model.transformer.h, c.n_head, c.n_embd // c.n_head
        self.D = c.n_embd

    def embed(self, ids, pos):
        return self.m.transformer.wte(ids) + self.m.transformer.wpe(pos)

    def qkv(self, li, x, pos, rotate=True):
        q, k, v = self.layers[li].attn.c_attn(self.layers[li].ln_1(x)).split(self.D, -1)
        return tuple(z.view(-1, self.H, self.hd).transpose(0, 1) for z in (q, k, v))

    def out(self, li, o):
        return self.layers[li].attn.c_proj(o)

    def ffn(self, li, x):
        return x + self.layers[li].mlp(self.layers[li].ln_2(x))

    def head(self, x):
        return self.m.lm_head(self.m.transformer.ln_f(x))


def attention(q, keys, vals, visible):
    """One query at a time: softmax(q . k / sqrt(hd)) over the keys it may see. q (H, Tq, hd) -> (Tq, H*hd)."""
    H, Tq, hd = q.shape
    out = torch.zeros(Tq, H * hd, dtype=q.dtype)
    for i in range(Tq):
        idx = [j for j in range(keys.shape[1]) if visible(i, j)]
        for h in range(H):
            s = torch.stack([q[h, i] @ keys[h, j] for j in idx]) / math.sqrt(hd)
            w = torch.softmax(s, 0)
            out[i, h * hd:(h + 1) * hd] = sum(w[a] * vals[h, j] for a, j in enumerate(idx))
    return out


def reference(arch, ids, block, mem, fam_len, prompt=None, zero_first=True, positions="last", start=0,
              initial=None):
    """Logits (T, V) of one sequence ids (T,) and F_tau per completed block [(L, fam_len, D)], from the
    definitions. `initial`: a given F per layer (not F_0: no zero residual) instead of the prompt's."""
    L, T = len(arch.layers), ids.shape[0]
    rotate = positions != "float"

    def fpos(k):  # positions of F_k
        if positions == "zero":
            return torch.full((fam_len,), start)
        return start + k * block - fam_len + torch.arange(fam_len)

    fam = [None] * L
    first = [initial is None] * L
    if fam_len and initial is None:
        h = prompt
        for li in range(L):  # F_0: the prompt passed up the layers, full attention among FAM tokens only
            q, k, v = arch.qkv(li, h, fpos(0), rotate)
            h = arch.ffn(li, h + arch.out(li, attention(q, k, v, lambda i, j: True)))
            fam[li] = h
    elif fam_len:
        fam = list(initial)
    K = [[] for _ in range(L)]
    V = [[] for _ in range(L)]
    logits, history = [], []
    for tau, a in enumerate(range(0, T, block)):
        b = min(a + block, T)
        pos = start + torch.arange(a, b)
        x = arch.embed(ids[a:b], pos)
        new_fam = list(fam)
        for li in range(L):
            q, k, v = arch.qkv(li, x, pos)
            mk = K[li][max(0, tau - mem):tau] if mem else []
            keys, vals = [*mk], [*V[li][max(0, tau - mem):tau]] if mem else []
            n_mem = sum(t.shape[1] for t in keys)
            n_fam = 0
            if fam_len:
                _, kf, vf = arch.qkv(li, fam[li], fpos(tau), rotate)
                keys.append(kf)
                vals.append(vf)
                n_fam = fam_len
            keys.append(k)
            vals.append(v)
            kk, vv = torch.cat(keys, 1), torch.cat(vals, 1)
            ctx = n_mem + n_fam
            o = attention(q, kk, vv, lambda i, j, c=ctx: j < c or j - c <= i)  # memory + FAM, own block causal
            if fam_len and b - a == block:  # a complete block is compressed (FAM queries: FAM + whole block)
                qf, kf, vf = arch.qkv(li, fam[li], fpos(tau), rotate)
                of = attention(qf, torch.cat([kf, k], 1), torch.cat([vf, v], 1), lambda i, j: True)
                resid = torch.zeros_like(fam[li]) if first[li] and zero_first else fam[li]
                new_fam[li] = arch.ffn(li, resid + arch.out(li, of))
                first[li] = False
            K[li].append(k)
            V[li].append(v)
            x = arch.ffn(li, x + arch.out(li, o))
        fam = new_fam
        if fam_len and b - a == block:
            history.append(torch.stack(fam))
        logits.append(arch.head(x))
    return torch.cat(logits, 0), history
