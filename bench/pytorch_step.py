# The training steps of `build/bench steps` in PyTorch, for the comparison in docs/performance.md
# (optional; not part of make or make test). The same models and the same step: zero the gradients,
# forward, backward, clip the global norm to 1, AdamW with decay 0.1 on the 2-D parameters only.
#
# On torch 2.x it uses what a PyTorch user would: F.scaled_dot_product_attention (fused attention),
# AdamW(fused=True), and for bf16 autocast (fp32 weights, bf16 matmuls). On torch 1.13 (Debian's
# python3-torch) it falls back to attention written out and the for-each AdamW; there run it with
# OPENBLAS_CORETYPE=SKYLAKEX, or its matmuls are slow.
#
#   taskset -c 0-1 python3 bench/pytorch_step.py --threads 2 --dtype both
#   python3 bench/pytorch_step.py --models gpt2 --batch 16 --seq 256 --threads 16 --reps 3
import argparse, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class Block(nn.Module):
    def __init__(s, C, NH):
        super().__init__()
        s.ln_1, s.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.c_attn, s.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.c_fc, s.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        s.NH = NH

    def attention(s, q, k, v):  # (B, NH, T, hs) each
        if HAS_SDPA:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        T = q.size(-2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        return F.softmax(att, dim=-1) @ v

    def forward(s, x):
        B, T, C = x.shape
        q, k, v = s.c_attn(s.ln_1(x)).split(C, dim=2)
        q, k, v = [t.view(B, T, s.NH, C // s.NH).transpose(1, 2) for t in (q, k, v)]
        y = s.attention(q, k, v)
        x = x + s.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + s.mlp_proj(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):  # pre-LN, learned positions, tied embedding, as ./train's default switches
    def __init__(s, V, T, L, NH, C):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        s.h = nn.ModuleList([Block(C, NH) for _ in range(L)])
        s.ln_f = nn.LayerNorm(C)

    def forward(s, idx, targets):
        x = s.wte(idx) + s.wpe(torch.arange(idx.shape[1]))
        for b in s.h:
            x = b(x)
        logits = s.ln_f(x) @ s.wte.weight.t()
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))


def make_adamw(groups):
    try:
        return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), fused=True), "fused"
    except (TypeError, RuntimeError):  # torch 1.13: no fused AdamW on CPU
        return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95)), "for-each"


def bench(name, V, L, NH, C, B, T, reps, dtype):
    torch.manual_seed(0)
    m = GPT(V, T, L, NH, C)
    decay = [p for p in m.parameters() if p.dim() >= 2]
    other = [p for p in m.parameters() if p.dim() < 2]
    opt, kind = make_adamw([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}])
    idx = torch.randint(0, V, (B, T))
    tgt = torch.randint(0, V, (B, T))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = m(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()

    step()  # warm up: allocates gradients and moments
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = sum(p.numel() for p in m.parameters())
    print(f"| {name + ', ' + dtype:<32} | {n / 1e6:7.1f} M | {1000 * times[len(times) // 2]:8.1f} "
          f"| {1000 * times[0]:8.1f} | {1000 * times[-1]:8.1f} | torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'sdpa' if HAS_SDPA else 'attention written out'}, AdamW {kind} |")
    sys.stdout.flush()


MODELS = {  # name: (vocab, layers, heads, width, batch, sequence, timed steps)
    "default": ("default model, 16 x 64", 256, 4, 4, 128, 16, 64, 20),
    "6layer": ("6-layer 384-wide, 8 x 256", 256, 6, 6, 384, 8, 256, 6),
    "gpt2": ("GPT-2 124M, 4 x 64", 50304, 12, 12, 768, 4, 64, 6),
}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (pin with taskset too)")
    ap.add_argument("--dtype", choices=["fp32", "bf16", "both"], default="both", help="bf16: autocast")
    ap.add_argument("--models", default="6layer,gpt2", help="comma-separated: " + ",".join(MODELS))
    ap.add_argument("--batch", type=int, default=0, help="override the batch size B")
    ap.add_argument("--seq", type=int, default=0, help="override the sequence length T")
    ap.add_argument("--reps", type=int, default=0, help="timed steps after one warm-up (default: per model)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"| {'model, dtype':<32} | params    | median ms | min ms   | max ms   | setup |")
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 10}|-------|")
    for key in a.models.split(","):
        name, V, L, NH, C, B, T, reps = MODELS[key]
        if a.batch or a.seq:
            B, T = a.batch or B, a.seq or T
            name = name.split(",")[0] + f", {B} x {T}"
        for dtype in (["fp32", "bf16"] if a.dtype == "both" else [a.dtype]):
            bench(name, V, L, NH, C, B, T, a.reps or reps, dtype)
