# `flopcut run` against ONNX Runtime: hand-built single-op and fused-pattern models covering the
# dense kernels, layouts and fusions; the small test models; the torchvision models (FLOPCUT_SLOW=1).
# Criterion (issue 3): max |flopcut - ORT| <= 1e-4 * max |ORT output| for every output.
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("FLOPCUT_BIN", "build/flopcut"))
MODELS = os.path.join(ROOT, "build", "models")
SLOW = os.environ.get("FLOPCUT_SLOW") == "1"
TORCH_PYTHON = os.environ.get("FLOPCUT_TORCH_PYTHON", "/usr/bin/python3")
ort = pytest.importorskip("onnxruntime")


def run(*args, timeout=900, env=None):
    if not os.path.exists(BIN):
        pytest.fail("flopcut binary not found at %s (build it or set FLOPCUT_BIN)" % BIN)
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([BIN] + list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)


def safe(name):
    return "".join("_" if c in "/\\: " or ord(c) < 32 else c for c in name) or "output"


def ort_run(path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return [o.name for o in s.get_outputs()], s.run(None, feeds)


def check_against_ort(path, feeds, tmp_path, threads=1, tol=1e-4, env=None):
    """Runs the model with flopcut and ORT on feeds (name -> array) and compares every output."""
    args = []
    for i, (name, x) in enumerate(feeds.items()):
        f = tmp_path / ("in%d.npy" % i)
        np.save(f, x)
        args += ["--input", "%s=%s" % (name, f)]
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    p = run("run", str(path), *args, "--output-dir", str(out), "--threads", str(threads), env=env)
    if p.returncode != 0 and "has no kernel in the runtime" in p.stderr:
        pytest.xfail("kernel not written yet: " + p.stderr.strip())
    assert p.returncode == 0, p.stderr
    names, refs = ort_run(str(path), feeds)
    for name, ref in zip(names, refs):
        got = np.load(out / (safe(name) + ".npy"))
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        assert got.dtype == ref.dtype, (name, got.dtype, ref.dtype)
        if ref.size == 0:
            continue
        err = np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()
        scale = np.abs(ref.astype(np.float64)).max()
        assert err <= tol * max(scale, 1e-30), "%s: max error %.3g vs max |ref| %.3g" % (name, err, scale)


# ---- single-op and pattern models --------------------------------------------------------------

class G:
    """A tiny graph builder: float inputs, initializers, nodes; outputs listed by name."""

    def __init__(self, seed=0, opset=13):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.inputs, self.feeds = [], [], [], {}
        self.opset = opset
        self.n = 0

    def input(self, name, shape):
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        self.feeds[name] = self.rng.standard_normal(shape).astype(np.float32)
        return name

    def const(self, shape, scale=0.5, positive=False):
        self.n += 1
        a = self.rng.standard_normal(shape).astype(np.float32) * scale
        if positive:
            a = np.abs(a) + 0.5
        name = "c%d" % self.n
        self.inits.append(numpy_helper.from_array(a.astype(np.float32), name))
        return name

    def scalar(self, v):
        self.n += 1
        name = "s%d" % self.n
        self.inits.append(numpy_helper.from_array(np.array(v, np.float32), name))
        return name

    def op(self, op, inputs, n_out=1, **attrs):
        self.n += 1
        outs = ["v%d_%d" % (self.n, k) for k in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name="n%d_%s" % (self.n, op), **attrs))
        return outs[0] if n_out == 1 else outs

    def save(self, path, outputs):
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
        g = helper.make_graph(self.nodes, "t", self.inputs, outs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 8
        onnx.save(m, str(path))
        return path


def conv_case(tmp_path, x_shape, w_shape, bias=True, env=None, **attrs):
    g = G()
    x = g.input("x", x_shape)
    ins = [x, g.const(w_shape)] + ([g.const([w_shape[0]])] if bias else [])
    y = g.op("Conv", ins, **attrs)
    check_against_ort(g.save(tmp_path / "m.onnx", [y]), g.feeds, tmp_path, env=env)


CONV_CASES = {
    "3x3_pad1": ([1, 8, 13, 11], [16, 8, 3, 3], dict(pads=[1, 1, 1, 1])),
    "1x1": ([2, 24, 7, 9], [40, 24, 1, 1], {}),
    "stride2_tail": ([1, 5, 17, 15], [19, 5, 3, 3], dict(strides=[2, 2], pads=[1, 0, 1, 2])),
    "groups": ([1, 12, 10, 10], [18, 4, 3, 3], dict(group=3, pads=[1, 1, 1, 1])),
    "depthwise_s2": ([1, 32, 15, 15], [32, 1, 3, 3], dict(group=32, strides=[2, 2], pads=[1, 1, 1, 1])),
    "depthwise_5x5": ([1, 20, 9, 9], [20, 1, 5, 5], dict(group=20, pads=[2, 2, 2, 2])),
    "dilation": ([1, 6, 16, 16], [7, 6, 3, 3], dict(dilations=[2, 3], pads=[2, 3, 2, 3])),
    "same_upper": ([1, 4, 10, 9], [6, 4, 4, 4], dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    "same_lower": ([1, 4, 10, 9], [6, 4, 4, 4], dict(auto_pad="SAME_LOWER", strides=[2, 2])),
    "valid": ([1, 4, 10, 9], [6, 4, 3, 2], dict(auto_pad="VALID")),
    "7x7_s2_rgb": ([1, 3, 32, 32], [16, 3, 7, 7], dict(strides=[2, 2], pads=[3, 3, 3, 3])),
    "conv1d": ([2, 6, 20], [5, 6, 3], dict(pads=[1, 1])),
    "conv3d": ([1, 3, 5, 6, 7], [4, 3, 3, 3, 3], dict(pads=[1, 1, 1, 1, 1, 1])),
    "no_bias": ([1, 8, 6, 6], [8, 8, 3, 3], dict(pads=[1, 1, 1, 1])),
    "to_1x1_spatial": ([1, 16, 3, 3], [10, 16, 3, 3], {}),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv(tmp_path, case):
    x, w, attrs = CONV_CASES[case]
    conv_case(tmp_path, x, w, bias=case != "no_bias", **attrs)


@pytest.mark.parametrize("case", ["3x3_pad1", "groups", "dilation", "same_lower", "conv1d", "conv3d"])
def test_conv_reference_kernel(tmp_path, case):
    """The scalar reference (the oracle of the unit tests, and the fallback) agrees with ORT too."""
    x, w, attrs = CONV_CASES[case]
    conv_case(tmp_path, x, w, env={"FC_FORCE_REF": "1"}, **attrs)


def test_dense_reference_kernels(tmp_path):
    g = G()
    x = g.input("x", [1, 4, 5, 5])
    y = g.op("ConvTranspose", [x, g.const([4, 3, 3, 3]), g.const([3])], strides=[2, 2], pads=[1, 0, 0, 1],
             output_padding=[1, 1])
    a = g.input("a", [2, 3, 6])
    mm = g.op("MatMul", [a, g.const([6, 5])])
    mm2 = g.op("MatMul", [g.input("c", [4, 1, 2, 3]), g.input("d", [3, 3, 2])])
    gm = g.op("Gemm", [g.input("e", [6, 4]), g.const([5, 6]), g.const([4, 5])], transA=1, transB=1, alpha=0.5,
              beta=1.5)
    check_against_ort(g.save(tmp_path / "m.onnx", [y, mm, mm2, gm]), g.feeds, tmp_path, env={"FC_FORCE_REF": "1"})


CONVT_CASES = {
    "s2": ([1, 8, 5, 6], [8, 4, 3, 3], dict(strides=[2, 2])),
    "s2_pads_outpad": ([1, 8, 5, 6], [8, 4, 3, 3], dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    "k2s2": ([1, 6, 4, 4], [6, 6, 2, 2], dict(strides=[2, 2])),
    "groups": ([1, 6, 5, 5], [6, 2, 3, 3], dict(group=3, strides=[2, 2], pads=[1, 1, 1, 1])),
    "dilation": ([1, 3, 5, 5], [3, 2, 3, 3], dict(dilations=[2, 2])),
    "output_shape": ([1, 4, 5, 5], [4, 3, 3, 3], dict(strides=[2, 2], output_shape=[10, 10])),
    "output_shape_even": ([1, 4, 5, 5], [4, 3, 3, 3], dict(strides=[2, 2], output_shape=[9, 9])),
    "same_upper": ([1, 4, 5, 5], [4, 3, 3, 3], dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    "same_lower": ([1, 4, 5, 5], [4, 3, 3, 3], dict(strides=[2, 2], auto_pad="SAME_LOWER")),
}


@pytest.mark.parametrize("case", sorted(CONVT_CASES))
def test_conv_transpose(tmp_path, case):
    x_shape, w_shape, attrs = CONVT_CASES[case]
    g = G()
    x = g.input("x", x_shape)
    cout = w_shape[1] * attrs.get("group", 1)
    y = g.op("ConvTranspose", [x, g.const(w_shape), g.const([cout])], **attrs)
    check_against_ort(g.save(tmp_path / "m.onnx", [y]), g.feeds, tmp_path)


GEMM_CASES = {
    "plain": dict(a=[7, 13], b=[13, 9], c=[9]),
    "transB": dict(a=[5, 16], b=[11, 16], c=[11], transB=1),
    "transA": dict(a=[16, 5], b=[16, 11], c=[11], transA=1),
    "alpha_beta": dict(a=[4, 6], b=[6, 3], c=[4, 3], alpha=0.5, beta=2.0),
    "c_scalar": dict(a=[4, 6], b=[6, 3], c=[], beta=0.25),
    "c_column": dict(a=[4, 6], b=[6, 3], c=[4, 1]),
    "no_c": dict(a=[3, 33], b=[33, 17]),
    "c_input": dict(a=[4, 6], b=[6, 3], c=[4, 3], c_input=True),
}


@pytest.mark.parametrize("case", sorted(GEMM_CASES))
def test_gemm(tmp_path, case):
    k = dict(GEMM_CASES[case])
    g = G()
    a = g.input("a", k.pop("a"))
    b = g.const(k.pop("b"))
    ins = [a, b]
    if "c" in k:
        c = k.pop("c")
        ins.append(g.input("c", c) if k.pop("c_input", False) else g.const(c))
    y = g.op("Gemm", ins, **k)
    check_against_ort(g.save(tmp_path / "m.onnx", [y]), g.feeds, tmp_path)


MATMUL_CASES = {
    "2d_const": ([9, 20], [20, 7], True),
    "batched_const": ([2, 5, 20], [20, 12], True),
    "batched_both": ([3, 4, 6, 5], [3, 4, 5, 7], False),
    "broadcast_a": ([1, 6, 5], [4, 5, 3], False),
    "broadcast_b": ([4, 6, 5], [1, 5, 3], False),
    "vec_left": ([5], [3, 5, 4], False),
    "vec_right": ([2, 3, 5], [5], False),
    "vec_vec": ([6], [6], False),
}


@pytest.mark.parametrize("case", sorted(MATMUL_CASES))
def test_matmul(tmp_path, case):
    a_shape, b_shape, b_const = MATMUL_CASES[case]
    g = G()
    a = g.input("a", a_shape)
    b = g.const(b_shape) if b_const else g.input("b", b_shape)
    y = g.op("MatMul", [a, b])
    check_against_ort(g.save(tmp_path / "m.onnx", [y]), g.feeds, tmp_path)


def resnet_block(g, x, c):
    """conv-bn-relu, conv-bn, + identity, relu: BN folding and the residual add as a post-op."""
    def bn(y):
        return g.op("BatchNormalization", [y, g.const([c], positive=True), g.const([c]), g.const([c]),
                                           g.const([c], positive=True)], epsilon=1e-5)
    y = g.op("Relu", [bn(g.op("Conv", [x, g.const([c, c, 3, 3], 0.2)], pads=[1, 1, 1, 1]))])
    y = bn(g.op("Conv", [y, g.const([c, c, 3, 3], 0.2), g.const([c])], pads=[1, 1, 1, 1]))
    return g.op("Relu", [g.op("Add", [y, x])])


def test_fused_resnet_block(tmp_path):
    g = G()
    x = g.input("x", [1, 16, 12, 12])
    y = resnet_block(g, resnet_block(g, x, 16), 16)
    check_against_ort(g.save(tmp_path / "m.onnx", [y]), g.feeds, tmp_path)


def test_fused_activations(tmp_path):
    """Clip(0,6), x*sigmoid(x), x*hardsigmoid(x), HardSigmoid, LeakyRelu, Tanh, scalar Mul/Add/Sub/Div."""
    g = G(opset=13)
    x = g.input("x", [1, 8, 9, 9])
    outs = []
    def conv(v, c_in=8, c_out=8):
        return g.op("Conv", [v, g.const([c_out, c_in, 3, 3], 0.3), g.const([c_out])], pads=[1, 1, 1, 1])
    y = g.op("Clip", [conv(x), g.scalar(0.0), g.scalar(6.0)])
    y1 = conv(y)
    outs.append(g.op("Mul", [y1, g.op("Sigmoid", [y1])]))
    y2 = conv(outs[-1])
    outs.append(g.op("Mul", [g.op("HardSigmoid", [y2], alpha=1.0 / 6, beta=0.5), y2]))
    outs.append(g.op("HardSigmoid", [conv(outs[-1])], alpha=0.2, beta=0.5))
    outs.append(g.op("LeakyRelu", [conv(outs[-1])], alpha=0.1))
    outs.append(g.op("Tanh", [conv(outs[-1])]))
    y3 = g.op("Div", [g.op("Sub", [g.op("Add", [g.op("Mul", [conv(outs[-1]), g.scalar(1.5)]), g.scalar(0.25)]),
                                   g.scalar(0.5)]), g.scalar(2.0)])
    outs.append(g.op("Sub", [g.scalar(1.0), y3]))
    check_against_ort(g.save(tmp_path / "m.onnx", outs), g.feeds, tmp_path)


def test_squeeze_excite_and_nhwc_ops(tmp_path):
    """Channels-last kernels: SE (GAP, 1x1 convs, channel Mul), Max/AveragePool, Concat, Add of two convs."""
    g = G()
    x = g.input("x", [2, 8, 11, 11])
    a = g.op("Relu", [g.op("Conv", [x, g.const([16, 8, 3, 3], 0.3), g.const([16])], pads=[1, 1, 1, 1])])
    s = g.op("GlobalAveragePool", [a])
    s = g.op("Relu", [g.op("Conv", [s, g.const([4, 16, 1, 1]), g.const([4])])])
    s = g.op("Sigmoid", [g.op("Conv", [s, g.const([16, 4, 1, 1]), g.const([16])])])
    se = g.op("Mul", [a, s])
    mp = g.op("MaxPool", [se], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    mpc = g.op("MaxPool", [se], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    ap = g.op("AveragePool", [se], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    ap2 = g.op("AveragePool", [se], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1])
    b1 = g.op("Conv", [mp, g.const([6, 16, 1, 1]), g.const([6])])
    b2 = g.op("Conv", [mp, g.const([5, 16, 3, 3]), g.const([5])], pads=[1, 1, 1, 1])
    cat = g.op("Concat", [b1, b2], axis=1)
    tail = g.op("Conv", [cat, g.const([7, 11, 1, 1]), g.const([7])])
    summed = g.op("Add", [g.op("Conv", [ap, g.const([7, 16, 1, 1])]), tail])
    gm = g.op("GlobalMaxPool", [summed])
    flat = g.op("Flatten", [gm])
    out = g.op("Gemm", [flat, g.const([3, 7]), g.const([3])], transB=1)
    check_against_ort(g.save(tmp_path / "m.onnx", [out, mpc, ap2, cat]), g.feeds, tmp_path)


def test_transformer_block(tmp_path):
    """MatMul + bias Add, erf-GELU fusion, attention MatMuls with Softmax, residual, LayerNorm pattern."""
    g = G()
    x = g.input("x", [1, 10, 32])
    h = g.op("Add", [g.const([64]), g.op("MatMul", [x, g.const([32, 64], 0.2)])])
    d = g.op("Erf", [g.op("Div", [h, g.scalar(1.4142135381698608)])])
    h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [d, g.scalar(1.0)])]), g.scalar(0.5)])
    h = g.op("Add", [g.op("MatMul", [h, g.const([64, 32], 0.2)]), g.const([32])])
    r = g.op("Add", [h, x])
    q = g.op("Reshape", [r, numpy_const(g, [1, 10, 4, 8])])
    q = g.op("Transpose", [q], perm=[0, 2, 1, 3])
    k = g.op("Transpose", [q], perm=[0, 1, 3, 2])
    att = g.op("Softmax", [g.op("Div", [g.op("MatMul", [q, k]), g.scalar(2.83)])], axis=-1)
    o = g.op("MatMul", [att, q])
    check_against_ort(g.save(tmp_path / "m.onnx", [o, r]), g.feeds, tmp_path)


def numpy_const(g, values):
    g.n += 1
    name = "i%d" % g.n
    g.inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
    return name


def test_threads_give_same_results(tmp_path):
    g = G()
    x = g.input("x", [1, 8, 30, 30])
    y = resnet_block(g, g.op("Conv", [x, g.const([16, 8, 3, 3], 0.3)], pads=[1, 1, 1, 1]), 16)
    check_against_ort(g.save(tmp_path / "m.onnx", [y]), g.feeds, tmp_path, threads=2)


def test_pinned_team_gives_same_results(tmp_path):
    """FLOPCUT_BIND=1 pins the 2-thread team to two CPUs during the run (runtime/affinity.c)."""
    g = G()
    x = g.input("x", [1, 8, 30, 30])
    y = resnet_block(g, g.op("Conv", [x, g.const([16, 8, 3, 3], 0.3)], pads=[1, 1, 1, 1]), 16)
    check_against_ort(g.save(tmp_path / "m.onnx", [y]), g.feeds, tmp_path, threads=2, env={"FLOPCUT_BIND": "1"})


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_user_binding_keeps_every_cpu(tmp_path):
    """With OMP_PROC_BIND set, libgomp pins the first thread as it loads; the CLI must not re-execute
    itself then (the new process would inherit a one-CPU mask and run every thread on one core)."""
    g = G()
    x = g.input("x", [1, 4, 8, 8])
    y = g.op("Relu", [x])
    path = g.save(tmp_path / "m.onnx", [y])
    np.save(tmp_path / "x.npy", g.feeds["x"])
    p = run("run", str(path), "--input", str(tmp_path / "x.npy"), "--output-dir", str(tmp_path), "--threads", "2",
            env={"OMP_PROC_BIND": "true", "OMP_DISPLAY_ENV": "true"})
    assert p.returncode == 0, p.stderr
    places = [l.split("=", 1)[1].strip() for l in p.stderr.splitlines() if l.strip().startswith("OMP_PLACES")]
    assert places and all(pl == places[0] for pl in places), places
    assert "," in places[0], places  # more than one place: {0},{1},...


# ---- the project's test models and the torchvision ones --------------------------------------

@pytest.fixture(scope="session")
def test_models(tmp_path_factory):
    out = tmp_path_factory.mktemp("rt_testmodels")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_test_models.py"), str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


@pytest.mark.parametrize("name,shape", [("tiny_cnn", [1, 1, 28, 28]), ("detector", [1, 3, 64, 64])])
def test_small_models(test_models, tmp_path, name, shape):
    path = test_models / (name + ".onnx")
    inp = onnx.load(str(path)).graph.input[0].name
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    check_against_ort(path, {inp: x}, tmp_path)


def with_intermediate_outputs(src, dst, count=3):
    """A copy of src that also outputs a few float values spread over the graph, so that a model
    whose head is zero-initialised (ViT) or whose outputs are tiny still checks the whole body."""
    m = onnx.load(src)
    skip = {"Constant", "Shape", "Gather", "Unsqueeze", "Concat", "Identity"}
    cands = [n.output[0] for n in m.graph.node if n.op_type not in skip]
    picks = [cands[int(len(cands) * (k + 1) / (count + 1))] for k in range(count)]
    for p in picks:
        m.graph.output.append(helper.make_tensor_value_info(p, TensorProto.FLOAT, None))
    onnx.save(m, dst)
    return dst


REFERENCE_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0",
                    "squeezenet1_1", "vit_b_16"]


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_reference_model_matches_ort(tmp_path, name):
    if not SLOW:
        pytest.skip("slow: set FLOPCUT_SLOW=1 (make test-slow)")
    path = os.path.join(MODELS, name + ".onnx")
    if not os.path.exists(path):
        p = subprocess.run([TORCH_PYTHON, os.path.join(ROOT, "tools", "export_models.py"), MODELS, name],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    probe = with_intermediate_outputs(path, str(tmp_path / "probe.onnx"))
    x = np.random.default_rng(0).standard_normal([1, 3, 224, 224]).astype(np.float32)
    check_against_ort(probe, {"input": x}, tmp_path, threads=2)


# ---- bad input to `run`, and `bench` --------------------------------------------------------------

@pytest.fixture
def small(tmp_path):
    g = G()
    x = g.input("x", [1, 4, 6, 6])
    y = g.op("Relu", [g.op("Conv", [x, g.const([5, 4, 3, 3])], pads=[1, 1, 1, 1])])
    path = g.save(tmp_path / "small.onnx", [y])
    good = tmp_path / "good.npy"
    np.save(good, g.feeds["x"])
    return path, good


def one_line_error(p):
    assert p.returncode != 0
    msg = p.stderr.strip()
    assert msg and "\n" not in msg, "expected a one-line error, got %r" % p.stderr
    return msg


def test_run_writes_output(small, tmp_path):
    path, good = small
    out = tmp_path / "y.npy"
    p = run("run", str(path), "--input", str(good), "--output", str(out))
    assert p.returncode == 0, p.stderr
    assert np.load(out).shape == (1, 5, 6, 6)
    assert [f for f in os.listdir(tmp_path) if ".tmp" in f] == []


@pytest.mark.parametrize("kind", ["missing_file", "wrong_dtype", "wrong_shape", "wrong_rank", "unknown_name",
                                  "fortran", "not_npy", "missing_input", "truncated"])
def test_run_bad_input(small, tmp_path, kind):
    path, good = small
    bad = tmp_path / "bad.npy"
    x = np.load(good)
    spec = str(bad)
    if kind == "missing_file":
        spec = str(tmp_path / "nope.npy")
    elif kind == "wrong_dtype":
        np.save(bad, x.astype(np.float64))
    elif kind == "wrong_shape":
        np.save(bad, np.zeros([1, 4, 7, 6], np.float32))
    elif kind == "wrong_rank":
        np.save(bad, np.zeros([4, 6, 6], np.float32))
    elif kind == "unknown_name":
        spec = "nosuch=" + str(good)
    elif kind == "fortran":
        np.save(bad, np.asfortranarray(np.zeros([1, 4, 6, 6], np.float32)))
    elif kind == "not_npy":
        bad.write_bytes(b"hello world, not numpy")
    elif kind == "truncated":
        np.save(bad, x)
        bad.write_bytes(bad.read_bytes()[:-10])
    out = tmp_path / "y.npy"
    args = ["run", str(path), "--output", str(out)]
    if kind != "missing_input":
        args += ["--input", spec]
    msg = one_line_error(run(*args))
    assert not out.exists(), "no output file on error"
    expect = {"missing_file": "nope.npy", "wrong_dtype": "float32", "wrong_shape": "1x4x6x6",
              "wrong_rank": "1x4x6x6", "unknown_name": "nosuch", "fortran": "Fortran", "not_npy": "bad.npy",
              "missing_input": "'x' is missing", "truncated": "truncated"}[kind]
    assert expect in msg, msg


def test_run_unsupported_op_fails_at_plan_time(tmp_path):
    g = G()
    x = g.input("x", [2, 3])
    # an op outside the supported set: flopcut must name the node before running anything
    node = helper.make_node("Hardmax", [x], ["y"], name="the_hardmax")
    graph = helper.make_graph([node], "t", g.inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "m.onnx"))
    np.save(tmp_path / "x.npy", g.feeds["x"])
    msg = one_line_error(run("run", str(tmp_path / "m.onnx"), "--input", str(tmp_path / "x.npy")))
    assert "the_hardmax" in msg and "Hardmax" in msg


def test_bench_json(small):
    path, good = small
    p = run("bench", str(path), "--input", str(good), "--iters", "3", "--warmup", "1", "--threads", "1",
            "--format", "json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    for k in ["median_ms", "min_ms", "iters", "threads", "macs", "nonzero_macs", "gflops"]:
        assert k in r, k
    assert r["iters"] == 3 and r["threads"] == 1 and r["macs"] == 5 * 4 * 9 * 36
    assert 0 < r["min_ms"] <= r["median_ms"]
    assert any(o["op_type"] == "Conv" for o in r["op_types"])
    # every step, in plan order, with its kernel and rates
    assert [st["step"] for st in r["steps"]] == list(range(len(r["steps"])))
    conv = [st for st in r["steps"] if st["op_type"] == "Conv"]
    assert len(conv) == 1 and conv[0]["kernel"] and conv[0]["flops"] == 2 * 5 * 4 * 9 * 36
    for st in r["steps"]:
        for k in ["name", "fused", "layout", "weight_sparsity", "ms", "gflops", "nonzero_gflops"]:
            assert k in st, k
    assert r["pinned"] is False  # one thread: nothing to pin


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_bench_says_whether_pinned(small):
    path, good = small
    for bind, want in (("1", True), ("0", False)):
        p = run("bench", str(path), "--input", str(good), "--iters", "2", "--warmup", "1", "--threads", "2",
                "--format", "json", env={"FLOPCUT_BIND": bind})
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["pinned"] is want
    p = run("bench", str(path), "--input", str(good), "--iters", "2", "--warmup", "1", "--threads", "2",
            env={"FLOPCUT_BIND": "1"})
    assert p.returncode == 0 and "threads  2 (pinned)" in p.stdout, p.stdout + p.stderr


def test_bench_table_with_input_shape(small):
    path, _ = small
    p = run("bench", str(path), "--input-shape", "x=1x4x6x6", "--iters", "2", "--warmup", "0")
    assert p.returncode == 0, p.stderr
    assert "median" in p.stdout and "Conv" in p.stdout and "GFLOP/s" in p.stdout
    # the per-step table is there by default, and --steps 0 drops it
    assert "nz GF/s" in p.stdout and "kernel" in p.stdout
    p0 = run("bench", str(path), "--input-shape", "x=1x4x6x6", "--iters", "2", "--warmup", "0", "--steps", "0")
    assert p0.returncode == 0 and "nz GF/s" not in p0.stdout


# ---- plan edge cases: views of inputs, outputs that are inputs or constants, repeated runs ------

def test_views_and_passthrough_outputs(tmp_path):
    """Outputs that alias an input (Identity, Reshape), a constant output, an int64 output."""
    g = G()
    x = g.input("x", [2, 3, 4])
    same = g.op("Identity", [x])
    flat = g.op("Reshape", [x, numpy_const(g, [6, 4])])
    shp = g.op("Shape", [x])
    doubled = g.op("Add", [same, same])
    path = tmp_path / "m.onnx"
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in (same, flat, doubled)]
    outs.append(helper.make_tensor_value_info(shp, TensorProto.INT64, None))
    graph = helper.make_graph(g.nodes, "t", g.inputs, outs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    check_against_ort(path, g.feeds, tmp_path)


def test_conv_output_read_by_two_branches(tmp_path):
    """A conv output that a residual reads later must not be fused away or overwritten."""
    g = G()
    x = g.input("x", [1, 8, 10, 10])
    a = g.op("Conv", [x, g.const([8, 8, 3, 3], 0.3)], pads=[1, 1, 1, 1])
    b = g.op("Relu", [a])
    c = g.op("Conv", [b, g.const([8, 8, 1, 1], 0.3)])
    d = g.op("Add", [c, a])
    e = g.op("Sigmoid", [a])
    check_against_ort(g.save(tmp_path / "m.onnx", [d, e]), g.feeds, tmp_path)


# ---- pruned models through the sparse kernels, against ONNX Runtime on the same pruned file -----

def mbconv_net(tmp_path):
    """A small EfficientNet/MobileNetV3-like net with every pattern the sparse runtime special-cases:
    a 3x3/2 stem with SiLU, depthwise 3x3 (stride 1 and 2) on flat planes, 1x1 expand/project with a
    residual Add, a squeeze-and-excitation block (GlobalAveragePool -> 1x1 convs on one pixel ->
    HardSigmoid -> Mul), HardSwish, a 2x2/2 MaxPool, a 3x3/1 conv and a classifier Gemm."""
    g = G(seed=5)
    x = g.input("x", [1, 3, 40, 40])

    def silu(v):
        return g.op("Mul", [v, g.op("Sigmoid", [v])])

    def hswish(v):
        return g.op("Mul", [v, g.op("HardSigmoid", [v], alpha=1.0 / 6, beta=0.5)])

    y = silu(g.op("Conv", [x, g.const([24, 3, 3, 3]), g.const([24])], strides=[2, 2], pads=[1, 1, 1, 1]))  # 20x20
    e = silu(g.op("Conv", [y, g.const([48, 24, 1, 1], 0.3), g.const([48])]))
    d = silu(g.op("Conv", [e, g.const([48, 1, 3, 3]), g.const([48])], group=48, pads=[1, 1, 1, 1]))
    s = g.op("GlobalAveragePool", [d])
    s = g.op("Relu", [g.op("Conv", [s, g.const([12, 48, 1, 1]), g.const([12])])])
    s = g.op("HardSigmoid", [g.op("Conv", [s, g.const([48, 12, 1, 1]), g.const([48])])], alpha=0.2, beta=0.5)
    d = g.op("Mul", [d, s])
    p = g.op("Conv", [d, g.const([24, 48, 1, 1], 0.3), g.const([24])])
    y = g.op("Add", [p, y])
    d2 = hswish(g.op("Conv", [y, g.const([24, 1, 3, 3]), g.const([24])], group=24, strides=[2, 2], pads=[1, 1, 1, 1]))
    c = g.op("Relu", [g.op("Conv", [d2, g.const([32, 24, 3, 3], 0.2), g.const([32])], pads=[1, 1, 1, 1])])  # 10x10
    c = g.op("MaxPool", [c], kernel_shape=[2, 2], strides=[2, 2])  # 5x5
    f = g.op("Flatten", [c], axis=1)
    out = g.op("Gemm", [f, g.const([10, 32 * 25], 0.1), g.const([10])], transB=1)
    return g.save(tmp_path / "mbconv.onnx", [out]), g.feeds


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("sparse_mode", ["", "1"])
def test_pruned_net_matches_ort(tmp_path, threads, sparse_mode):
    path, feeds = mbconv_net(tmp_path)
    pruned = tmp_path / "pruned.onnx"
    p = run("prune", str(path), "-o", str(pruned), "--method", "layer", "--sparsity", "0.9",
            "--input-shape", "x=1x3x40x40")
    assert p.returncode == 0, p.stderr
    env = {"FLOPCUT_SPARSE": sparse_mode} if sparse_mode else None
    check_against_ort(pruned, feeds, tmp_path, threads=threads, env=env)
    # and the kernels really were the sparse ones where forced
    if sparse_mode:
        b = run("bench", str(pruned), "--input-shape", "x=1x3x40x40", "--iters", "1", "--warmup", "0",
                "--threads", str(threads), "--format", "json", env=env)
        assert b.returncode == 0, b.stderr
        kernels = {st["kernel"].split(" ")[0] for st in json.loads(b.stdout)["steps"] if st["op_type"] in ("Conv", "Gemm")}
        assert kernels <= {"sparse:avx512", "sparse:avx2", "sparse:scalar", "depthwise"}, kernels


def bottleneck_net(tmp_path, batch):
    """ResNet-style bottlenecks on 14x14 and 7x7 planes (196 and 49 floats, not whole cache lines),
    which the planner stores padded between sparse convs: residual Adds fused into the convs, a
    stride-2 3x3, a value also read by a MaxPool (so it must stay plain) and a conv output that is a
    graph output (also plain)."""
    g = G(seed=11)
    x = g.input("x", [batch, 16, 14, 14])

    def conv(v, c_in, c_out, k=1, stride=1):
        p = k // 2
        return g.op("Conv", [v, g.const([c_out, c_in, k, k], 0.3), g.const([c_out])], pads=[p, p, p, p],
                    strides=[stride, stride])

    stem = g.op("Relu", [conv(x, 16, 32)])                  # 14x14, read by convs only: padded
    a = g.op("Relu", [conv(stem, 32, 8)])
    a = g.op("Relu", [conv(a, 8, 8, k=3)])
    b1 = g.op("Relu", [g.op("Add", [conv(a, 8, 32), stem])])  # residual fused into the conv
    a = g.op("Relu", [conv(b1, 32, 8)])
    a = g.op("Relu", [conv(a, 8, 8, k=3, stride=2)])       # 7x7
    c = g.op("Relu", [conv(a, 8, 48)])                     # 49-pixel planes
    d = g.op("Relu", [conv(c, 48, 16)])
    pooled = g.op("MaxPool", [d], kernel_shape=[2, 2], strides=[2, 2])  # d must stay plain
    out = conv(c, 48, 24)                                  # a graph output: plain
    return g.save(tmp_path / "bottleneck.onnx", [pooled, out]), g.feeds


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 2])
def test_padded_planes_match_ort(tmp_path, threads, batch):
    path, feeds = bottleneck_net(tmp_path, batch)
    pruned = tmp_path / "pruned.onnx"
    shape = "x=%dx16x14x14" % batch
    p = run("prune", str(path), "-o", str(pruned), "--method", "layer", "--sparsity", "0.9", "--input-shape", shape)
    assert p.returncode == 0, p.stderr
    env = {"FLOPCUT_SPARSE": "1"}
    check_against_ort(pruned, feeds, tmp_path, threads=threads, env=env)
    b = run("bench", str(pruned), "--input-shape", shape, "--iters", "1", "--warmup", "0", "--threads", str(threads),
            "--format", "json", env=env)
    assert b.returncode == 0, b.stderr
    steps = json.loads(b.stdout)["steps"]
    # every conv reads or writes a padded value (the last two read c); MaxPool's input stays plain
    assert all(st["layout"] == "padded" for st in steps if st["op_type"] == "Conv"), steps
    assert [st["layout"] for st in steps if st["op_type"] == "MaxPool"] == ["plain"], steps
    # and without padded planes the same outputs come out
    check_against_ort(pruned, feeds, tmp_path, threads=threads, env=dict(env, FC_NO_PADDED_PLANES="1"))
