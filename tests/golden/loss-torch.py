#!/usr/bin/python3
# loss-torch.py — writes loss-torch.h: the DCR training losses and optimizer
# steps computed by torch on fixed small inputs, the yardstick test-op-loss.c
# and test-op-optim.c check libdcr's references and GPU ops against.
# Cross-entropy, BCE, BCE-with-logits, the official SupConLoss (HobbitLong/
# SupContrast, copied below) through F.normalize, MoCo's InfoNCE, and
# torch.optim.AdamW / SGD over a few steps. Inputs are stored as well.
#
#   /usr/bin/python3 tests/golden/loss-torch.py
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(1234)


class SupConLoss(torch.nn.Module):
    """The official SupConLoss (Khosla et al.), contrast_mode 'all'."""

    def __init__(self, temperature=0.07, base_temperature=0.07):
        super().__init__()
        self.temperature = temperature
        self.base_temperature = base_temperature

    def forward(self, features, labels):
        batch_size = features.shape[0]
        labels = labels.contiguous().view(-1, 1)
        mask = torch.eq(labels, labels.T).float()
        contrast_count = features.shape[1]
        contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
        anchor_feature = contrast_feature
        anchor_count = contrast_count
        anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), self.temperature)
        logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
        logits = anchor_dot_contrast - logits_max.detach()
        mask = mask.repeat(anchor_count, contrast_count)
        logits_mask = torch.scatter(torch.ones_like(mask), 1,
                                    torch.arange(batch_size * anchor_count).view(-1, 1), 0)
        mask = mask * logits_mask
        exp_logits = torch.exp(logits) * logits_mask
        log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
        mask_pos_pairs = mask.sum(1)
        mask_pos_pairs = torch.where(mask_pos_pairs < 1e-6, torch.ones_like(mask_pos_pairs), mask_pos_pairs)
        mean_log_prob_pos = (mask * log_prob).sum(1) / mask_pos_pairs
        loss = -(self.temperature / self.base_temperature) * mean_log_prob_pos
        return loss.view(anchor_count, batch_size).mean()


out = []


def arr(name, t, ctype='float'):
    v = t.detach().reshape(-1).tolist()
    if ctype == 'float':
        body = ', '.join(flit(x) for x in v)
    else:
        body = ', '.join('%d' % x for x in v)
    out.append('static const %s %s[%d] = { %s };' % (ctype, name, len(v), body))


def flit(x):
    s = '%.9g' % x
    return s + ('f' if ('.' in s or 'e' in s) else '.0f')


def scalar(name, x):
    out.append('static const double %s = %.17g;' % (name, float(x)))


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def cross_entropy():
    logits = leaf(torch.randn(6, 3) * 2)
    labels = torch.tensor([0, 2, 1, -100, 2, 0])
    loss = F.cross_entropy(logits, labels)  # ignore_index -100, mean over the others
    loss.backward()
    arr('ce_logits', logits)
    arr('ce_labels', labels, 'gint32')
    scalar('ce_loss', loss)
    arr('ce_grad', logits.grad)


def bce():
    p = leaf(torch.tensor([0.0, 1.0, 0.0, 1e-8, 0.3, 0.9, 0.5, 0.999999]))
    t = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.2, 0.5, 0.0])
    loss = F.binary_cross_entropy(p, t)
    loss.backward()
    arr('bce_probs', p)
    arr('bce_targets', t)
    scalar('bce_loss', loss)
    arr('bce_grad', p.grad)

    z = leaf(torch.tensor([-100.0, -30.0, -2.5, -1e-3, 0.0, 0.7, 30.0, 100.0]))
    t = torch.tensor([0.0, 1.0, 0.3, 1.0, 0.5, 0.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(z, t)
    loss.backward()
    arr('bcel_logits', z)
    arr('bcel_targets', t)
    scalar('bcel_loss', loss)
    arr('bcel_grad', z.grad)


def supcon(tag, bsz, views, dim, labels, temperature, base_temperature):
    # raw features, flattened the way SupConLoss does: view-major
    x = leaf(torch.randn(views * bsz, dim))
    z = F.normalize(x, dim=1)
    z.retain_grad()
    feats = torch.stack(torch.split(z, bsz, dim=0), dim=1)  # [bsz, views, dim]
    loss = SupConLoss(temperature, base_temperature)(feats, torch.tensor(labels))
    loss.backward()
    out.append('#define SUPCON_%s_N %d\n#define SUPCON_%s_D %d' % (tag, views * bsz, tag, dim))
    out.append('static const float supcon_%s_temp = %s, supcon_%s_base = %s;'
               % (tag.lower(), flit(temperature), tag.lower(), flit(base_temperature)))
    arr('supcon_%s_x' % tag.lower(), x)
    arr('supcon_%s_labels' % tag.lower(), torch.tensor(labels * views), 'gint32')
    scalar('supcon_%s_loss' % tag.lower(), loss)
    arr('supcon_%s_dz' % tag.lower(), z.grad)
    arr('supcon_%s_dx' % tag.lower(), x.grad)


def infonce():
    b, d, qlen, t = 4, 6, 10, 0.07
    q = leaf(F.normalize(torch.randn(b, d), dim=1))
    k = leaf(F.normalize(torch.randn(b, d), dim=1))
    queue = F.normalize(torch.randn(qlen, d), dim=1)
    l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
    l_neg = torch.einsum('nc,kc->nk', [q, queue])
    logits = torch.cat([l_pos, l_neg], dim=1) / t
    loss = F.cross_entropy(logits, torch.zeros(b, dtype=torch.long))
    loss.backward()
    out.append('#define INFONCE_B %d\n#define INFONCE_D %d\n#define INFONCE_Q %d' % (b, d, qlen))
    out.append('static const float infonce_temp = %s;' % flit(t))
    arr('infonce_q', q)
    arr('infonce_k', k)
    arr('infonce_queue', queue)
    scalar('infonce_loss', loss)
    arr('infonce_dq', q.grad)
    arr('infonce_dk', k.grad)


def optimizers():
    n, steps = 9, 3
    p0 = torch.randn(n)
    grads = torch.randn(steps, n)
    grads[1, 0] = 0.0
    arr('optim_p0', p0)
    arr('optim_grads', grads)
    out.append('#define OPTIM_N %d\n#define OPTIM_STEPS %d' % (n, steps))
    runs = [
        ('adamw', lambda ps: torch.optim.AdamW(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
        ('amsgrad', lambda ps: torch.optim.AdamW(ps, lr=3e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.0,
                                                 amsgrad=True)),
        ('sgd', lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
        ('nesterov', lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, weight_decay=0.02, nesterov=True)),
    ]
    for name, make in runs:
        p = torch.nn.Parameter(p0.clone())
        opt = make([p])
        traj = []
        for s in range(steps):
            p.grad = grads[s].clone()
            opt.step()
            traj.append(p.detach().clone())
        arr('optim_%s_params' % name, torch.stack(traj))


def main():
    out.append('/* loss-torch.h — generated by loss-torch.py from torch %s; do not edit. */' % torch.__version__)
    out.append('#pragma once\n\n#include <glib.h>\n')
    cross_entropy()
    bce()
    supcon('A', 8, 1, 5, [0, 1, 0, 1, 1, 2, 0, 3], 0.07, 0.07)  # classes 2 and 3: no positives
    supcon('B', 4, 2, 7, [1, 0, 1, 1], 0.1, 0.07)
    infonce()
    optimizers()
    with open(os.path.join(HERE, 'loss-torch.h'), 'w') as f:
        f.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    main()
