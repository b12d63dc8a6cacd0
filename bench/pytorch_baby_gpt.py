# nanoGPT's baby-GPT recipe on tinyshakespeare, trained in PyTorch and scored the way ./train scores it:
# the mean loss over the whole validation split (the last 10%), in non-overlapping windows of 64.
# For the README's comparison; optional, not part of make or make test.
#
#   OPENBLAS_CORETYPE=SKYLAKEX python3 bench/pytorch_baby_gpt.py SEED MODEL [TEXT]
#
# MODEL nanogpt: nanoGPT's own model: no biases (its default bias=False), exact GELU, the 65 characters
#                of the text as the vocabulary (its shakespeare_char data);
# MODEL ours:    ./train's defaults: biases, tanh GELU (GPT-2's), the 256 byte values as the vocabulary.
# MODEL ours-untied: the same with its own output layer (./train --no-tie), initialised as the others.
# All: 4 layers, 4 heads, 128 wide, T=64, batch 12, 2000 steps, AdamW lr 1e-3 (betas 0.9, 0.99, weight
# decay 0.1 on 2-D tensors), 100 warmup steps then cosine to 1e-4, clipping at 1, no dropout, tied
# output layer (but for ours-untied), GPT-2's initialisation; random windows, as nanoGPT's get_batch
# draws them.
import math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

seed, model_kind = int(sys.argv[1]), sys.argv[2]
path = sys.argv[3] if len(sys.argv) > 3 else "../shared/data/tinyshakespeare.txt"
assert model_kind in ("nanogpt", "ours", "ours-untied"), "MODEL is nanogpt, ours or ours-untied"
bias, gelu_approx = (False, "none") if model_kind == "nanogpt" else (True, "tanh")
torch.manual_seed(seed)
torch.set_num_threads(2)

text = open(path, "rb").read()
if model_kind == "nanogpt":
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    V, ids = len(chars), [index[c] for c in text]
else:
    V, ids = 256, list(text)
n_train = len(ids) - len(ids) // 10
train, val = torch.tensor(ids[:n_train]), torch.tensor(ids[n_train:])
L, NH, C, T, B, STEPS = 4, 4, 128, 64, 12, 2000


class LayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, (C,), self.weight, self.bias, 1e-5)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = LayerNorm(), LayerNorm()
        self.c_attn, self.attn_proj = nn.Linear(C, 3 * C, bias=bias), nn.Linear(C, C, bias=bias)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C, bias=bias), nn.Linear(4 * C, C, bias=bias)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = [z.view(b, t, NH, C // NH).transpose(1, 2) for z in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // NH)
        att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).contiguous().view(b, t, C)
        x = x + self.attn_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate=gelu_approx))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = LayerNorm()
        self.lm_head = nn.Linear(C, V, bias=False) if model_kind == "ours-untied" else None
        for name, p in self.named_parameters():  # GPT-2: N(0, 0.02), residual projections / sqrt(2 L)
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ (self.lm_head.weight if self.lm_head is not None else self.wte.weight).t()
        return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))


model = GPT()
decay = [p for p in model.parameters() if p.dim() >= 2]
other = [p for p in model.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                        lr=1e-3, betas=(0.9, 0.99), eps=1e-8)


def lr_at(step):  # nanoGPT's get_lr with warmup 100, decay to 1e-4 by step 2000
    if step < 100:
        return 1e-3 * (step + 1) / 101
    return 1e-4 + 0.5 * (1 + math.cos(math.pi * (step - 100) / (STEPS - 100))) * (1e-3 - 1e-4)


start = time.time()
for step in range(STEPS):
    for group in opt.param_groups:
        group["lr"] = lr_at(step)
    ix = torch.randint(len(train) - T, (B,))
    x = torch.stack([train[i:i + T] for i in ix])
    y = torch.stack([train[i + 1:i + 1 + T] for i in ix])
    loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

model.eval()
total, count = 0.0, 0
with torch.no_grad():
    windows = (len(val) - 1) // T  # the few targets after the last whole window are left out
    X = torch.stack([val[w * T:w * T + T] for w in range(windows)])
    Y = torch.stack([val[w * T + 1:w * T + T + 1] for w in range(windows)])
    for i in range(0, windows, 64):
        total += model(X[i:i + 64], Y[i:i + 64]).item() * X[i:i + 64].numel()
        count += X[i:i + 64].numel()
print(f"{model_kind} seed {seed}: val loss {total / count:.4f} ({time.time() - start:.0f} s)")
