#!/usr/bin/python3
# make-backbone-golden.py — trusted references for the ResNet and CLIP
# backbones (test-backbone-resnet, test-backbone-clip), from PyTorch's own
# modules with fixed-seed random weights:
#
#  * ResNet: torchvision's ResNet class and Bottleneck block (its forward,
#    _make_layer and downsample logic), only narrower and shallower — stem 8
#    channels, stages of [2, 1, 1, 1] bottlenecks of width 8, 16, 32, 64 (so
#    layer1 has an identity block and every stage a downsample) — with
#    BatchNorm statistics gathered in train mode, so they are realistic.
#  * CLIP: a ViT in Hugging Face CLIPVisionModel tensor names (width 64, 3
#    layers, 4 heads of 16, patch 14, image 56 → 17 tokens, QuickGELU), run
#    through torch.nn.TransformerEncoderLayer(norm_first=True) with the HF
#    weights mapped onto it, cross-checked against the HF formula written out.
#
# Weights are rounded to fp16 and stored as F16 (what HF fp16 checkpoints
# hold, and half the bytes); references are computed in float64 from exactly
# those values. Inputs are not stored: both sides compute them (see
# golden_input below and in the tests).
#
#   /usr/bin/python3 tests/golden/make-backbone-golden.py            # CI files
#   /usr/bin/python3 tests/golden/make-backbone-golden.py --full DIR # full size, once
#
# --full writes DIR/resnet50.safetensors (torchvision resnet50(weights=None),
# seed 0, BN statistics perturbed) and DIR/clip-vit-l14/model.safetensors (a
# random ViT-L/14 vision tower), each with a *_ref.safetensors of reference
# features for 2 (ResNet) / 1 (CLIP) inputs; test-backbone-resnet and
# test-backbone-clip compare with them when DCR_GOLDEN_FULL_DIR=DIR is set.
# The same files serve `dcr bench backbone --backbone resnet50:DIR/…`.
import argparse
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import Bottleneck, ResNet

HERE = os.path.dirname(os.path.abspath(__file__))

INPUT_DOC = ('NHWC float32, image k, row y, column x, channel c, flat index i of input set `seed`: '
             'u = lowbias32(i + seed * 0x9E3779B9 mod 2^32); '
             'v = ((u >> 8) * 2^-23 - 1) + ((((k + 1) * x + 3 * (k + 2) * y + 21 * c) & 63) * 2^-5 - 1) '
             'in double, rounded to float32: noise plus a per-image stripe pattern, so that pooled '
             'features differ between images')


def lowbias32(v):
    v = v.astype(np.uint64) & 0xFFFFFFFF
    v ^= v >> 16
    v = (v * 0x7FEB352D) & 0xFFFFFFFF
    v ^= v >> 15
    v = (v * 0x846CA68B) & 0xFFFFFFFF
    return v ^ (v >> 16)


def golden_input(seed, n, size):
    i = np.arange(n * size * size * 3, dtype=np.uint64)
    u = lowbias32((i + seed * 0x9E3779B9) & 0xFFFFFFFF)
    k, y, x, c = np.meshgrid(np.arange(n), np.arange(size), np.arange(size), np.arange(3), indexing='ij')
    stripes = ((((k + 1) * x + 3 * (k + 2) * y + 21 * c) & 63) * 2.0 ** -5 - 1).reshape(-1)
    v = ((u >> 8).astype(np.float64) * 2.0 ** -23 - 1) + stripes
    v = v.astype(np.float32).astype(np.float64)
    return torch.from_numpy(v.reshape(n, size, size, 3)).permute(0, 3, 1, 2).contiguous()  # NCHW float64


ST_DTYPES = {np.dtype('float32'): 'F32', np.dtype('float16'): 'F16', np.dtype('int64'): 'I64'}


def write_safetensors(path, tensors, meta):
    header = {'__metadata__': meta}
    off = 0
    blobs = []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        arr = arr.astype(arr.dtype.newbyteorder('<'))
        header[name] = {'dtype': ST_DTYPES[arr.dtype], 'shape': list(arr.shape), 'data_offsets': [off, off + arr.nbytes]}
        off += arr.nbytes
        blobs.append(arr.tobytes())
    js = json.dumps(header, separators=(',', ':')).encode()
    js += b' ' * (-len(js) % 8)
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(js)) + js)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def state_arrays(state, dtype):
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        out[k] = v.numpy() if not v.is_floating_point() else v.to(torch.float64).numpy().astype(dtype)
    return out


def round_params(module, dtype):
    """Rounds every float parameter and buffer to `dtype`, in place, so the
    reference uses exactly what the file stores."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(dtype).to(t.dtype))


# ---- ResNet ---------------------------------------------------------------------------------

class NarrowResNet(ResNet):
    """torchvision's ResNet with a narrower stem and stages (its own
    _make_layer, Bottleneck and _forward_impl)."""

    def __init__(self, layers, stem, widths, num_classes=10):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = stem
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(Bottleneck, widths[0], layers[0])
        self.layer2 = self._make_layer(Bottleneck, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(Bottleneck, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(Bottleneck, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * Bottleneck.expansion, num_classes)


def calibrate_bn(model, size, seed):
    """Realistic BatchNorm statistics: cumulative averages over a few random
    batches in train mode, then non-trivial affine parameters."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, size, size, generator=g))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    model.eval()


def resnet_features(model, x):
    """Pooled layer1..layer4 outputs, concatenated; checks that the layer4
    part is torchvision's avgpool output."""
    taps = []
    hooks = [getattr(model, 'layer%d' % i).register_forward_hook(
        lambda m, inp, out: taps.append(out.mean(dim=(2, 3)))) for i in range(1, 5)]
    pooled = []
    hooks.append(model.avgpool.register_forward_hook(lambda m, inp, out: pooled.append(torch.flatten(out, 1))))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    assert len(taps) == 4 and torch.allclose(taps[3], pooled[0], atol=1e-12)
    return torch.cat(taps, dim=1)


def make_resnet(model, seed, size, n_images, input_seed, wdtype):
    calibrate_bn(model, size, seed)
    round_params(model, wdtype)
    model = model.double()
    feats = resnet_features(model, golden_input(input_seed, n_images, size))
    return state_arrays(model.state_dict(), np.float16 if wdtype == torch.float16 else np.float32), feats


# ---- CLIP -----------------------------------------------------------------------------------

def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def random_clip(width, layers, heads, patch, grid, mlp, seed, prefix='vision_model.'):
    g = torch.Generator().manual_seed(seed)

    def lin(o, i):
        return torch.randn(o, i, generator=g) / i ** 0.5

    def vec(n, scale=0.05, base=0.0):
        return base + torch.randn(n, generator=g) * scale

    w = {}
    e = prefix + 'embeddings.'
    w[e + 'patch_embedding.weight'] = torch.randn(width, 3, patch, patch, generator=g) / (3 * patch * patch) ** 0.5
    w[e + 'class_embedding'] = torch.randn(width, generator=g) * 0.5
    w[e + 'position_embedding.weight'] = torch.randn(grid * grid + 1, width, generator=g) * 0.2
    w[prefix + 'pre_layrnorm.weight'] = vec(width, 0.1, 1.0)
    w[prefix + 'pre_layrnorm.bias'] = vec(width, 0.1)
    for i in range(layers):
        p = prefix + 'encoder.layers.%d.' % i
        for ln in ('layer_norm1', 'layer_norm2'):
            w[p + ln + '.weight'] = vec(width, 0.1, 1.0)
            w[p + ln + '.bias'] = vec(width, 0.1)
        for proj in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
            w[p + 'self_attn.%s.weight' % proj] = lin(width, width)
            w[p + 'self_attn.%s.bias' % proj] = vec(width)
        w[p + 'mlp.fc1.weight'] = lin(mlp, width)
        w[p + 'mlp.fc1.bias'] = vec(mlp)
        w[p + 'mlp.fc2.weight'] = lin(width, mlp)
        w[p + 'mlp.fc2.bias'] = vec(width)
    w[prefix + 'post_layernorm.weight'] = vec(width, 0.1, 1.0)
    w[prefix + 'post_layernorm.bias'] = vec(width, 0.1)
    return w


def clip_embed(w, x, patch, prefix):
    e = prefix + 'embeddings.'
    h = F.conv2d(x, w[e + 'patch_embedding.weight'], stride=patch).flatten(2).transpose(1, 2)
    cls = w[e + 'class_embedding'].expand(x.shape[0], 1, -1)
    h = torch.cat([cls, h], dim=1) + w[e + 'position_embedding.weight']
    return F.layer_norm(h, h.shape[-1:], w[prefix + 'pre_layrnorm.weight'], w[prefix + 'pre_layrnorm.bias'], 1e-5)


def clip_features_torch(w, x, width, layers, heads, patch, mlp, prefix):
    """torch.nn.TransformerEncoderLayer(norm_first=True) with the HF weights."""
    h = clip_embed(w, x, patch, prefix)
    taps = []
    for i in range(layers):
        p = prefix + 'encoder.layers.%d.' % i
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=mlp, dropout=0.0, activation=quick_gelu,
                                           layer_norm_eps=1e-5, batch_first=True, norm_first=True).double().eval()
        sd = {
            'self_attn.in_proj_weight': torch.cat([w[p + 'self_attn.%s_proj.weight' % c] for c in 'qkv']),
            'self_attn.in_proj_bias': torch.cat([w[p + 'self_attn.%s_proj.bias' % c] for c in 'qkv']),
            'self_attn.out_proj.weight': w[p + 'self_attn.out_proj.weight'],
            'self_attn.out_proj.bias': w[p + 'self_attn.out_proj.bias'],
            'linear1.weight': w[p + 'mlp.fc1.weight'], 'linear1.bias': w[p + 'mlp.fc1.bias'],
            'linear2.weight': w[p + 'mlp.fc2.weight'], 'linear2.bias': w[p + 'mlp.fc2.bias'],
            'norm1.weight': w[p + 'layer_norm1.weight'], 'norm1.bias': w[p + 'layer_norm1.bias'],
            'norm2.weight': w[p + 'layer_norm2.weight'], 'norm2.bias': w[p + 'layer_norm2.bias'],
        }
        layer.load_state_dict(sd)
        seen = []
        hook = layer.norm2.register_forward_hook(lambda m, inp, out: seen.append(out[:, 0, :].clone()))
        with torch.no_grad():
            h = layer(h)
        hook.remove()
        assert len(seen) == 1, 'the fast path skipped norm2'
        taps.append(seen[0])
    pooled = F.layer_norm(h[:, 0, :], (width,), w[prefix + 'post_layernorm.weight'], w[prefix + 'post_layernorm.bias'],
                          1e-5)
    return torch.cat(taps + [pooled], dim=1)


def clip_features_hf(w, x, width, layers, heads, patch, prefix):
    """The HF CLIPEncoderLayer formula written out, as a cross-check."""
    h = clip_embed(w, x, patch, prefix)
    B, L, _ = h.shape
    d = width // heads
    taps = []
    for i in range(layers):
        p = prefix + 'encoder.layers.%d.' % i

        def lin(t, name):
            return t @ w[p + name + '.weight'].T + w[p + name + '.bias']

        r = h
        t = F.layer_norm(h, (width,), w[p + 'layer_norm1.weight'], w[p + 'layer_norm1.bias'], 1e-5)
        q = lin(t, 'self_attn.q_proj') * d ** -0.5
        k = lin(t, 'self_attn.k_proj')
        v = lin(t, 'self_attn.v_proj')
        q, k, v = (z.view(B, L, heads, d).transpose(1, 2) for z in (q, k, v))
        a = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        h = r + lin(a.transpose(1, 2).reshape(B, L, width), 'self_attn.out_proj')
        t = F.layer_norm(h, (width,), w[p + 'layer_norm2.weight'], w[p + 'layer_norm2.bias'], 1e-5)
        taps.append(t[:, 0, :])
        h = h + lin(quick_gelu(lin(t, 'mlp.fc1')), 'mlp.fc2')
    pooled = F.layer_norm(h[:, 0, :], (width,), w[prefix + 'post_layernorm.weight'], w[prefix + 'post_layernorm.bias'],
                          1e-5)
    return torch.cat(taps + [pooled], dim=1)


def make_clip(width, layers, heads, patch, grid, mlp, seed, n_images, input_seed, wdtype):
    prefix = 'vision_model.'
    w = random_clip(width, layers, heads, patch, grid, mlp, seed, prefix)
    w = {k: v.to(wdtype).to(torch.float64) for k, v in w.items()}
    x = golden_input(input_seed, n_images, grid * patch)
    feats = clip_features_torch(w, x, width, layers, heads, patch, mlp, prefix)
    check = clip_features_hf(w, x, width, layers, heads, patch, prefix)
    err = (feats - check).abs().max().item()
    assert err < 1e-9, 'TransformerEncoderLayer and the HF formula disagree by %g' % err
    npd = np.float16 if wdtype == torch.float16 else np.float32
    arrays = {k: v.numpy().astype(npd) for k, v in w.items()}
    # HF files carry this integer buffer; the loader must skip it
    arrays[prefix + 'embeddings.position_ids'] = np.arange(grid * grid + 1, dtype=np.int64)[None, :]
    return arrays, feats


def ref_meta(what, n_images, input_seed, size, extra):
    meta = {'input': INPUT_DOC, 'input_seed': str(input_seed), 'images': str(n_images), 'input_size': str(size),
            'generator': 'tests/golden/make-backbone-golden.py', 'torch': torch.__version__,
            'torchvision': torchvision.__version__, 'model': what}
    meta.update(extra)
    return meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--full', metavar='DIR', help='write full-size ResNet-50 and ViT-L/14 files to DIR')
    ap.add_argument('--skip-clip', action='store_true', help='with --full: ResNet-50 only')
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    if not args.full:
        torch.manual_seed(1)
        model = NarrowResNet([2, 1, 1, 1], stem=8, widths=[8, 16, 32, 64])
        weights, feats = make_resnet(model, seed=2, size=224, n_images=2, input_seed=11, wdtype=torch.float16)
        write_safetensors(os.path.join(HERE, 'resnet_tiny.safetensors'), weights,
                          {'about': 'random NarrowResNet (torchvision Bottleneck) for test-backbone-resnet'})
        write_safetensors(os.path.join(HERE, 'resnet_tiny_ref.safetensors'),
                          {'features': feats.numpy().astype(np.float32)},
                          ref_meta('NarrowResNet [2,1,1,1] stem 8 widths 8,16,32,64, fp16 weights', 2, 11, 224,
                                   {'taps': 'layer1 0-31, layer2 32-95, layer3 96-223, layer4 224-479'}))
        weights, feats = make_clip(width=64, layers=3, heads=4, patch=14, grid=4, mlp=256, seed=3, n_images=3,
                                   input_seed=12, wdtype=torch.float16)
        write_safetensors(os.path.join(HERE, 'clip_tiny.safetensors'), weights,
                          {'num_attention_heads': '4', 'hidden_act': 'quick_gelu', 'layer_norm_eps': '1e-05'})
        write_safetensors(os.path.join(HERE, 'clip_tiny_ref.safetensors'),
                          {'features': feats.numpy().astype(np.float32)},
                          ref_meta('HF-named CLIP ViT width 64, 3 layers, 4 heads, patch 14, image 56, mlp 256, '
                                   'fp16 weights', 3, 12, 56,
                                   {'taps': 'block_0..block_2 (layer_norm2 CLS) then pooled, 64 each'}))
        return

    d = args.full
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None)
    weights, feats = make_resnet(model, seed=5, size=224, n_images=2, input_seed=21, wdtype=torch.float32)
    write_safetensors(os.path.join(d, 'resnet50.safetensors'), weights, {'about': 'random torchvision resnet50'})
    write_safetensors(os.path.join(d, 'resnet50_ref.safetensors'), {'features': feats.numpy().astype(np.float32)},
                      ref_meta('torchvision resnet50(weights=None), seed 0', 2, 21, 224, {}))
    print('wrote', d, 'resnet50', flush=True)
    if args.skip_clip:
        return
    weights, feats = make_clip(width=1024, layers=24, heads=16, patch=14, grid=16, mlp=4096, seed=6, n_images=1,
                               input_seed=22, wdtype=torch.float32)
    write_safetensors(os.path.join(d, 'clip-vit-l14', 'model.safetensors'), weights, {'format': 'pt'})
    write_safetensors(os.path.join(d, 'clip-vit-l14_ref.safetensors'), {'features': feats.numpy().astype(np.float32)},
                      ref_meta('random CLIP ViT-L/14 vision tower', 1, 22, 224, {}))
    print('wrote', d, 'clip-vit-l14', flush=True)


if __name__ == '__main__':
    main()
