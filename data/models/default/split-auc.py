#!/usr/bin/python3
# split-auc.py DATA_DIR SCAN_JSON — the model card's split of the test AUCs
# into whole-image and partial fakes (the manifest's `partial` column), for
# the seen generators (test/fake) and the held-out family
# (test-heldout/fake), each against the test photos (test/real). SCAN_JSON is
# `dcr scan --json` over those three folders' PNGs; the score is p_fake, as
# in `dcr eval`. Prints JSON.
import csv
import json
import os
import sys


def auc(pos, neg):
    """Mann–Whitney AUC, ties counting one half."""
    if not pos or not neg:
        return None
    neg = sorted(neg)
    s = 0.0
    for p in pos:
        lo = sum(1 for n in neg if n < p)
        eq = sum(1 for n in neg if n == p)
        s += lo + 0.5 * eq
    return s / (len(pos) * len(neg))


def main():
    data, scan = sys.argv[1], sys.argv[2]
    rows = {r['file']: r for r in csv.DictReader(open(os.path.join(data, 'manifest.csv')))}
    real, sets = [], {'seen': {'whole': [], 'partial': []}, 'heldout': {'whole': [], 'partial': []}}
    for item in json.load(open(scan)):
        if 'error' in item:
            sys.exit('split-auc: %s: %s' % (item['file'], item['error']))
        rel = os.path.relpath(os.path.abspath(item['file']), os.path.abspath(data))
        row = rows.get(rel)
        if row is None:
            sys.exit('split-auc: %s is not in the manifest' % item['file'])
        if row['label'] == 'real':
            real.append(item['p_fake'])
            continue
        which = 'heldout' if rel.startswith('test-heldout/') else 'seen'
        sets[which]['partial' if row['partial'] else 'whole'].append(item['p_fake'])
    out = {'n_real': len(real)}
    for name, s in sets.items():
        everything = s['whole'] + s['partial']
        out[name] = {k: {'n_fake': len(v), 'auc': auc(v, real)}
                     for k, v in (('all', everything), ('whole', s['whole']), ('partial', s['partial']))}
    json.dump(out, sys.stdout, indent=1)
    print()


main()
