#!/usr/bin/env python3
# tests/gpu/torch-peer.py — the PyTorch peer of `dcr bench` on the same GPU,
# in the same run (tests/gpu/bench.sh): what a user would otherwise run.
# Random weights (speed does not depend on them). One JSON object per line
# on stdout (or --out FILE), e.g.
#   {"peer": "torch", "what": "resnet50", "dtype": "f16", "batch": 256, "mode": "eager",
#    "median_ms": 15.2, "min_ms": 15.0, "img_per_s": 16842.1}
#
#   python3 tests/gpu/torch-peer.py resnet [--batches 1,32,256] [--dtypes f16,f32]
#   python3 tests/gpu/torch-peer.py resnet-compile [--batches 256]      # torch.compile (slow to compile)
#   python3 tests/gpu/torch-peer.py clip [--batches 1,128]
#   python3 tests/gpu/torch-peer.py retrieval [--rows 1000000] [--dim 1024] [--queries 1,64]
#   --smoke: small shapes, CPU allowed (checks the script where no GPU is)
#
# Shapes and settings, matching ../shared/DESIGN.md §4's anchors:
#  * ResNet-50: torchvision resnet50(weights=None), eval, channels-last,
#    fp16 (or fp32) weights and input, 224², torch.inference_mode.
#  * ViT-L/14: Hugging Face CLIPVisionModel (ViT-L/14 config: width 1024,
#    24 layers, 16 heads, patch 14, 224², QuickGELU) with all hidden states
#    (RINE's taps), fp16; if transformers is missing or fails, the same
#    shapes in plain torch.nn (pre-norm encoder layers), flagged "vit-torch-nn".
#  * Retrieval: exact cosine top-5 of 1 (and 64) queries over a normalised
#    fp16 bank of rows × dim: one matmul and torch.topk.
# Times: CUDA events around each call after warm-up; median and min of N.
import argparse
import json
import sys
import time

import torch


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def timer(fn, repeats, warmup, dev):
    for _ in range(warmup):
        fn()
    ts = []
    if dev.type == 'cuda':
        torch.cuda.synchronize()
        for _ in range(repeats):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b))
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2], ts[0]


def emit(out, **kw):
    kw = {'peer': 'torch', 'torch': torch.__version__, **kw}
    line = json.dumps(kw)
    print(line, file=out, flush=True)
    log(line)


def dtype_of(name):
    return {'f16': torch.float16, 'f32': torch.float32}[name]


def resnet(args, dev, out, compiled=False):
    import torchvision
    torch.backends.cudnn.benchmark = True
    for dn in args.dtypes.split(','):
        dt = dtype_of(dn)
        if dev.type == 'cpu' and dt == torch.float16:
            log('resnet: skipping f16 on the CPU')
            continue
        model = torchvision.models.resnet50(weights=None).eval().to(dev, dt).to(memory_format=torch.channels_last)
        run = torch.compile(model) if compiled else model
        for b in [int(x) for x in args.batches.split(',')]:
            x = torch.randn(b, 3, 224, 224, device=dev, dtype=dt).to(memory_format=torch.channels_last)
            t0 = time.perf_counter()
            with torch.inference_mode():
                med, mn = timer(lambda: run(x), args.repeats, 3 if not compiled else 2, dev)
            emit(out, what='resnet50', dtype=dn, batch=b, mode='compile' if compiled else 'eager',
                 median_ms=med, min_ms=mn, img_per_s=b / (med * 1e-3), best_img_per_s=b / (mn * 1e-3),
                 setup_s=time.perf_counter() - t0)
        del model, run


class NNViT(torch.nn.Module):
    """ViT-L/14 shapes in plain torch.nn (the fallback when transformers is unavailable)."""

    def __init__(self, width, layers, heads, patch, size, mlp):
        super().__init__()
        self.patch = torch.nn.Conv2d(3, width, patch, patch, bias=False)
        n = (size // patch) ** 2 + 1
        self.cls = torch.nn.Parameter(torch.randn(width) * 0.02)
        self.pos = torch.nn.Parameter(torch.randn(n, width) * 0.02)
        self.pre = torch.nn.LayerNorm(width)
        self.layers = torch.nn.ModuleList([
            torch.nn.TransformerEncoderLayer(width, heads, mlp, dropout=0.0, activation='gelu', batch_first=True,
                                             norm_first=True) for _ in range(layers)])

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], dim=1) + self.pos
        x = self.pre(x)
        hidden = [x]
        for layer in self.layers:
            x = layer(x)
            hidden.append(x)
        return hidden


def clip(args, dev, out):
    dn = 'f16' if dev.type == 'cuda' else 'f32'
    dt = dtype_of(dn)
    if args.smoke:
        cfg = dict(width=64, layers=2, heads=4, patch=14, size=56, mlp=256)
    else:
        cfg = dict(width=1024, layers=24, heads=16, patch=14, size=224, mlp=4096)
    flavour = 'transformers'
    try:
        from transformers import CLIPVisionConfig, CLIPVisionModel
        conf = CLIPVisionConfig(hidden_size=cfg['width'], intermediate_size=cfg['mlp'],
                                num_hidden_layers=cfg['layers'], num_attention_heads=cfg['heads'],
                                image_size=cfg['size'], patch_size=cfg['patch'], hidden_act='quick_gelu')
        model = CLIPVisionModel(conf).eval().to(dev, dt)

        def fwd(x):
            return model(pixel_values=x, output_hidden_states=True)
    except Exception as e:  # noqa: BLE001 — any failure falls back to the torch.nn model
        log('clip: transformers unavailable or failed (%r); timing the torch.nn ViT of the same shape' % (e,))
        flavour = 'vit-torch-nn'
        model = NNViT(**cfg).eval().to(dev, dt)
        fwd = model
    for b in [int(x) for x in args.batches.split(',')]:
        x = torch.randn(b, 3, cfg['size'], cfg['size'], device=dev, dtype=dt)
        with torch.inference_mode():
            med, mn = timer(lambda: fwd(x), args.repeats, 3, dev)
        emit(out, what='clip-vit-l14' if not args.smoke else 'clip-tiny', impl=flavour, dtype=dn, batch=b,
             mode='eager', median_ms=med, min_ms=mn, img_per_s=b / (med * 1e-3), best_img_per_s=b / (mn * 1e-3))


def retrieval(args, dev, out):
    dn = 'f16' if dev.type == 'cuda' else 'f32'
    dt = dtype_of(dn)
    g = torch.Generator(device=dev).manual_seed(0)
    bank = torch.randn(args.rows, args.dim, device=dev, dtype=dt, generator=g)
    bank = torch.nn.functional.normalize(bank, dim=1)
    for nq in [int(x) for x in args.queries.split(',')]:
        q = torch.nn.functional.normalize(torch.randn(nq, args.dim, device=dev, dtype=dt, generator=g), dim=1)

        def search():
            return torch.topk(q @ bank.T, 5, dim=1)

        with torch.inference_mode():
            med, mn = timer(search, args.repeats if args.smoke else max(args.repeats, 20), 2 if args.smoke else 5, dev)
        emit(out, what='retrieval', dtype=dn, rows=args.rows, dim=args.dim, queries=nq, k=5, mode='eager',
             median_ms=med, min_ms=mn, gbps=args.rows * args.dim * bank.element_size() / (mn * 1e-3) / 1e9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=['resnet', 'resnet-compile', 'clip', 'retrieval'])
    ap.add_argument('--batches')
    ap.add_argument('--dtypes', default='f16,f32')
    ap.add_argument('--repeats', type=int, default=10)
    ap.add_argument('--rows', type=int, default=1000000)
    ap.add_argument('--dim', type=int, default=1024)
    ap.add_argument('--queries', default='1,64')
    ap.add_argument('--smoke', action='store_true')
    ap.add_argument('--out')
    args = ap.parse_args()
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if dev.type != 'cuda' and not args.smoke:
        log('torch-peer: no CUDA device (torch %s); use --smoke for a CPU check' % torch.__version__)
        return 2
    if args.batches is None:
        args.batches = {'resnet': '1,32,256', 'resnet-compile': '256', 'clip': '1,128', 'retrieval': ''}[args.what]
    if args.smoke:
        args.batches = '1,2'
        args.repeats = 2
        args.rows = min(args.rows, 10000)
    out = open(args.out, 'a') if args.out else sys.stdout
    if dev.type == 'cuda':
        log('torch-peer: torch %s, %s' % (torch.__version__, torch.cuda.get_device_name(0)))
    if args.what == 'resnet-compile' and not hasattr(torch, 'compile'):
        log('torch-peer: torch %s has no torch.compile' % torch.__version__)
        return 3
    if args.what == 'resnet':
        resnet(args, dev, out)
    elif args.what == 'resnet-compile':
        resnet(args, dev, out, compiled=True)
    elif args.what == 'clip':
        clip(args, dev, out)
    else:
        retrieval(args, dev, out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
