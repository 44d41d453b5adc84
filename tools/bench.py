# flopcut vs ONNX Runtime: median latency at 1 and 2 threads, runs interleaved, plus peak RSS.
# Usage: python3 tools/bench.py [--models a,b] [--threads 1,2] [--iters N] [--warmup N] [--json FILE]
#
# Each engine lives in its own worker process (flopcut through build/libflopcut.so with ctypes, ORT
# through its Python API, intra_op_num_threads=N, sequential execution) so neither's thread pool
# shares a process with the other. The driver alternates single runs: flopcut, ORT, flopcut, ORT...
# and takes the median of each engine's run times (measured inside the worker around one call, on
# the same seeded 1x3x224x224 input). Peak RSS: `flopcut run` on ResNet-50 vs a Python process that
# creates an ORT session and runs it once (the Python + numpy + onnxruntime import alone is shown).
import argparse
import ctypes
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(ROOT, "build", "models")
LIB = os.environ.get("FLOPCUT_LIB", os.path.join(ROOT, "build", "libflopcut.so"))
BIN = os.path.join(ROOT, "build", "flopcut")
TORCH_PYTHON = os.environ.get("FLOPCUT_TORCH_PYTHON", "/usr/bin/python3")
DEFAULT_MODELS = ["resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16"]


def make_input(path):
    import numpy as np
    x = np.random.default_rng(0).standard_normal([1, 3, 224, 224]).astype(np.float32)
    np.save(path, x)
    return x


# ---- workers ---------------------------------------------------------------------------------

class TensorView(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("dims", ctypes.c_int64 * 8), ("data", ctypes.c_void_p)]


class InputShape(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("rank", ctypes.c_int), ("dims", ctypes.c_int64 * 8)]


def flopcut_runner(model, threads, x):
    lib = ctypes.CDLL(LIB)
    lib.fc_ctx_create.restype = ctypes.c_void_p
    lib.fc_ctx_error.restype = ctypes.c_char_p
    lib.fc_ctx_error.argtypes = [ctypes.c_void_p]
    lib.fc_model_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(InputShape), ctypes.c_size_t,
                                  ctypes.POINTER(ctypes.c_void_p)]
    lib.fc_plan_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                   ctypes.POINTER(ctypes.c_void_p)]
    lib.fc_plan_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(TensorView), ctypes.c_size_t,
                                ctypes.POINTER(TensorView), ctypes.c_size_t]
    ctx = ctypes.c_void_p(lib.fc_ctx_create())
    shape = InputShape(b"input", 4, (ctypes.c_int64 * 8)(*x.shape, 0, 0, 0, 0))
    m, p = ctypes.c_void_p(), ctypes.c_void_p()
    if lib.fc_model_load(ctx, model.encode(), ctypes.byref(shape), 1, ctypes.byref(m)):
        sys.exit("flopcut: " + lib.fc_ctx_error(ctx).decode())
    opts = ctypes.c_int(threads)
    if lib.fc_plan_create(ctx, m, ctypes.byref(opts), ctypes.byref(p)):
        sys.exit("flopcut: " + lib.fc_ctx_error(ctx).decode())
    inp = TensorView(b"input", 1, 4, (ctypes.c_int64 * 8)(*x.shape, 0, 0, 0, 0), x.ctypes.data)
    out = TensorView()

    def once():
        out.data = None
        out.name = None
        if lib.fc_plan_run(ctx, p, ctypes.byref(inp), 1, ctypes.byref(out), 1):
            sys.exit("flopcut: " + lib.fc_ctx_error(ctx).decode())
    return once


def ort_runner(model, threads, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name

    def once():
        s.run(None, {name: x})
    return once


def machine_busy():
    # src/cli/omp_env.c's rule: another runnable thread now (median of 5 samples of /proc/loadavg's
    # running count, 2 ms apart) means the cores are oversubscribed and spinning would hurt
    samples = []
    for i in range(5):
        with open("/proc/loadavg") as f:
            samples.append(int(f.read().split()[3].split("/")[0]) - 1)
        time.sleep(0.002)
    return sorted(samples)[2] >= 1


def worker(engine, model, threads, npy):
    # what the flopcut CLI does for itself (src/cli/omp_env.c), before libgomp loads
    if engine == "flopcut" and "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", "1000" if machine_busy() else "300000")
    import numpy as np
    x = np.load(npy)
    once = (flopcut_runner if engine == "flopcut" else ort_runner)(model, threads, x)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t = time.perf_counter()
        once()
        sys.stdout.write("%.6f\n" % ((time.perf_counter() - t) * 1e3))
        sys.stdout.flush()


# ---- driver ----------------------------------------------------------------------------------

class Worker:
    def __init__(self, engine, model, threads, npy, env=None):
        """env: the worker's whole environment (default: this process's)"""
        env = dict(os.environ) if env is None else env
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", engine, model, str(threads),
                                   npy], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.p.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit("%s worker failed on %s" % (engine, model))

    def run(self):
        self.p.stdin.write("run\n")
        self.p.stdin.flush()
        return float(self.p.stdout.readline())

    def cpu_ns(self):
        total = 0
        for f in glob.glob("/proc/%d/task/*/schedstat" % self.p.pid):
            try:
                with open(f) as fh:
                    total += int(fh.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that ended while we read
        return total

    def wait_idle(self, limit_s=1.0):
        # ORT's intra-op pool spins ~45 ms on a core after each run (allow_spinning, its default); libgomp
        # spins too. A fixed pause shorter than that hands the spinning to the other engine's timed run, so
        # wait until this worker used under 0.5 ms of CPU in a 5 ms window (at most limit_s).
        prev, end = self.cpu_ns(), time.perf_counter() + limit_s
        while time.perf_counter() < end:
            time.sleep(0.005)
            cur = self.cpu_ns()
            if cur - prev < 500_000:
                return
            prev = cur

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def interleaved(model, threads, npy, iters, warmup):
    fc, rt = Worker("flopcut", model, threads, npy), Worker("ort", model, threads, npy)
    times = {"flopcut": [], "ort": []}
    try:
        for i in range(warmup + iters):
            for name, w in (("flopcut", fc), ("ort", rt)) if i % 2 == 0 else (("ort", rt), ("flopcut", fc)):
                t = w.run()
                w.wait_idle()  # its pool must stop spinning before the other's timed run
                if i >= warmup:
                    times[name].append(t)
    finally:
        fc.close()
        rt.close()
    return times


def peak_rss_kb(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    if os.WEXITSTATUS(status) != 0:
        raise SystemExit("failed: %s: %s" % (" ".join(cmd), p.stderr.read().decode()))
    return usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--worker", nargs=4, metavar=("ENGINE", "MODEL", "THREADS", "NPY"))
    a = ap.parse_args()
    if a.worker:
        worker(a.worker[0], a.worker[1], int(a.worker[2]), a.worker[3])
        return
    models = a.models.split(",")
    missing = [m for m in models if not os.path.exists(os.path.join(MODELS_DIR, m + ".onnx"))]
    if missing:
        p = subprocess.run([TORCH_PYTHON, os.path.join(ROOT, "tools", "export_models.py"), MODELS_DIR] + missing)
        if p.returncode:
            sys.exit("export failed")
    for f in (LIB, BIN):
        if not os.path.exists(f):
            sys.exit("%s missing: run make first" % f)
    npy = os.path.join(ROOT, "build", "bench_input.npy")
    make_input(npy)
    rows = []
    print("%-16s %3s %12s %12s %8s   %s" % ("model", "thr", "flopcut ms", "ORT ms", "ratio", "(min flopcut / ORT)"))
    for m in models:
        path = os.path.join(MODELS_DIR, m + ".onnx")
        for t in [int(v) for v in a.threads.split(",")]:
            times = interleaved(path, t, npy, a.iters, a.warmup)
            fm, om = statistics.median(times["flopcut"]), statistics.median(times["ort"])
            row = {"model": m, "threads": t, "flopcut_median_ms": fm, "ort_median_ms": om, "ratio": fm / om,
                   "flopcut_min_ms": min(times["flopcut"]), "ort_min_ms": min(times["ort"]), "iters": a.iters}
            rows.append(row)
            print("%-16s %3d %12.2f %12.2f %7.2fx   (%.2f / %.2f)" % (m, t, fm, om, fm / om, row["flopcut_min_ms"],
                                                                  row["ort_min_ms"]), flush=True)
    rss = {}
    r50 = os.path.join(MODELS_DIR, "resnet50.onnx")
    if os.path.exists(r50):
        out = os.path.join(ROOT, "build", "bench_output.npy")
        rss["flopcut_run_kb"] = peak_rss_kb([BIN, "run", r50, "--input", npy, "--output", out, "--threads", "1"])
        ort_cmd = ("import numpy as np, onnxruntime as ort, sys\n"
                   "so = ort.SessionOptions(); so.intra_op_num_threads = 1\n"
                   "s = ort.InferenceSession(sys.argv[1], so, providers=['CPUExecutionProvider'])\n"
                   "s.run(None, {'input': np.load(sys.argv[2])})\n")
        rss["ort_run_kb"] = peak_rss_kb([sys.executable, "-c", ort_cmd, r50, npy])
        rss["python_ort_import_kb"] = peak_rss_kb([sys.executable, "-c", "import numpy, onnxruntime"])
        print("\npeak RSS, ResNet-50, one run, 1 thread: flopcut run %.0f MB | ORT (python) %.0f MB "
              "(of which python+numpy+onnxruntime import %.0f MB)" % (rss["flopcut_run_kb"] / 1024,
                                                                     rss["ort_run_kb"] / 1024,
                                                                     rss["python_ort_import_kb"] / 1024))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "rss": rss}, f, indent=1)


if __name__ == "__main__":
    main()
