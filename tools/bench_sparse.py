# End-to-end sparse table: dense ONNX Runtime, dense flopcut and sparse flopcut on pruned copies of
# a model (per-layer 70/80/90/95 %, Global MP 90 %, MAC target 0.1, per-layer 90 % in 4x1 blocks), all runs interleaved in one
# session, at 1 and 2 threads; each row with its ideal speed-up (dense MACs / nonzero MACs).
# Usage: python3 tools/bench_sparse.py [--model resnet50] [--threads 1,2] [--iters N] [--out DIR]
#        [--check]   (also compares every pruned model's output with ONNX Runtime's)
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "flopcut")
spec = importlib.util.spec_from_file_location("fc_bench", os.path.join(ROOT, "tools", "bench.py"))
fb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fb)

VARIANTS = [  # (label, prune arguments or None for the original)
    ("layer 70%", ["--method", "layer", "--sparsity", "0.7"]),
    ("layer 80%", ["--method", "layer", "--sparsity", "0.8"]),
    ("layer 90%", ["--method", "layer", "--sparsity", "0.9"]),
    ("layer 95%", ["--method", "layer", "--sparsity", "0.95"]),
    ("global MP 90%", ["--method", "global", "--sparsity", "0.9"]),
    ("MAC target 0.1", ["--method", "global", "--target-macs", "0.1"]),
    ("layer 90% 4x1 blocks", ["--method", "layer", "--block", "4x1", "--sparsity", "0.9"]),
]


def prune(model, out_dir, label, args):
    path = os.path.join(out_dir, os.path.basename(model).replace(".onnx", "") + "_" +
                        label.replace(" ", "_").replace("%", "").replace(".", "") + ".onnx")
    if not os.path.exists(path):
        subprocess.run([BIN, "prune", model, "-o", path] + args, check=True, stdout=subprocess.DEVNULL)
    rep = json.loads(subprocess.run([BIN, "prune", model, "--dry-run", "--format", "json"] + args, check=True,
                                    capture_output=True, text=True).stdout)
    return path, rep


def ideal(rep):
    t = rep.get("totals", rep)
    for a, b in (("macs", "nonzero_macs"), ("dense_macs", "nonzero_macs")):
        if a in t and b in t and t[b]:
            return t[a] / t[b]
    return float("nan")


def check(model):
    import numpy as np
    import onnxruntime as ort
    x = np.random.default_rng(0).standard_normal([1, 3, 224, 224]).astype(np.float32)
    d = tempfile.mkdtemp()
    np.save(os.path.join(d, "x.npy"), x)
    subprocess.run([BIN, "run", model, "--input", os.path.join(d, "x.npy"), "--output", os.path.join(d, "y.npy")],
                   check=True)
    y = np.load(os.path.join(d, "y.npy"))
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    r = s.run(None, {s.get_inputs()[0].name: x})[0]
    # relative to the largest output magnitude (a collapsed pruned model can output all zeros)
    return float(np.abs(y - r).max() / max(float(np.abs(r).max()), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "pruned"))
    ap.add_argument("--variants", default="")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model = os.path.join(ROOT, "build", "models", a.model + ".onnx")
    variants = [v for v in VARIANTS if not a.variants or any(s in v[0] for s in a.variants.split(","))]
    pruned = []
    for label, args in variants:
        path, rep = prune(model, a.out, label, args)
        err = check(path) if a.check else None
        pruned.append((label, path, ideal(rep), err))
    npy = os.path.join(a.out, "input.npy")
    fb.make_input(npy)
    print("model %s; every row's runs interleaved with all others; median ms" % a.model)
    for th in [int(t) for t in a.threads.split(",")]:
        rows = [("ORT dense", "ort", model, None, 1.0, None), ("flopcut dense", "flopcut", model, "0", 1.0, None)]
        rows += [("flopcut " + l, "flopcut", p, None, i, e) for l, p, i, e in pruned]
        workers = []
        for label, eng, path, sparse_env, _, _ in rows:
            env = dict(os.environ)  # the dense flopcut row forces FLOPCUT_SPARSE=0, the others choose
            env.pop("FLOPCUT_SPARSE", None)
            if sparse_env is not None:
                env["FLOPCUT_SPARSE"] = sparse_env
            for w in workers:  # a pool still spinning would make the new worker's libgomp pick short spins
                w.wait_idle()
            workers.append(fb.Worker(eng, path, th, npy, env))
        times = [[] for _ in rows]
        try:
            for it in range(a.warmup + a.iters):
                order = range(len(rows)) if it % 2 == 0 else reversed(range(len(rows)))
                for i in order:
                    t = workers[i].run()
                    workers[i].wait_idle()  # ORT's pool spins after a run: not into the next timed run
                    if it >= a.warmup:
                        times[i].append(t)
        finally:
            for w in workers:
                w.close()
        ort_ms = statistics.median(times[0])
        print("\nthreads %d\n%-32s %10s %12s %8s %14s" % (th, "engine / model", "median ms", "vs ORT dense", "ideal",
                                                      "max err vs ORT"))
        for (label, _, _, _, idl, err), ts in zip(rows, times):
            med = statistics.median(ts)
            print("%-32s %10.2f %11.2fx %7.1fx %14s" % (label, med, ort_ms / med, idl,
                                                        "" if err is None else "%.1e" % err))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        fb.worker(*sys.argv[2:6])
    else:
        main()
