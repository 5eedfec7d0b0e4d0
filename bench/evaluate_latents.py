#!/usr/bin/env python3
"""Latents of optimize-deformations against the truth of cryomotion simulate (pure Python).

usage: evaluate_latents.py OUT/forward_deformations/particles.star SIM/truth.csv

Prints per half: |Spearman| between latent PC1 and the first true coordinate, and for every
true coordinate the R² of its 15-nearest-neighbour prediction from the latent vector on
held-out particles (every 5th particle of the half). With refined shifts (--shift-refinement-sigma)
it also prints how far the STAR's origins and the refined ones are from the true origins."""
import csv, math, sys

def read_star(path):
    cols, rows, block, loop = [], [], None, False
    for line in open(path):
        l = line.strip()
        if l.startswith('data_'):
            block, loop = l, False
            if block == 'data_particles':
                cols = []
            continue
        if block != 'data_particles':
            continue
        if l.startswith('loop_'):
            loop = True
        elif l.startswith('_'):
            cols.append(l.split()[0][1:])
        elif l and loop:
            rows.append(l.split())
    return cols, rows

def pixel_size(path):
    cols, in_optics = [], False
    for line in open(path):
        l = line.strip()
        if l.startswith('data_'):
            in_optics = l == 'data_optics'
        elif in_optics and l.startswith('_'):
            cols.append(l.split()[0][1:])
        elif in_optics and l and not l.startswith('loop_'):
            return float(l.split()[cols.index('rlnImagePixelSize')])

def origin_errors(cols, rows, truth):
    """RMS distance (Å) of the STAR's origins and of the refined ones from the true origins."""
    x, y = cols.index('rlnOriginXAngst'), cols.index('rlnOriginYAngst')
    sx, sy = cols.index('cryomotionShiftXAngst'), cols.index('cryomotionShiftYAngst')
    before = after = 0.0
    for r, t in zip(rows, truth):
        dx = float(r[x]) - float(t['origin_x_angstrom']); dy = float(r[y]) - float(t['origin_y_angstrom'])
        before += dx * dx + dy * dy
        dx -= float(r[sx]); dy -= float(r[sy])
        after += dx * dx + dy * dy
    return math.sqrt(before / len(rows)), math.sqrt(after / len(rows))

def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    for k, i in enumerate(order):
        r[i] = float(k)
    return r

def pearson(a, b):
    n = len(a); ma = sum(a) / n; mb = sum(b) / n
    ab = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    aa = sum((x - ma) ** 2 for x in a); bb = sum((y - mb) ** 2 for y in b)
    return ab / math.sqrt(aa * bb) if aa > 0 and bb > 0 else 0.0

def pc1(X):
    d, n = len(X[0]), len(X)
    m = [sum(x[k] for x in X) / n for k in range(d)]
    C = [[sum((x[a] - m[a]) * (x[b] - m[b]) for x in X) / n for b in range(d)] for a in range(d)]
    v = [1.0 / math.sqrt(d)] * d
    for _ in range(300):
        w = [sum(C[a][b] * v[b] for b in range(d)) for a in range(d)]
        s = math.sqrt(sum(x * x for x in w)) or 1.0
        v = [x / s for x in w]
    return [sum((x[k] - m[k]) * v[k] for k in range(d)) for x in X]

def knn_r2(X, y, k=15):
    test = list(range(0, len(X), 5)); train = [i for i in range(len(X)) if i % 5]
    pred = []
    for t in test:
        near = sorted(train, key=lambda i: sum((a - b) ** 2 for a, b in zip(X[i], X[t])))[:k]
        pred.append(sum(y[i] for i in near) / len(near))
    truth = [y[t] for t in test]; m = sum(truth) / len(truth)
    tot = sum((t - m) ** 2 for t in truth); res = sum((t - p) ** 2 for t, p in zip(truth, pred))
    return 1 - res / tot if tot > 0 else 0.0

cols, rows = read_star(sys.argv[1])
latent = [cols.index(c) for c in cols if c.startswith('cryomotionLatent')]
half = cols.index('rlnRandomSubset')
truth = list(csv.DictReader(open(sys.argv[2])))
coords = [k for k in truth[0] if k.startswith('conformation') or k.startswith('mode_')]
for h in ('1', '2'):
    idx = [i for i, r in enumerate(rows) if r[half] == h][:3000]
    X = [[float(rows[i][j]) for j in latent] for i in idx]
    first = [float(truth[i][coords[0]]) for i in idx]
    rho = pearson(ranks(pc1(X)), ranks(first))
    r2 = [knn_r2(X, [float(truth[i][c]) for i in idx]) for c in coords]
    print(f"half {h}: |Spearman(PC1, {coords[0]})| = {abs(rho):.3f}; kNN R² " +
          ", ".join(f"{c} {v:.3f}" for c, v in zip(coords, r2)))
if 'cryomotionShiftXAngst' in cols:
    before, after = origin_errors(cols, rows, truth)
    pixel = pixel_size(sys.argv[1])
    print(f"origins off the truth: {before / pixel:.3f} px RMS in the STAR, {after / pixel:.3f} px refined")
