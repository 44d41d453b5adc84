# Fits the sparse cost model's coefficients (src/kernels/sparse/sparse_cost.c) to a CSV written by
# `build/bench_kernels --calib FILE.csv`: non-negative least squares on relative error, for the
# sparse features f0..f9 and for the dense model (per call, per MAC, per byte).
# Usage: python3 tools/fit_sparse_cost.py FILE.csv
import csv
import sys

import numpy as np


def nnls_rel(a, y):
    """min ||(a·θ - y) / y|| with θ ≥ 0, by dropping negative coefficients one at a time."""
    w = 1.0 / y
    active = list(range(a.shape[1]))
    while True:
        cols = [c for c in active if np.any(a[:, c])]
        th, *_ = np.linalg.lstsq(a[:, cols] * w[:, None], y * w, rcond=None)
        if (th >= 0).all():
            out = np.zeros(a.shape[1])
            out[cols] = th
            return out
        active.remove(cols[int(np.argmin(th))])


def report(name, pred, y):
    rel = np.abs(pred - y) / y
    print("%s: median |error| %.1f%%, 90th percentile %.1f%%, max %.1f%% over %d rows" %
          (name, 100 * np.median(rel), 100 * np.percentile(rel, 90), 100 * rel.max(), len(y)))


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    f = np.array([[float(r["f%d" % i]) for i in range(10)] for r in rows])
    ts = np.array([float(r["sparse_s"]) for r in rows])
    th = nnls_rel(f, ts)
    print("sparse theta = {" + ", ".join("%.3g" % t for t in th) + "}")
    report("sparse fit", f @ th, ts)
    report("sparse (current coefficients)", np.array([float(r["predicted_s"]) for r in rows]), ts)
    seen, d = set(), []
    for r in rows:
        if r["shape"] not in seen:
            seen.add(r["shape"])
        d.append((1.0, float(r["dense_macs"]), float(r["dense_bytes"]), float(r["dense_s"]), float(r["dense_predicted_s"])))
    d = np.array(d)
    dth = nnls_rel(d[:, :3], d[:, 3])
    print("dense theta = {%.3g, %.3g, %.3g}   (%.0f GFLOP/s on MACs)" % (dth[0], dth[1], dth[2], 2e-9 / dth[1] if dth[1] else 0))
    report("dense fit", d[:, :3] @ dth, d[:, 3])
    report("dense (current coefficients)", d[:, 4], d[:, 3])
    # how often the model's choice (chosen=1 rows) is the fastest variant measured
    best = {}
    for r, t in zip(rows, ts):
        k = (r["shape"], r["sparsity"])
        best.setdefault(k, []).append((t, r["chosen"] == "1"))
    lost = [min(t for t, c in v if c) / min(t for t, _ in v) for v in best.values() if any(c for _, c in v)]
    print("model's own choice vs the fastest variant: median %.2fx, worst %.2fx slower" % (np.median(lost), max(lost)))


if __name__ == "__main__":
    main()
