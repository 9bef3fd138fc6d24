#!/usr/bin/python3
# make-dcr-golden.py — golden outputs of the DCR heads from PyTorch (1.13, run
# with Debian's /usr/bin/python3): the seed's DifferenceAttention made to
# attend over k difference tokens, the ResidualHead and the classifier, with
# fixed-seed random weights. Writes, per case, a model file in DCR's format
# (loaded by the C test through dcr_model_load) and a file of inputs,
# expected outputs, losses and parameter gradients (torch autograd).
#
#   /usr/bin/python3 tests/golden/make-dcr-golden.py tests/golden
import json, os, struct, sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)  # the reference is computed in double


class DifferenceAttention(nn.Module):
    """The seed's module, with K/V from L difference tokens instead of one."""

    def __init__(self, feature_dim, hidden_dim, gate):
        super().__init__()
        self.query_layer = nn.Linear(feature_dim, hidden_dim)
        self.key_layer = nn.Linear(feature_dim, hidden_dim)
        self.value_layer = nn.Linear(feature_dim, hidden_dim)
        self.out_layer = nn.Linear(hidden_dim, feature_dim)
        self.scale = hidden_dim ** -0.5
        self.use_gate = gate
        if gate:
            self.gate = nn.Sequential(nn.Linear(feature_dim * 2, feature_dim), nn.Sigmoid())

    def forward(self, original_feat, difference_feat):
        # original_feat [B, D]; difference_feat [B, L, D]
        Q = self.query_layer(original_feat).unsqueeze(1)  # [B, 1, H]
        K = self.key_layer(difference_feat)               # [B, L, H]
        V = self.value_layer(difference_feat)             # [B, L, H]
        attn = (Q @ K.transpose(-2, -1)) * self.scale     # [B, 1, L]
        attn = attn.softmax(dim=-1)
        context = (attn @ V).squeeze(1)                   # [B, H]
        context = self.out_layer(context)                 # [B, D]
        if self.use_gate:
            g = self.gate(torch.cat([original_feat, context], dim=1))
            return original_feat + g * context, attn.squeeze(1)
        return original_feat + context, attn.squeeze(1)


class ResidualHead(nn.Module):
    def __init__(self, feature_dim, hidden):
        super().__init__()
        self.head = nn.Sequential(
            nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 1), nn.Sigmoid())

    def forward(self, difference_feat, mask=None):
        if mask is None:  # eval: dropout is the identity
            return self.head(difference_feat)
        h = self.head[1](self.head[0](difference_feat)) * mask  # training, with a fixed dropout mask
        return self.head[4](self.head[3](h))


class DCRHeads(nn.Module):
    def __init__(self, feature_dim, hidden, head_hidden, gate):
        super().__init__()
        self.fusion = DifferenceAttention(feature_dim, hidden, gate)
        self.classifier = nn.Linear(feature_dim, 2)
        self.residual_head = ResidualHead(feature_dim, head_hidden)

    def forward(self, f, r, mask=None):
        fh = F.normalize(f, dim=1)
        rh = F.normalize(r, dim=2)
        d = torch.abs(fh.unsqueeze(1) - rh)               # [B, L, D]; d[:, 0] is the nearest
        anomaly = self.residual_head(d[:, 0], mask)
        fused, attn = self.fusion(fh, d)
        logits = self.classifier(fused)
        return logits, anomaly.squeeze(1), fused, attn, d[:, 0]


def supcon(features, labels, temperature=0.07, base_temperature=0.07):
    """SupConLoss of Khosla et al. (official code, contrast_mode 'all', one view)."""
    n = features.shape[0]
    mask = torch.eq(labels.view(-1, 1), labels.view(1, -1)).double()
    adc = features @ features.T / temperature
    logits = adc - adc.max(dim=1, keepdim=True)[0].detach()
    logits_mask = 1 - torch.eye(n)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
    return (-(temperature / base_temperature) * mean_log_prob_pos).mean()


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    codes = {torch.float32: ('F32', 'f'), torch.int32: ('I32', 'i')}
    for name, t in tensors:
        t = t.detach().contiguous()
        if t.dtype == torch.float64:
            t = t.float()
        dt, fmt = codes[t.dtype]
        data = struct.pack('<%d%s' % (t.numel(), fmt), *t.flatten().tolist())
        header[name] = {'dtype': dt, 'shape': list(t.shape), 'data_offsets': [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata:
        header['__metadata__'] = metadata
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as out:
        out.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def make_case(outdir, name, seed, B, L, D, H, HR, gate):
    torch.manual_seed(seed)
    model = DCRHeads(D, H, HR, gate)
    with torch.no_grad():
        # sharper query/key so the softmax over the tokens is far from uniform
        model.fusion.query_layer.weight.mul_(10)
        model.fusion.key_layer.weight.mul_(40)
        for p in model.parameters():  # the values the f32 model file will hold
            p.copy_(p.float().double())
    f = torch.randn(B, D).float().double()
    r = (f.unsqueeze(1) + 0.6 * torch.randn(B, L, D)).float().double()  # near the suspect, as retrieval finds them
    labels = torch.tensor([0, 1, 0, 1, 1, 0][:B], dtype=torch.int32)
    mask = (torch.rand(B, HR) >= 0.3).double() / 0.7  # the dropout mask of one training step
    lam = torch.tensor([0.7, 0.3])                    # λ1 (BCE), λ2 (SupCon)

    model.eval()
    with torch.no_grad():
        logits, anomaly, fused, attn, resid = model(f, r)
        p_fake = logits.softmax(dim=1)[:, 1]

    model.train()
    logits_t, anomaly_t, fused_t, _, _ = model(f, r, mask)
    ce = F.cross_entropy(logits_t, labels.long())
    bce = F.binary_cross_entropy(anomaly_t, labels.double())
    sc = supcon(F.normalize(fused_t, dim=1), labels)
    loss = ce + lam[0] * bce + lam[1] * sc
    loss.backward()

    params = list(model.state_dict().items())
    meta = {
        'format': 'dcr-model', 'version': '1', 'backbone': 'golden@000000000000', 'dim': str(D), 'k': str(L),
        'hidden': str(H), 'head_hidden': str(HR), 'gate': 'true' if gate else 'false', 'dropout': '0.3',
        'threshold': '0.5', 'band_lo': '0.4', 'band_hi': '0.6',
        'training': json.dumps({'source': 'make-dcr-golden.py', 'seed': seed}),
    }
    write_safetensors(os.path.join(outdir, name + '.safetensors'), params, meta)
    grads = [('grad.' + n, p.grad) for n, p in model.named_parameters()]
    io = [('f', f), ('r', r), ('labels', labels), ('mask', mask), ('lambda', lam),
          ('logits', logits), ('p_fake', p_fake), ('anomaly', anomaly), ('attention', attn),
          ('residual', resid), ('fused', fused),
          ('loss', torch.stack([loss, ce, bce, sc]).detach())] + grads
    write_safetensors(os.path.join(outdir, name + '-io.safetensors'), io)


if __name__ == '__main__':
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    make_case(outdir, 'dcr-golden-k3', 5, B=6, L=3, D=24, H=32, HR=16, gate=True)
    make_case(outdir, 'dcr-golden-k1', 6, B=6, L=1, D=24, H=32, HR=16, gate=False)
