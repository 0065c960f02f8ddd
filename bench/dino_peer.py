#!/usr/bin/python3
"""dino_peer.py -- a PyTorch DINO training step on the shapes dino-train runs,
timed at every thread setting (torch intra-op threads x OpenBLAS threads),
against `dino-train --bench` in the same run.

One step, as facebookresearch/dino main_dino.py train_one_epoch: teacher
(EMA copy, no_grad) on the 2 global views; student backbone per resolution
(MultiCropWrapper) on 2 global + L local views; DINOHead (3-layer MLP with
GELU, L2 norm, weight-normalised last layer); DINOLoss with centring;
backward; per-tensor clipping; AdamW step; EMA update. Drop path 0.1 in
the student (timm-style per-sample). Random inputs, no data loading.

    /usr/bin/python3 bench/dino_peer.py [--dim 192 --depth 6 --heads 6]
        [--global 28 --local 16 --nlocal 2] [--out-dim 4096 --hidden 2048]
        [--batch 64] [--seconds 20] [--ours BIN/dino-train] [--ours-threads 2]
    /usr/bin/python3 bench/dino_peer.py --child --steps N --torch-threads T
        --blas-threads B [shape options]     one setting, exactly 1 + N steps
        (to time the whole process against dino-train --bench --bench-parts 0
        --bench-steps N)

Output (TSV, stdout): one row per setting (impl, torch_threads,
blas_threads, img_s), then the ratio of ours over the best peer setting.
OPENBLAS_CORETYPE is left as the environment sets it. Each peer setting
runs in its own process (OpenBLAS's pool size is fixed per process by
openblas_set_num_threads, torch's by set_num_threads).
"""

import argparse
import math
import os
import subprocess
import sys
import time


def peer(a):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import ctypes
    for lib in ("libopenblas.so.0", "libblas.so.3"):
        try:
            f = getattr(ctypes.CDLL(lib), "openblas_set_num_threads")
            f.argtypes = [ctypes.c_int]
            f(a.blas_threads)
            break
        except (OSError, AttributeError):
            continue
    torch.set_num_threads(a.torch_threads)
    torch.manual_seed(0)

    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads, self.hd = heads, dim // heads
            self.scale = self.hd ** -0.5
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            B, N, D = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
            attn = ((qkv[0] @ qkv[1].transpose(-2, -1)) * self.scale).softmax(dim=-1)
            return self.proj((attn @ qkv[2]).transpose(1, 2).reshape(B, N, D))

    def drop_path(x, p, training):
        if p == 0 or not training:
            return x
        keep = (torch.rand(x.shape[0], 1, 1) >= p).to(x.dtype) / (1 - p)
        return x * keep

    class Block(nn.Module):
        def __init__(self, dim, heads, dp):
            super().__init__()
            self.dp = dp
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention(dim, heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

        def forward(self, x):
            x = x + drop_path(self.attn(self.norm1(x)), self.dp, self.training)
            return x + drop_path(self.mlp(self.norm2(x)), self.dp, self.training)

    class ViT(nn.Module):
        def __init__(self, img, patch, dim, depth, heads, dpr):
            super().__init__()
            self.g, self.patch = img // patch, patch
            self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + self.g ** 2, dim))
            rates = [x.item() for x in torch.linspace(0, dpr, depth)]
            self.blocks = nn.ModuleList([Block(dim, heads, r) for r in rates])
            self.norm = nn.LayerNorm(dim, eps=1e-6)

        def pos(self, x, w):
            N = self.pos_embed.shape[1] - 1
            if x.shape[1] - 1 == N:
                return self.pos_embed
            w0 = w // self.patch + 0.1
            pp = self.pos_embed[:, 1:].reshape(1, self.g, self.g, -1).permute(0, 3, 1, 2)
            pp = F.interpolate(pp, scale_factor=(w0 / self.g, w0 / self.g), mode="bicubic")
            return torch.cat((self.pos_embed[:, :1], pp.permute(0, 2, 3, 1).reshape(1, -1, x.shape[-1])), 1)

        def forward(self, x):
            w = x.shape[-1]
            x = self.proj(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
            x = x + self.pos(x, w)
            for b in self.blocks:
                x = b(x)
            return self.norm(x)[:, 0]

    class Head(nn.Module):
        def __init__(self, dim, out, hidden, bot):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                     nn.Linear(hidden, bot))
            self.last_layer = nn.utils.weight_norm(nn.Linear(bot, out, bias=False))
            self.last_layer.weight_g.data.fill_(1)
            self.last_layer.weight_g.requires_grad = False

        def forward(self, x):
            return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))

    class Wrap(nn.Module):
        def __init__(self, dpr):
            super().__init__()
            self.backbone = ViT(a.img, a.patch, a.dim, a.depth, a.heads, dpr)
            self.head = Head(a.dim, a.out_dim, a.hidden, a.bottleneck)

        def forward(self, views):
            return self.head(torch.cat([self.backbone(torch.cat(views[:2]))] +
                                       ([self.backbone(torch.cat(views[2:]))] if len(views) > 2 else [])))

    student, teacher = Wrap(0.1), Wrap(0.0)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    params = [p for p in student.parameters() if p.requires_grad]
    reg = [p for n, p in student.named_parameters() if p.requires_grad and not (n.endswith(".bias") or p.ndim == 1)]
    noreg = [p for n, p in student.named_parameters() if p.requires_grad and (n.endswith(".bias") or p.ndim == 1)]
    opt = torch.optim.AdamW([{"params": reg, "weight_decay": 0.04}, {"params": noreg, "weight_decay": 0.0}], lr=1e-5)
    center = torch.zeros(1, a.out_dim)
    B = a.batch
    views = [torch.randn(B, 1, a.glob, a.glob) for _ in range(2)] + \
            [torch.randn(B, 1, a.local, a.local) for _ in range(a.nlocal)]
    ncrops = len(views)

    def step():
        nonlocal center
        with torch.no_grad():
            t = teacher(views[:2])
        s = student(views)
        so = (s / 0.1).chunk(ncrops)
        to = F.softmax((t - center) / 0.04, dim=-1).chunk(2)
        loss, n = 0, 0
        for iq, q in enumerate(to):
            for v in range(ncrops):
                if v != iq:
                    loss = loss + torch.sum(-q * F.log_softmax(so[v], dim=-1), dim=-1).mean()
                    n += 1
        loss = loss / n
        with torch.no_grad():
            center = center * 0.9 + t.sum(0, keepdim=True) / len(t) * 0.1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in params:
            pn = p.grad.norm(2)
            c = 3.0 / (pn + 1e-6)
            if c < 1:
                p.grad.mul_(c)
        opt.step()
        with torch.no_grad():
            for pq, pk in zip(student.parameters(), teacher.parameters()):
                pk.mul_(0.996).add_(0.004 * pq.detach())

    if a.steps:   # exactly 1 + steps steps, for whole-process timing (as dino-train --bench-parts 0)
        step()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        print("%.2f" % (a.steps * B / (time.perf_counter() - t0)))
        return
    for _ in range(2):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < a.seconds:
        step()
        n += 1
    print("%.2f" % (n * B / (time.perf_counter() - t0)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--img", type=int, default=28)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--global", dest="glob", type=int, default=28)
    ap.add_argument("--local", type=int, default=16)
    ap.add_argument("--nlocal", type=int, default=2)
    ap.add_argument("--out-dim", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--bottleneck", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--ours", default="bin/dino-train")
    ap.add_argument("--ours-threads", type=int, default=2)
    ap.add_argument("--ours-steps", type=int, default=10)
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--blas-threads", type=int, default=1)
    a = ap.parse_args()
    if a.child:
        peer(a)
        return 0
    shape = ["--dim", str(a.dim), "--depth", str(a.depth), "--heads", str(a.heads), "--global", str(a.glob),
             "--local", str(a.local), "--nlocal", str(a.nlocal), "--out-dim", str(a.out_dim), "--hidden",
             str(a.hidden), "--bottleneck", str(a.bottleneck), "--batch", str(a.batch), "--img", str(a.img),
             "--patch", str(a.patch)]
    print("# load average %s" % " ".join("%.2f" % x for x in os.getloadavg()), file=sys.stderr)
    print("impl\ttorch_threads\tblas_threads\timg_s")
    best = 0.0
    rows = []
    for tt in (1, 2):
        for bt in (1, 2):
            out = subprocess.run([sys.executable, __file__, "--child", "--torch-threads", str(tt), "--blas-threads",
                                  str(bt), "--seconds", str(a.seconds)] + shape, capture_output=True, text=True)
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                return 1
            v = float(out.stdout.strip())
            best = max(best, v)
            print("torch\t%d\t%d\t%.1f" % (tt, bt, v), flush=True)
    ours_cmd = [a.ours, "--bench", "--img", str(a.img), "--patch", str(a.patch), "--chans", "1", "--dim",
                str(a.dim), "--depth", str(a.depth), "--heads", str(a.heads), "--global", str(a.glob), "--local",
                str(a.local), "--local-crops", str(a.nlocal), "--out-dim", str(a.out_dim), "--head-hidden",
                str(a.hidden), "--head-bottleneck", str(a.bottleneck), "--batch", str(a.batch), "--threads",
                str(a.ours_threads), "--bench-steps", str(a.ours_steps)]
    out = subprocess.run(ours_cmd, capture_output=True, text=True)
    if out.returncode:
        print(out.stderr, file=sys.stderr)
        return 1
    lines = out.stdout.strip().split("\n")
    hdr, val = lines[0].split("\t"), lines[1].split("\t")
    ours = float(val[hdr.index("img_s")])
    print("ssta\t-\t%d\t%.1f" % (a.ours_threads, ours))
    print("# ratio ssta / best torch: %.2f" % (ours / best if best > 0 else math.nan))
    print("# ssta step parts (s): " + ", ".join("%s %s" % (h, v) for h, v in zip(hdr, val) if h.endswith("_s")),
          file=sys.stderr)
    print("# load average %s" % " ".join("%.2f" % x for x in os.getloadavg()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
