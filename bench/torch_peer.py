#!/usr/bin/python3
"""torch_peer.py -- the PyTorch peer benchmark for ssta's C ViT.

Measures, for the embedded-default student and teacher ViTs, PyTorch's
training throughput (forward + label-smoothed CE + backward + AdamW step)
and inference throughput (no_grad forward), in images per second, at every
combination of torch's intra-op threads and OpenBLAS's threads (1 or 2
each; on this machine the best is often torch 2 x OpenBLAS 1). The bench
compares the C engine with the BEST of them. The training step uses the
recipe's label smoothing 0.1 (mode "train"); mode "train-nosmooth" is the
same step without it, printed for reference. It is a benchmark only:
random inputs, no data loading.

    /usr/bin/python3 bench/torch_peer.py [--configs student,teacher]
                                         [--seconds 8] [--threads 1,2]
                                         [--batch 128] [--warmup 3]

Output: TSV on stdout, header `config mode torch_threads blas_threads
img_per_s`; load average and the process's peak RSS on stderr. If torch cannot be imported it says so
on stderr and exits 0 (so a pipeline can run it unconditionally).

Model: the same timm-layout ViT as tests/fixtures/make_vit_fixture.py
(pre-norm blocks, LayerNorm eps 1e-6, exact GELU, CLS token, learned
pos_embed), float32. Configs (img 28, 1 channel, patch 4 -> 49 patches +
CLS = 50 tokens, mlp ratio 4, 10 classes):
    student  D 96,  depth 6, heads 3
    teacher  D 192, depth 6, heads 6
torch's intra-op pool and OpenBLAS's own pool are set independently
(Debian's torch does its matrix products in the system OpenBLAS, which
ignores torch.set_num_threads); stderr shows CPU time / wall time per
setting.
OPENBLAS_CORETYPE is left as the environment sets it.
"""

import argparse
import os
import resource
import sys
import time

CONFIGS = {
    "student": dict(img=28, chans=1, patch=4, dim=96, depth=6, heads=3, classes=10),
    "teacher": dict(img=28, chans=1, patch=4, dim=192, depth=6, heads=6, classes=10),
}


def build_model(torch, nn, cfg):
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
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            return self.proj((attn @ v).transpose(1, 2).reshape(B, N, D))

    class Block(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention(dim, heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class ViT(nn.Module):
        def __init__(self, img, chans, patch, dim, depth, heads, classes):
            super().__init__()
            g = img // patch
            self.proj = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + g * g, dim))
            self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.head = nn.Linear(dim, classes)

        def forward(self, x):
            x = self.proj(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.norm(x)[:, 0])

    return ViT(**cfg)


def openblas_setter():
    """Debian's torch calls the system libblas (OpenBLAS, pthread build), whose
    thread pool ignores torch.set_num_threads. Returns a function that sets
    OpenBLAS's thread count in this process, or None if it cannot be found."""
    import ctypes
    for lib in ("libopenblas.so.0", "libblas.so.3"):
        try:
            f = getattr(ctypes.CDLL(lib), "openblas_set_num_threads")
        except (OSError, AttributeError):
            continue
        f.argtypes = [ctypes.c_int]
        return f
    return None


def timed(step, warmup, seconds):
    """Runs step() warmup times, then until `seconds` have passed; returns
    (iters, wall seconds, process CPU seconds during the timed part)."""
    for _ in range(warmup):
        step()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        step()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n, dt, time.process_time() - c0


def parse_list(s, what, allowed=None, conv=str):
    out = []
    for tok in s.split(","):
        tok = tok.strip()
        try:
            v = conv(tok)
        except ValueError:
            v = None
        if v is None or (allowed is not None and v not in allowed):
            print(f"torch_peer: --{what}: bad value '{tok}'", file=sys.stderr)
            sys.exit(2)
        out.append(v)
    return out


def main():
    ap = argparse.ArgumentParser(description="PyTorch peer benchmark (training and inference img/s).")
    ap.add_argument("--configs", default="student,teacher", help="comma list of: student, teacher")
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per setting (default 8)")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts tried for torch and for OpenBLAS, "
                    "every combination (default 1,2)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations per setting (default 3)")
    args = ap.parse_args()
    configs = parse_list(args.configs, "configs", allowed=CONFIGS)
    threads = parse_list(args.threads, "threads", conv=int)
    if any(t < 1 for t in threads) or args.seconds <= 0 or args.batch < 1 or args.warmup < 0:
        print("torch_peer: --threads, --seconds and --batch must be positive", file=sys.stderr)
        return 2

    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        print("torch_peer: torch not available (apt-get install python3-torch); skipping",
              file=sys.stderr)
        return 0

    print(f"torch_peer: torch {torch.__version__}, batch {args.batch}, {args.seconds:g} s per "
          f"setting, load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}", file=sys.stderr)
    set_blas = openblas_setter()
    if set_blas is None:
        print("torch_peer: warning: cannot set OpenBLAS threads; its pool may use every core",
              file=sys.stderr)
    print("config\tmode\ttorch_threads\tblas_threads\timg_per_s", flush=True)
    for name in configs:
        cfg = CONFIGS[name]
        torch.manual_seed(0)
        model = build_model(torch, nn, cfg)
        nparams = sum(p.numel() for p in model.parameters())
        print(f"torch_peer: {name}: {nparams} parameters", file=sys.stderr)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        x = torch.randn(args.batch, cfg["chans"], cfg["img"], cfg["img"])
        y = torch.randint(0, cfg["classes"], (args.batch,))

        def train_step(smoothing=0.1):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
            loss.backward()
            opt.step()

        def train_nosmooth():
            train_step(0.0)

        def infer_step():
            with torch.no_grad():
                model(x)

        for nt in threads:
            for nb in (threads if set_blas else [0]):
                torch.set_num_threads(nt)
                if set_blas:
                    set_blas(nb)
                for mode, step in (("train", train_step), ("train-nosmooth", train_nosmooth),
                                   ("infer", infer_step)):
                    model.train(mode != "infer")
                    n, dt, cpu = timed(step, args.warmup, args.seconds)
                    print(f"{name}\t{mode}\t{nt}\t{nb}\t{n * args.batch / dt:.1f}", flush=True)
                    print(f"torch_peer: {name} {mode} torch {nt} x OpenBLAS {nb}: {n} steps in {dt:.2f} s, "
                          f"CPU/wall {cpu / dt:.2f}", file=sys.stderr)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux
    print(f"torch_peer: peak RSS {rss_mb:.0f} MiB; load average now "
          f"{os.getloadavg()[0]:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
