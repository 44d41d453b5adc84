# End-to-end checks of `flopcut prune` on a real exported ResNet-50 (and small hand-made models):
# every rule of the issue is re-checked from the written ONNX file with numpy, and ONNX Runtime runs it.
# Run: python3 -m pytest tests/py/test_prune.py  (FLOPCUT_BIN overrides build/flopcut)
#
# Rules as tested (README "Prune a model" states them for users):
# - global: exactly floor(S*N) of the N prunable weights are zero afterwards (zeros already there count
#   first); the order is (|w|, layer order, index): every removed |w| <= every kept |w|, and weights tied
#   at the cut are kept except as many as exactness needs, removed first in layer/index order.
# - kept weights are bit-identical to the input; everything that is not a prunable weight is untouched.
# - --min-threshold P: floor = ceil(P/100 * N); every layer keeps >= min(its size, floor); layers the
#   global cut would push under their floor keep exactly their floor (their largest weights), the others
#   share one threshold; if the floors alone keep more than (1-S)*N, the floors win and a warning says so.
# - nm N:M: groups of M consecutive input channels at fixed (output channel, kernel position).
# - block OxI: blocks of O output channels x I input channels at a fixed kernel position, removed whole
#   by ascending L2 norm (tail blocks compared by RMS) while removed elements stay <= floor(S*N).
# - --target-macs F: nonzero MACs <= F * dense MACs, and within one weight's MACs of it.
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("FLOPCUT_BIN", "build/flopcut"))
MODELS = os.path.join(ROOT, "build", "models")
TORCH_PYTHON = os.environ.get("FLOPCUT_TORCH_PYTHON", "/usr/bin/python3")


def run(*args, timeout=900):
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def need_bin():
    if not os.path.exists(BIN):
        pytest.fail("flopcut binary not found at %s (build it or set FLOPCUT_BIN)" % BIN)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_weights(path):
    """Every stored tensor of a model as numpy (sparse initializers densified by hand)."""
    m = onnx.load(path)
    out = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for sp in m.graph.sparse_initializer:
        dense = np.zeros(int(np.prod(sp.dims)), dtype=numpy_helper.to_array(sp.values).dtype)
        dense[numpy_helper.to_array(sp.indices).astype(np.int64)] = numpy_helper.to_array(sp.values)
        out[sp.values.name] = dense.reshape(tuple(sp.dims))
    for n in m.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = numpy_helper.to_array(a.t)
    return m, out


def ort_run(path, feeds):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


@pytest.fixture(scope="session")
def r50():
    """ResNet-50 (torchvision, random init, opset 13): exported once into build/models (~15 s)."""
    path = os.path.join(MODELS, "resnet50.onnx")
    if not os.path.exists(path):
        if not os.path.exists(TORCH_PYTHON):
            pytest.skip("no torch python to export resnet50 (%s)" % TORCH_PYTHON)
        p = run(TORCH_PYTHON, os.path.join(ROOT, "tools", "export_models.py"), MODELS, "resnet50")
        if p.returncode != 0:
            pytest.skip("cannot export resnet50: %s" % p.stderr.strip()[-300:])
    need_bin()
    digest = sha256(path)
    _, weights = load_weights(path)
    info = {"path": path, "weights": weights, "cache": {}}
    yield info
    assert sha256(path) == digest, "the input model was modified"


@pytest.fixture(scope="session")
def outdir(tmp_path_factory):
    return tmp_path_factory.mktemp("prune")


@pytest.fixture(scope="session")
def r50_input():
    return np.random.RandomState(0).standard_normal((1, 3, 224, 224)).astype(np.float32)


def prune(r50, outdir, *args):
    """Runs flopcut prune on ResNet-50 once per argument list; returns (report, output, weights)."""
    key = tuple(args)
    if key not in r50["cache"]:
        out = os.path.join(outdir, "r50_%d.onnx" % len(r50["cache"]))
        p = run(BIN, "prune", r50["path"], "-o", out, "--format", "json", *args)
        assert p.returncode == 0, p.stderr
        report = json.loads(p.stdout)
        _, weights = load_weights(out)
        r50["cache"][key] = (report, out, weights, p.stderr)
    return r50["cache"][key]


def layer_arrays(report, before, after):
    return [(l, before[l["tensor"]], after[l["tensor"]]) for l in report["layers"]]


def check_untouched_and_bits(report, before, after):
    """Kept weights bit-identical; removed ones are +0/-0; every non-weight tensor unchanged."""
    tensors = {l["tensor"] for l in report["layers"]}
    assert set(after) == set(before)
    for name, a in before.items():
        b = after[name]
        assert a.shape == b.shape and a.dtype == b.dtype, name
        if name not in tensors:
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), "%s changed" % name
            continue
        kept = b != 0
        assert np.array_equal(a[kept].view(np.uint32), b[kept].view(np.uint32)), "%s: kept weight altered" % name
        assert not np.any(b[~kept]), name


def check_report_counts(report, after):
    for l in report["layers"]:
        w = after[l["tensor"]]
        assert l["weights"] == w.size
        assert l["kept"] == int(np.count_nonzero(w)), l["layer"]


def check_global_order(arrs):
    """Removed |w| <= kept |w| over all layers; ties at the cut removed strictly before kept ones in
    (layer, index) order. arrs: [(before, after)] of the layers taking part."""
    removed_max, kept_min = 0.0, math.inf
    for a, b in arrs:
        mag = np.abs(a).ravel()
        rem = b.ravel() == 0
        if rem.any():
            removed_max = max(removed_max, float(mag[rem].max()))
        if (~rem).any():
            kept_min = min(kept_min, float(mag[~rem].min()))
    assert removed_max <= kept_min, (removed_max, kept_min)
    if removed_max == kept_min:  # a tie straddles the cut: removed ties come first
        seq = []
        for a, b in arrs:
            mag, rem = np.abs(a).ravel(), b.ravel() == 0
            seq.extend(rem[mag == removed_max].tolist())
        first_kept = seq.index(False)
        assert all(not x for x in seq[first_kept:]), "a tied weight was removed after a kept one"
    return removed_max


def check_ort(path, x, reference=None):
    y = ort_run(path, {"input": x})[0]
    assert y.shape == (1, 1000) and np.all(np.isfinite(y))
    if reference is not None:
        assert np.array_equal(y, ort_run(reference, {"input": x})[0])
    return y


def profile(path, *extra):
    p = run(BIN, "profile", path, "--format", "json", *extra)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


# ---------------------------------------------------------------------------------------------
# ResNet-50


@pytest.mark.parametrize("sparsity", [0.9, 0.5])
def test_global_exact_threshold_and_bits(r50, outdir, r50_input, sparsity):
    report, out, after, _ = prune(r50, outdir, "--sparsity", str(sparsity))
    before = r50["weights"]
    assert report["method"] == "global" and len(report["layers"]) == 54
    n = sum(l["weights"] for l in report["layers"])
    assert n == 25502912 == report["totals"]["weights"]
    k = math.floor(sparsity * n)
    zeros = sum(int(np.count_nonzero(after[l["tensor"]] == 0)) for l in report["layers"])
    assert zeros == k == report["totals"]["target_removed"]
    assert report["totals"]["kept"] == n - k
    check_untouched_and_bits(report, before, after)
    check_report_counts(report, after)
    check_global_order([(a, b) for _, a, b in layer_arrays(report, before, after)])
    check_ort(out, r50_input)


def test_global_profile_agrees(r50, outdir):
    """`flopcut profile` on the pruned file reports the same weight sparsity and nonzero MACs."""
    report, out, after, _ = prune(r50, outdir, "--sparsity", "0.9")
    prof = profile(out)
    assert prof["totals"]["nonzero_macs"] == report["totals"]["nonzero_macs"]
    assert prof["totals"]["macs"] == report["totals"]["dense_macs"] == 4089184256
    nodes = {n["name"]: n for n in prof["nodes"]}
    for l in report["layers"]:
        node = nodes[l["nodes"][0]]
        assert node["weight_sparsity"] == pytest.approx(l["sparsity"], abs=1e-6)
        assert node["nonzero_macs"] == l["nonzero_macs"]
        assert l["nonzero_macs"] == l["dense_macs"] // l["weights"] * l["kept"]
    assert 0.20 < report["totals"]["macs_kept"] < 0.25  # REFERENCE.md: random ResNet-50 keeps ~22 %


def test_sparse_initializers(r50, outdir, r50_input):
    dense_report, dense_out, dense_w, _ = prune(r50, outdir, "--sparsity", "0.9")
    report, out, after, _ = prune(r50, outdir, "--sparsity", "0.9", "--sparse-initializers")
    m = onnx.load(out)
    assert len(m.graph.sparse_initializer) > 0
    for sp in m.graph.sparse_initializer:
        assert sp.indices.data_type == TensorProto.INT64 and list(sp.indices.dims) == list(sp.values.dims)
    assert os.path.getsize(out) < 0.4 * os.path.getsize(dense_out)
    for name, a in dense_w.items():
        assert np.array_equal(a.view(np.uint8), after[name].view(np.uint8)), name
    # flopcut's loader densifies sparse initializers: the profile is identical
    p_dense, p_sparse = profile(dense_out), profile(out)
    del p_dense["model"], p_sparse["model"]
    assert p_dense == p_sparse
    check_ort(out, r50_input, reference=dense_out)


def test_min_threshold_floors_win(r50, outdir, r50_input):
    """98 % with MT 0.05 %: floors (12,752 per layer) keep 676,608 > 510,058 weights, so every layer
    sits at its floor, the achieved sparsity is reported and a warning says why."""
    report, out, after, stderr = prune(r50, outdir, "--sparsity", "0.98", "--min-threshold", "0.05")
    before = r50["weights"]
    n = report["totals"]["weights"]
    floor = math.ceil(0.05 / 100 * n)
    assert report["totals"]["floor"] == floor == 12752
    check_untouched_and_bits(report, before, after)
    check_report_counts(report, after)
    kept_total = 0
    for l, a, b in layer_arrays(report, before, after):
        kept = int(np.count_nonzero(b))
        assert kept >= min(l["weights"], floor), l["layer"]
        assert l["floor"] == min(l["weights"], floor)
        kept_total += kept
    assert kept_total == sum(min(l["weights"], floor) for l in report["layers"]) == 676608
    assert report["warnings"] and "minimum threshold" in stderr
    check_ort(out, r50_input)


def test_min_threshold_feasible(r50, outdir, r50_input):
    """98 % with MT 0.01 %: exact count; floored layers keep exactly their floor (their largest
    weights); the other layers share one global threshold."""
    report, out, after, _ = prune(r50, outdir, "--sparsity", "0.98", "--min-threshold", "0.01")
    before = r50["weights"]
    n = report["totals"]["weights"]
    floor = math.ceil(0.01 / 100 * n)
    assert not report["warnings"]
    zeros = sum(int(np.count_nonzero(after[l["tensor"]] == 0)) for l in report["layers"])
    assert zeros == math.floor(0.98 * n)
    check_untouched_and_bits(report, before, after)
    free, floored = [], 0
    for l, a, b in layer_arrays(report, before, after):
        kept = int(np.count_nonzero(b))
        assert kept >= min(l["weights"], floor), l["layer"]
        if kept == min(l["weights"], floor):
            floored += 1
            check_global_order([(a, b)])  # its largest weights
        else:
            free.append((a, b))
    assert floored > 0 and free, "the case should exercise both kinds of layer"
    t = check_global_order(free)
    # the floors bind: the other layers are pruned harder than plain Global MP prunes them
    plain, _, plain_w, _ = prune(r50, outdir, "--sparsity", "0.98")
    assert t > check_global_order([(a, b) for _, a, b in layer_arrays(plain, before, plain_w)])
    check_ort(out, r50_input)


def test_layer_uniform(r50, outdir, r50_input):
    report, out, after, _ = prune(r50, outdir, "--method", "layer", "--sparsity", "0.7")
    before = r50["weights"]
    check_untouched_and_bits(report, before, after)
    for l, a, b in layer_arrays(report, before, after):
        assert int(np.count_nonzero(b == 0)) == math.floor(0.7 * a.size), l["layer"]
        check_global_order([(a, b)])
    check_ort(out, r50_input)


@pytest.mark.parametrize("threads", [1, 2])
def test_pruned_resnet50_runs_like_ort(r50, outdir, r50_input, threads):
    """The 90 %-per-layer ResNet-50 through flopcut's sparse kernels (every conv is sparse at this
    density) against ONNX Runtime on the same pruned file."""
    _, out, _, _ = prune(r50, outdir, "--method", "layer", "--sparsity", "0.9")
    x = os.path.join(outdir, "r50_x.npy")
    y = os.path.join(outdir, "r50_y_%d.npy" % threads)
    np.save(x, r50_input)
    p = run(BIN, "run", out, "--input", x, "--output", y, "--threads", threads)
    assert p.returncode == 0, p.stderr
    got, want = np.load(y), ort_run(out, {"input": r50_input})[0]
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def groups_along_k(w, op):
    """[groups of consecutive input channels..., M] views: conv [Cout,Cin,kh,kw] -> [Cout,kh,kw,Cin];
    Gemm (transB=1) [N,K] as is."""
    return np.moveaxis(w, 1, -1) if op == "Conv" else w


def test_nm_2_4(r50, outdir, r50_input):
    report, out, after, _ = prune(r50, outdir, "--method", "nm", "--nm", "2:4")
    before = r50["weights"]
    check_untouched_and_bits(report, before, after)
    dense = [l for l in report["layers"] if l["status"] == "left_dense"]
    assert [l["layer"] for l in dense] == ["/conv1/Conv"]  # Cin = 3
    assert "not a multiple of 4" in dense[0]["note"]
    for l, a, b in layer_arrays(report, before, after):
        if l["status"] == "left_dense":
            assert np.array_equal(a, b)
            continue
        ga = groups_along_k(a, l["op_type"]).reshape(-1, 4)
        gb = groups_along_k(b, l["op_type"]).reshape(-1, 4)
        assert np.all(np.count_nonzero(gb, axis=1) <= 2), l["layer"]
        # the two kept are the two largest of each group
        kept_min = np.where(gb != 0, np.abs(ga), np.inf).min(axis=1)
        removed_max = np.where(gb == 0, np.abs(ga), -np.inf).max(axis=1)
        assert np.all(removed_max <= kept_min), l["layer"]
    assert report["totals"]["sparsity"] == pytest.approx(0.5 * (1 - 9408 / 25502912), abs=1e-6)
    check_ort(out, r50_input)


def block_view(w, op):
    """[Cout/4, 4, rest]: blocks of 4 consecutive output channels at a fixed (cin, kh, kw)."""
    return w.reshape(w.shape[0] // 4, 4, -1)


def test_block_4x1(r50, outdir, r50_input):
    report, out, after, _ = prune(r50, outdir, "--method", "block", "--block", "4x1", "--sparsity", "0.9")
    before = r50["weights"]
    check_untouched_and_bits(report, before, after)
    n = report["totals"]["weights"]
    removed_max, kept_min, removed = 0.0, math.inf, 0
    for l, a, b in layer_arrays(report, before, after):
        assert a.shape[0] % 4 == 0  # no tail blocks in ResNet-50
        va, vb = block_view(a, l["op_type"]), block_view(b, l["op_type"])
        nz = np.count_nonzero(vb, axis=1)
        gone = nz == 0
        orig_nz = np.count_nonzero(va, axis=1)
        assert np.all((nz == 0) | (nz == orig_nz)), "%s: a block was cut partly" % l["layer"]
        norms = np.sqrt((va.astype(np.float64) ** 2).sum(axis=1)).astype(np.float32)
        if gone.any():
            removed_max = max(removed_max, float(norms[gone].max()))
        if (~gone).any():
            kept_min = min(kept_min, float(norms[~gone].min()))
        removed += int(gone.sum()) * 4
    assert removed_max <= kept_min
    k = math.floor(0.9 * n)
    assert k - 4 < removed <= k
    check_ort(out, r50_input)


def test_layer_blocks_4x1(r50, outdir, r50_input):
    """--method layer --block 4x1: blocks ranked within each layer, each layer at most ⌊S·n⌋ removed
    (and within one block of it), whole blocks only, smallest norms first in every layer."""
    report, out, after, _ = prune(r50, outdir, "--method", "layer", "--block", "4x1", "--sparsity", "0.9")
    assert report["method"] == "layer" and report["block"] == "4x1"
    before = r50["weights"]
    check_untouched_and_bits(report, before, after)
    for l, a, b in layer_arrays(report, before, after):
        va, vb = block_view(a, l["op_type"]), block_view(b, l["op_type"])
        nz = np.count_nonzero(vb, axis=1)
        gone = nz == 0
        assert np.all(gone | (nz == np.count_nonzero(va, axis=1))), "%s: a block was cut partly" % l["layer"]
        norms = np.sqrt((va.astype(np.float64) ** 2).sum(axis=1)).astype(np.float32)
        if gone.any() and (~gone).any():
            assert norms[gone].max() <= norms[~gone].min(), l["layer"]
        k = math.floor(0.9 * a.size)
        assert k - 4 < int(gone.sum()) * 4 <= k, l["layer"]
    check_ort(out, r50_input)


def test_target_macs(r50, outdir, r50_input):
    report, out, after, _ = prune(r50, outdir, "--target-macs", "0.2")
    before = r50["weights"]
    t = report["totals"]
    budget = math.floor(0.2 * t["dense_macs"])
    assert t["nonzero_macs"] <= budget
    assert t["nonzero_macs"] >= 0.99 * budget
    # the exact count is within one weight's MACs (the largest MACs per weight: conv1, 112x112)
    assert budget - t["nonzero_macs"] < 112 * 112
    assert profile(out)["totals"]["nonzero_macs"] == t["nonzero_macs"]
    check_untouched_and_bits(report, before, after)
    check_global_order([(a, b) for _, a, b in layer_arrays(report, before, after)])
    check_ort(out, r50_input)


def test_exclude(r50, outdir):
    report, out, after, _ = prune(r50, outdir, "--sparsity", "0.9", "--exclude", "/fc/*", "--exclude",
                                  "onnx::Conv_497")  # conv1's weight, by tensor name
    before = r50["weights"]
    status = {l["layer"]: l["status"] for l in report["layers"]}
    assert status["/fc/Gemm"] == "excluded" and status["/conv1/Conv"] == "excluded"
    assert sum(s == "excluded" for s in status.values()) == 2
    check_untouched_and_bits(report, before, after)
    active = [(l, a, b) for l, a, b in layer_arrays(report, before, after) if l["status"] != "excluded"]
    for l, a, b in layer_arrays(report, before, after):
        if l["status"] == "excluded":
            assert np.array_equal(a, b)
    n = sum(a.size for _, a, _ in active)
    assert n == report["totals"]["weights"] == 25502912 - 2048000 - 9408
    assert sum(int(np.count_nonzero(b == 0)) for _, _, b in active) == math.floor(0.9 * n)
    check_global_order([(a, b) for _, a, b in active])


def test_refuses_to_overwrite_input(r50, tmp_path):
    path = r50["path"]
    link = tmp_path / "link.onnx"
    os.symlink(path, link)
    for target in [path, os.path.join(os.path.dirname(path), ".", os.path.basename(path)), str(link)]:
        p = run(BIN, "prune", path, "-o", target, "--sparsity", "0.5")
        assert p.returncode != 0, target
        msg = p.stderr.strip()
        assert "\n" not in msg and "input" in msg, msg
    # the symlink still points at the untouched input (checked by the fixture's hash at the end)
    assert os.path.islink(link)


def test_dry_run_writes_nothing(r50, tmp_path):
    out = tmp_path / "never.onnx"
    p = run(BIN, "prune", r50["path"], "-o", out, "--sparsity", "0.9", "--dry-run", "--format", "json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["dry_run"] and r["output"] is None and not out.exists()
    assert not [f for f in os.listdir(tmp_path) if f.startswith("never")]
    t = run(BIN, "prune", r50["path"], "--sparsity", "0.9", "--dry-run")
    assert t.returncode == 0 and "MACs" in t.stdout and "dry run" in t.stdout


# ---------------------------------------------------------------------------------------------
# Small hand-made models: weights behind Identity and Constant nodes, shared tensors, errors


def small_model(path):
    """x[1,8,6,6] -> Conv(W1 via Identity) -> Conv(W2 from a Constant node) -> Reshape [18,16] ->
    MatMul(Ws) -> MatMul(Ws again: shared) -> MatMul(Wa) -> y. Wa also feeds an Add (second output z),
    so pruning it would change z: it is reported as not prunable."""
    rng = np.random.RandomState(1)
    w1 = (rng.standard_normal((8, 8, 3, 3)) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((8, 8, 1, 1)) * 0.1).astype(np.float32)
    ws = (rng.standard_normal((16, 16)) * 0.1).astype(np.float32)
    wa = (rng.standard_normal((16, 16)) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Identity", ["W1"], ["W1i"], name="id_w1"),
        helper.make_node("Conv", ["x", "W1i"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["W2"], name="const_w2", value=numpy_helper.from_array(w2, "W2v")),
        helper.make_node("Conv", ["c1", "W2"], ["c2"], name="conv2"),
        helper.make_node("Reshape", ["c2", "shape"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "Ws"], ["m1"], name="mm1"),
        helper.make_node("MatMul", ["m1", "Ws"], ["m2"], name="mm2"),
        helper.make_node("MatMul", ["m2", "Wa"], ["m3"], name="mm3"),
        helper.make_node("Identity", ["m3"], ["y"], name="out_y"),
        helper.make_node("Add", ["Wa", "Wa"], ["z"], name="add_wa"),
    ]
    inits = [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(ws, "Ws"),
             numpy_helper.from_array(wa, "Wa"), numpy_helper.from_array(np.array([18, 16], np.int64), "shape")]
    g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [18, 16]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [16, 16])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)
    return {"W1": w1, "W2": w2, "Ws": ws, "Wa": wa}


def test_small_model_identity_constant_shared(tmp_path):
    need_bin()
    src = str(tmp_path / "small.onnx")
    orig = small_model(src)
    out = str(tmp_path / "small_pruned.onnx")
    p = run(BIN, "prune", src, "-o", out, "--sparsity", "0.5", "--format", "json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    layers = {l["tensor"]: l for l in r["layers"]}
    assert set(layers) == {"W1", "W2", "Ws"}
    assert layers["Ws"]["nodes"] == ["mm1", "mm2"]  # shared: pruned once, MACs of both
    assert layers["Ws"]["dense_macs"] == 2 * 18 * 16 * 16
    skipped = {s["node"]: s["reason"] for s in r["not_prunable"]}
    assert "mm3" in skipped and "add_wa" in skipped["mm3"]
    _, after = load_weights(out)
    n = sum(a.size for k, a in orig.items() if k != "Wa")
    assert sum(int(np.count_nonzero(after[k] == 0)) for k in layers) == math.floor(0.5 * n)
    assert np.array_equal(after["Wa"], orig["Wa"])
    check_global_order([(orig[k], after[k]) for k in ["W1", "W2", "Ws"]])
    x = np.random.RandomState(2).standard_normal((1, 8, 6, 6)).astype(np.float32)
    y = ort_run(out, {"x": x})[0]
    assert y.shape == (18, 16) and np.all(np.isfinite(y))
    prof = profile(out)
    assert prof["totals"]["nonzero_macs"] == r["totals"]["nonzero_macs"]
    # sparse initializers: Constant stays dense, W1/Ws become sparse when that is smaller
    out2 = str(tmp_path / "small_sparse.onnx")
    p = run(BIN, "prune", src, "-o", out2, "--sparsity", "0.9", "--sparse-initializers", "--format", "json")
    assert p.returncode == 0, p.stderr
    m2 = onnx.load(out2)
    assert {s.values.name for s in m2.graph.sparse_initializer} == {"W1", "Ws"}
    y2 = ort_run(out2, {"x": x})[0]
    out3 = str(tmp_path / "small_dense90.onnx")
    assert run(BIN, "prune", src, "-o", out3, "--sparsity", "0.9").returncode == 0
    assert np.array_equal(y2, ort_run(out3, {"x": x})[0])
    p2, p3 = profile(out2), profile(out3)
    del p2["model"], p3["model"]
    assert p2 == p3


@pytest.mark.parametrize("args, words", [
    ([], "--sparsity"),
    (["--sparsity", "0.5"], "-o"),
    (["-o", "X.onnx"], "--sparsity"),
    (["-o", "X.onnx", "--sparsity", "1.5"], "between 0 and 1"),
    (["-o", "X.onnx", "--sparsity", "0.5", "--target-macs", "0.5"], "not both"),
    (["-o", "X.onnx", "--nm", "2:4", "--sparsity", "0.5"], "N:M"),
    (["-o", "X.onnx", "--nm", "5:4"], "--nm"),
    (["-o", "X.onnx", "--method", "block", "--sparsity", "0.5"], "--block"),
    (["-o", "X.onnx", "--method", "layer", "--sparsity", "0.5", "--min-threshold", "1"], "--min-threshold"),
    (["-o", "X.onnx", "--method", "layer", "--target-macs", "0.5"], "--target-macs"),
    (["-o", "X.onnx", "--method", "magic", "--sparsity", "0.5"], "--method"),
    (["-o", "X.onnx", "--sparsity", "0.5", "--bogus"], "--bogus"),
])
def test_usage_errors(tmp_path, args, words):
    need_bin()
    src = str(tmp_path / "small.onnx")
    small_model(src)
    p = run(BIN, "prune", src, *[str(tmp_path / a) if a == "X.onnx" else a for a in args])
    assert p.returncode != 0
    msg = p.stderr.strip()
    assert msg and words in msg, msg
    assert not (tmp_path / "X.onnx").exists()


# ---------------------------------------------------------------------------------------------
# Channel axes of every weight layout, checked with numpy: N:M groups and blocks run where the
# README says, tail blocks compete by RMS, and ONNX Runtime runs each result.

def one_node_model(path, op, x_shape, w, attrs, weight_first, y_shape):
    names = ["W", "x"] if weight_first else ["x", "W"]
    node = helper.make_node(op, names, ["y"], name="n_" + op, **attrs)
    g = helper.make_graph([node], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                          [numpy_helper.from_array(w, "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


RNG = np.random.RandomState(3)
LAYOUTS = {
    # name: (op, x shape, weight, attrs, weight_first, y shape, out_axis, in_axis)
    "conv": ("Conv", [1, 8, 5, 5], RNG.standard_normal((12, 8, 3, 3)), {}, False, [1, 12, 3, 3], 0, 1),
    "conv_transpose": ("ConvTranspose", [1, 8, 5, 5], RNG.standard_normal((8, 6, 3, 3)), {}, False, [1, 6, 7, 7], 1, 0),
    "gemm_b": ("Gemm", [3, 8], RNG.standard_normal((8, 6)), {}, False, [3, 6], 1, 0),
    "gemm_bt": ("Gemm", [3, 8], RNG.standard_normal((6, 8)), {"transB": 1}, False, [3, 6], 0, 1),
    "gemm_at": ("Gemm", [8, 6], RNG.standard_normal((8, 3)), {"transA": 1}, True, [3, 6], 1, 0),
    "matmul_batched": ("MatMul", [2, 3, 8], RNG.standard_normal((2, 8, 6)), {}, False, [2, 3, 6], 2, 1),
    "matmul_a": ("MatMul", [8, 6], RNG.standard_normal((3, 8)), {}, True, [3, 6], 0, 1),
}


def blocks_of(w, out_axis, in_axis, bo, bi):
    """[..., n_out/bo, bo, n_in/bi, bi] (tails padded with NaN) of the weight's (out, in) plane."""
    v = np.moveaxis(w, [out_axis, in_axis], [-2, -1]).astype(np.float64)
    no, ni = v.shape[-2], v.shape[-1]
    po, pi = -no % bo, -ni % bi
    v = np.pad(v, [(0, 0)] * (v.ndim - 2) + [(0, po), (0, pi)], constant_values=np.nan)
    v = v.reshape(v.shape[:-2] + (v.shape[-2] // bo, bo, v.shape[-1] // bi, bi))
    return np.moveaxis(v, -3, -2).reshape(-1, bo * bi)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_axes(tmp_path, name):
    need_bin()
    op, x_shape, w, attrs, wfirst, y_shape, out_axis, in_axis = LAYOUTS[name]
    w = (w * 0.1).astype(np.float32)
    src = str(tmp_path / "m.onnx")
    one_node_model(src, op, x_shape, w, attrs, wfirst, y_shape)
    x = RNG.standard_normal(x_shape).astype(np.float32)
    # N:M along the input axis
    out = str(tmp_path / "nm.onnx")
    p = run(BIN, "prune", src, "-o", out, "--nm", "2:4", "--format", "json")
    assert p.returncode == 0, p.stderr
    after = load_weights(out)[1]["W"]
    g_before = np.moveaxis(w, in_axis, -1).reshape(-1, 4)
    g_after = np.moveaxis(after, in_axis, -1).reshape(-1, 4)
    assert np.all(np.count_nonzero(g_after, axis=1) == 2)
    kept_min = np.where(g_after != 0, np.abs(g_before), np.inf).min(axis=1)
    assert np.all(np.where(g_after == 0, np.abs(g_before), -np.inf).max(axis=1) <= kept_min)
    assert np.all(np.isfinite(ort_run(out, {"x": x})[0]))
    # 4x2 blocks over (out, in), 50 %: whole blocks go, by RMS (tails included)
    out = str(tmp_path / "blk.onnx")
    p = run(BIN, "prune", src, "-o", out, "--block", "4x2", "--sparsity", "0.5", "--format", "json")
    assert p.returncode == 0, p.stderr
    bb, ba = blocks_of(w, out_axis, in_axis, 4, 2), blocks_of(after := load_weights(out)[1]["W"], out_axis, in_axis, 4, 2)
    real = ~np.isnan(bb)
    gone = np.array([not np.any(r[m]) for r, m in zip(ba, real)])
    for r, m, b in zip(ba, real, bb):
        assert not np.any(r[m]) or np.array_equal(r[m], b[m]), "a block was cut partly"
    rms = np.array([math.sqrt(np.mean(b[m] ** 2)) for b, m in zip(bb, real)], np.float32)
    assert gone.any() and (~gone).any()
    assert rms[gone].max() <= rms[~gone].min()
    assert int(real[gone].sum()) <= math.floor(0.5 * w.size)
    assert np.all(np.isfinite(ort_run(out, {"x": x})[0]))


def test_external_data_written_inline(tmp_path):
    """A model keeping its weights in external data: the output, in another folder, is self-contained."""
    need_bin()
    src_dir, out_dir = tmp_path / "src", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    op, x_shape, w, attrs, wfirst, y_shape, _, _ = LAYOUTS["conv"]
    w = (w * 0.1).astype(np.float32)
    one_node_model(str(tmp_path / "tmp.onnx"), op, x_shape, w, attrs, wfirst, y_shape)
    m = onnx.load(str(tmp_path / "tmp.onnx"))
    m.graph.initializer.append(numpy_helper.from_array(np.arange(64, dtype=np.float32), "unused_big"))
    onnx.save_model(m, str(src_dir / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.bin", size_threshold=0)
    out = str(out_dir / "p.onnx")
    p = run(BIN, "prune", str(src_dir / "m.onnx"), "-o", out, "--sparsity", "0.5")
    assert p.returncode == 0, p.stderr
    assert os.listdir(out_dir) == ["p.onnx"]
    pm = onnx.load(out, load_external_data=False)
    assert all(t.data_location != TensorProto.EXTERNAL for t in pm.graph.initializer)
    after = {t.name: numpy_helper.to_array(t) for t in pm.graph.initializer}
    assert np.array_equal(after["unused_big"], np.arange(64, dtype=np.float32))
    assert int(np.count_nonzero(after["W"] == 0)) == w.size // 2
    x = RNG.standard_normal(x_shape).astype(np.float32)
    assert np.all(np.isfinite(ort_run(out, {"x": x})[0]))


# ---------------------------------------------------------------------------------------------
# flopcut sensitivity: the change each layer alone causes, checked against ONNX Runtime running
# the same single-layer prunings done with numpy.

def small_cnn(path):
    rng = np.random.RandomState(5)
    w = {"W1": rng.standard_normal((8, 3, 3, 3)) * 0.3, "W2": rng.standard_normal((16, 8, 3, 3)) * 0.2,
         "W3": rng.standard_normal((10, 16)) * 0.5}
    w = {k: v.astype(np.float32) for k, v in w.items()}
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "W2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "W3", "b3"], ["y"], name="fc", transB=1),
    ]
    inits = [numpy_helper.from_array(v, k) for k, v in w.items()]
    inits.append(numpy_helper.from_array(np.linspace(-1, 1, 10).astype(np.float32), "b3"))
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)
    return m, w


def numpy_prune(w, s):
    """The documented per-layer rule: floor(s*n) smallest |w| removed, ties in index order."""
    flat = w.ravel().copy()
    flat[np.argsort(np.abs(flat), kind="stable")[:math.floor(s * flat.size)]] = 0
    return flat.reshape(w.shape)


def test_sensitivity_matches_ort(tmp_path):
    need_bin()
    src = str(tmp_path / "cnn.onnx")
    model, w = small_cnn(src)
    x = np.random.RandomState(6).standard_normal((5, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    p = run(BIN, "sensitivity", src, "--input", tmp_path / "x.npy", "--sparsities", "0.5,0.9", "--format", "json")
    if p.returncode and "has no kernel in the runtime" in p.stderr:
        pytest.skip("the runtime cannot run this model yet: " + p.stderr.strip())
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["runs"] == 5 and r["sparsities"] == [0.5, 0.9]
    assert {l["layer"] for l in r["layers"]} == {"conv1", "conv2", "fc"}
    keys = [l["results"][1]["rel_l2"] for l in r["layers"]]
    assert keys == sorted(keys, reverse=True), "most sensitive first"

    def outputs(m):
        s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])

    y0 = outputs(model)
    for l in r["layers"]:
        for res in l["results"]:
            m = onnx.ModelProto()
            m.CopyFrom(model)
            for t in m.graph.initializer:
                if t.name == l["tensor"]:
                    t.CopyFrom(numpy_helper.from_array(numpy_prune(w[t.name], res["sparsity"]), t.name))
            y = outputs(m)
            rel = float(np.linalg.norm(y - y0) / np.linalg.norm(y0))
            assert res["rel_l2"] == pytest.approx(rel, rel=1e-3, abs=1e-5), (l["layer"], res["sparsity"])
            agree = float(np.mean(y.argmax(1) == y0.argmax(1)))
            assert abs(res["top1_agreement"] - agree) <= 1 / len(x) + 1e-9, (l["layer"], res["sparsity"])
    t = run(BIN, "sensitivity", src, "--input", tmp_path / "x.npy")
    assert t.returncode == 0 and "conv2" in t.stdout and "90%" in t.stdout
    bad = run(BIN, "sensitivity", src, "--input", tmp_path / "x.npy", "--sparsities", "0.5,2")
    assert bad.returncode != 0 and "--sparsities" in bad.stderr
    # the model file is not touched
    assert onnx.load(src).SerializeToString() == model.SerializeToString()
