# The same training step in PyTorch, for the README's comparison (optional; not part of make or make test).
# Run: OPENBLAS_CORETYPE=SKYLAKEX python3 bench/pytorch_step.py
import math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

class Block(nn.Module):
    def __init__(s, C, NH):
        super().__init__()
        s.ln_1, s.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.c_attn, s.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.c_fc, s.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        s.NH = NH
    def forward(s, x):
        B, T, C = x.shape
        q, k, v = s.c_attn(s.ln_1(x)).split(C, dim=2)
        q, k, v = [t.view(B, T, s.NH, C // s.NH).transpose(1, 2) for t in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # torch 1.13: no fused attention
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        x = x + s.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + s.mlp_proj(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh"))

class GPT(nn.Module):
    def __init__(s, V, T, L, NH, C):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        s.h = nn.ModuleList([Block(C, NH) for _ in range(L)])
        s.ln_f = nn.LayerNorm(C)
    def forward(s, idx, targets):
        x = s.wte(idx) + s.wpe(torch.arange(idx.shape[1]))
        for b in s.h: x = b(x)
        logits = s.ln_f(x) @ s.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

def bench(name, V, L, NH, C, B, T, reps):
    torch.manual_seed(0)
    m = GPT(V, T, L, NH, C)
    decay = [p for p in m.parameters() if p.dim() >= 2]
    other = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0}],
                            lr=1e-4, betas=(0.9, 0.95))
    idx = torch.randint(0, V, (B, T)); tgt = torch.randint(0, V, (B, T))
    def step():
        opt.zero_grad(set_to_none=True)
        m(idx, tgt).backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
    times.sort()
    print(f"{name}: median {1000 * times[len(times) // 2]:.1f} ms/step (min {1000 * times[0]:.1f}, max {1000 * times[-1]:.1f}), "
          f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f} M params, torch {torch.__version__}, {torch.get_num_threads()} threads")
    sys.stdout.flush()

torch.set_num_threads(2)
bench("default model, 16 x 64", 256, 4, 4, 128, 16, 64, 20)
bench("baby GPT, 12 x 64", 256, 4, 4, 128, 12, 64, 20)
bench("6 layers 384 wide, 8 x 256", 256, 6, 6, 384, 8, 256, 7)
bench("GPT-2 124M, 4 x 64", 50304, 12, 12, 768, 4, 64, 7)
