# Every op's shape and cost rule in `flopcut profile`: output shapes against what onnxruntime
# produces, costs against an independent implementation of docs/COSTS.md (the Oracle below).
# Run: python3 -m pytest -q tests/py/test_op_rules.py   (FLOPCUT_BIN overrides build/flopcut)
import json
import os
import subprocess
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("FLOPCUT_BIN", "build/flopcut"))
FOLD_MAX_ELEMS = 1 << 20  # src/ops/infer_util.h: larger constant results are not folded
COST_KEYS = ("macs", "flops", "params", "activations", "weight_bytes", "nonzero_macs")

# ---------------------------------------------------------------------------------------------
# The cost rules of docs/COSTS.md, restated independently of the C code.

ELT_FLOPS = {  # FLOPs per output element
    "Relu": 1, "LeakyRelu": 2, "Sigmoid": 4, "HardSigmoid": 4, "HardSwish": 5, "Tanh": 4, "Erf": 4,
    "Exp": 1, "Log": 1, "Sqrt": 1, "Neg": 1, "Abs": 1, "Reciprocal": 1, "Floor": 1, "Ceil": 1,
    "Round": 1, "Elu": 4, "Softplus": 3, "Sign": 1, "Not": 1,
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Pow": 1, "Mod": 1,
    "Equal": 1, "Less": 1, "Greater": 1, "LessOrEqual": 1, "GreaterOrEqual": 1,
    "And": 1, "Or": 1, "Xor": 1, "Where": 1,
}
SPECIAL_ELT = {"Gelu", "Clip", "Sum", "Max", "Min", "Mean"}
NORM_FLOPS = {"BatchNormalization": 2, "LayerNormalization": 8, "InstanceNormalization": 8,
              "Softmax": 5, "LogSoftmax": 5}
REDUCES = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2"}
ZERO_COST = {"Identity", "Dropout", "Shape", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
             "Transpose", "Concat", "Split", "Slice", "Gather", "Cast", "Constant",
             "ConstantOfShape", "Expand", "Tile", "Range", "Pad"}
# ops whose outputs flopcut computes at load time when the inputs below are constant
FOLD_ALWAYS = {"Shape", "ConstantOfShape", "Range"}
FOLD_ALL_INPUTS = set(ELT_FLOPS) | SPECIAL_ELT | {"Concat"}
FOLD_FIRST_INPUT = REDUCES | {"Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
                              "Transpose", "Split", "Slice", "Cast", "Expand", "Tile"}


def numel(shape):
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return oh.get_attribute_value(a)
    return default


class Oracle:
    """Expected cost of every node from the shapes onnxruntime produced and the model's constants."""

    def __init__(self, model, values):
        """values: every tensor's contents (inputs, initializers, and outputs as onnxruntime ran)."""
        self.model = model
        self.opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        self.values = values
        self.shapes = {k: v.shape for k, v in values.items()}
        self.data = {}       # names of values flopcut holds as constants (stored or folded)
        self.stored = set()  # initializers and Constant outputs (the params candidates)
        for t in model.graph.initializer:
            self.data[t.name] = None
            self.stored.add(t.name)
        self.folded_nodes = set()
        for n in model.graph.node:
            self._propagate(n)

    def _present(self, node):
        return [i for i in node.input if i]

    def _propagate(self, n):
        op = n.op_type
        outs = [o for o in n.output if o]
        if op == "Constant":
            for o in outs:
                self.data[o] = None
                self.stored.add(o)
            return
        if op in FOLD_ALWAYS:
            ok = True
        elif op in FOLD_ALL_INPUTS:
            ok = all(i in self.data for i in self._present(n))
        elif op in FOLD_FIRST_INPUT:
            ok = n.input[0] in self.data and (op != "Gather")
        elif op == "Gather":
            ok = n.input[0] in self.data and n.input[1] in self.data
        else:
            ok = False
        if not ok or any(not 0 < numel(self.shapes[o]) <= FOLD_MAX_ELEMS for o in outs):
            return
        for o in outs:
            self.data[o] = None
        self.folded_nodes.add(n.name)

    def _is_float_const(self, name):
        return name in self.data and self.values[name].dtype in (np.float32, np.float64, np.float16)

    def cost(self, node, counted):
        """Expected cost fields of node; `counted` holds the params already attributed."""
        op = node.op_type
        sh = lambda i: self.shapes[node.input[i]]  # noqa: E731
        has = lambda i: len(node.input) > i and node.input[i] != ""  # noqa: E731
        out = numel(self.shapes[node.output[0]])
        c = dict(macs=0, flops=0, params=0, activations=0, weight_bytes=0)
        if node.name in self.folded_nodes:
            pass  # computed at load time: runs never
        elif op == "Conv":
            w = sh(1)
            c["macs"] = out * w[1] * numel(w[2:])
            c["flops"] = 2 * c["macs"] + (out if has(2) else 0)
            c["activations"] = out
        elif op == "ConvTranspose":
            w = sh(1)
            c["macs"] = numel(sh(0)) * w[1] * numel(w[2:])
            c["flops"] = 2 * c["macs"] + (out if has(2) else 0)
            c["activations"] = out
        elif op in ("MaxPool", "AveragePool"):
            c["flops"] = out * numel(attr(node, "kernel_shape"))
        elif op == "GlobalAveragePool":
            c["flops"] = numel(sh(0)) + out
        elif op == "GlobalMaxPool":
            c["flops"] = numel(sh(0))
        elif op == "Gemm":
            a = sh(0)
            k = a[0] if attr(node, "transA", 0) else a[1]
            c["macs"] = out * k
            alpha, beta = attr(node, "alpha", 1.0), attr(node, "beta", 1.0)
            bias = has(2) and beta != 0
            c["flops"] = 2 * c["macs"] + out * ((alpha != 1) + bias + (bias and beta != 1))
            c["activations"] = out
        elif op == "MatMul":
            c["macs"] = out * sh(0)[-1]
            c["flops"] = 2 * c["macs"]
            c["activations"] = out
        elif op in ELT_FLOPS:
            c["flops"] = out * ELT_FLOPS[op]
        elif op == "Gelu":
            c["flops"] = out * (12 if attr(node, "approximate", b"none") in (b"tanh", "tanh") else 8)
        elif op == "Clip":
            if self.opset >= 11:
                bounds = has(1) + has(2)
            else:
                bounds = (attr(node, "min") is not None) + (attr(node, "max") is not None)
            c["flops"] = out * bounds
        elif op in ("Sum", "Max", "Min", "Mean"):
            k = len(self._present(node))
            c["flops"] = out * (k - 1 + (op == "Mean" and k > 1))
        elif op in NORM_FLOPS:
            c["flops"] = out * NORM_FLOPS[op]
        elif op in REDUCES:
            noop = attr(node, "noop_with_empty_axes", 0) and attr(node, "axes") is None and not has(1)
            n_in = numel(sh(0))
            if noop:
                c["flops"] = 0
            elif op == "ReduceMean":
                c["flops"] = n_in + out
            elif op == "ReduceL2":
                c["flops"] = 2 * n_in + out
            else:
                c["flops"] = n_in
        elif op in ("Resize", "Upsample"):
            mode = attr(node, "mode", b"nearest")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            per = {"linear": 3, "bilinear": 3, "cubic": 8}.get(mode, 0)
            axes = sum(1 for a, b in zip(sh(0), self.shapes[node.output[0]]) if a != b)
            c["flops"] = out * per * axes
        elif op in ZERO_COST:
            pass
        else:
            raise AssertionError("oracle has no rule for " + op)
        # params: float tensors stored in the model, once each, rank 0 and BN mean/var excluded
        for k, name in enumerate(node.input):
            if not name or name in counted or name not in self.stored or not self._is_float_const(name):
                continue
            if len(self.shapes[name]) == 0 or (op == "BatchNormalization" and k >= 3):
                continue
            counted.add(name)
            c["params"] += numel(self.shapes[name])
            c["weight_bytes"] += numel(self.shapes[name]) * self.values[name].dtype.itemsize
        # sparsity: the constant weight of Conv/ConvTranspose (input 1) or Gemm/MatMul (1, else 0)
        c["nonzero_macs"] = c["macs"]
        c["weight_sparsity"] = None
        widx = None
        if op in ("Conv", "ConvTranspose", "Gemm", "MatMul") and self._is_float_const(node.input[1]):
            widx = 1
        elif op in ("Gemm", "MatMul") and self._is_float_const(node.input[0]):
            widx = 0
        if widx is not None:
            w = self.values[node.input[widx]]
            nz, tot = int(np.count_nonzero(w)), w.size
            c["weight_sparsity"] = 1.0 - nz / tot
            c["nonzero_macs"] = c["macs"] // tot * nz
        return c


# ---------------------------------------------------------------------------------------------
# Building models, running flopcut and onnxruntime.

NP_TO_ONNX = {np.float32: TP.FLOAT, np.int64: TP.INT64, np.int32: TP.INT32, np.bool_: TP.BOOL,
              np.float64: TP.DOUBLE}


class Net:
    """A tiny ONNX graph under construction: inputs, initializers and nodes in topological order."""

    def __init__(self, opset=13):
        self.opset = opset
        self.nodes, self.inputs, self.inits, self.feeds = [], [], [], {}
        self.domains = {}
        self.rng = np.random.default_rng(len(self.nodes) + opset)

    def input(self, name, shape, dtype=np.float32, dims=None):
        """A graph input; dims overrides the declared shape (e.g. symbolic 'N')."""
        self.inputs.append(oh.make_tensor_value_info(name, NP_TO_ONNX[dtype], dims or list(shape)))
        if dtype == np.float32:
            self.feeds[name] = np.asarray(self.rng.standard_normal(shape), np.float32)
        elif dtype == np.bool_:
            self.feeds[name] = np.asarray(self.rng.random(shape) > 0.5)
        else:
            self.feeds[name] = np.asarray(self.rng.integers(1, 4, size=shape), dtype)
        return name

    def const(self, name, value, dtype=None):
        arr = np.array(value, dtype=dtype) if dtype or not isinstance(value, np.ndarray) else value
        if arr.dtype == np.float64 and dtype is None:
            arr = arr.astype(np.float32)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def ints(self, name, values):
        return self.const(name, np.array(values, dtype=np.int64))

    def weight(self, name, shape, zero_every=0):
        w = self.rng.standard_normal(shape).astype(np.float32)
        if zero_every:
            w.reshape(-1)[::zero_every] = 0.0
        return self.const(name, w)

    def node(self, op, inputs, outputs, name=None, domain="", **attrs):
        name = name or "%s_%d" % (op.lower(), len(self.nodes))
        self.nodes.append(oh.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        if domain and domain not in ("", "ai.onnx"):
            self.domains[domain] = 1
        return name

    def model(self, outputs=None):
        outs = outputs or [o for n in self.nodes for o in n.output if o]
        g = oh.make_graph(self.nodes, "op_rules", self.inputs, [onnx.ValueInfoProto(name=o) for o in outs],
                          initializer=self.inits)
        opsets = [oh.make_opsetid("", self.opset)] + [oh.make_opsetid(d, v) for d, v in self.domains.items()]
        m = oh.make_model(g, opset_imports=opsets, producer_name="test_op_rules")
        m.ir_version = 8 if self.opset < 19 else 9
        return m


def run_flopcut(model, *extra):
    if not os.path.exists(BIN):
        pytest.fail("flopcut binary not found at %s (build it or set FLOPCUT_BIN)" % BIN)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        onnx.save(model, path)
        p = subprocess.run([BIN, "profile", path, "--format", "json", *extra], capture_output=True,
                           text=True, timeout=60)
    assert p.returncode == 0, "flopcut failed (%d): %s" % (p.returncode, p.stderr)
    return json.loads(p.stdout)


def run_ort(model, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    res = sess.run(names, feeds)
    return {n: np.asarray(r).shape for n, r in zip(names, res)}, {n: np.asarray(r) for n, r in zip(names, res)}


def check(net, expect=None, extra=(), feeds=None):
    """Profiles net with flopcut and checks every node: shapes == onnxruntime's, costs == Oracle's,
    plus the hand-computed numbers in expect {node_name: {field: value}}. Returns the report."""
    model = net.model()
    report = run_flopcut(model, *extra)
    feeds = feeds or net.feeds
    shapes, values = run_ort(model, feeds)
    values.update(feeds)
    values.update({t.name: numpy_helper.to_array(t) for t in model.graph.initializer})
    shapes = {k: v.shape for k, v in values.items()}
    assert report["unsupported"] == [], report["unsupported"]
    got = {n["name"]: n for n in report["nodes"]}
    assert sorted(got) == sorted(n.name for n in model.graph.node)
    oracle = Oracle(model, values)
    nodes = {n.name: n for n in model.graph.node}
    counted = set()
    for rn in report["nodes"]:  # flopcut's topological order decides who owns a shared param
        node = nodes[rn["name"]]
        want_shapes = [list(shapes[o]) for o in node.output if o]
        assert rn["output_shapes"] == want_shapes, "%s (%s): shapes %s, onnxruntime %s" % (
            node.name, node.op_type, rn["output_shapes"], want_shapes)
        exp = oracle.cost(node, counted)
        for k in COST_KEYS:
            assert rn[k] == exp[k], "%s (%s): %s = %s, rule says %s" % (node.name, node.op_type, k, rn[k], exp[k])
        if exp["weight_sparsity"] is None:
            assert rn["weight_sparsity"] is None, node.name
        else:
            assert rn["weight_sparsity"] == pytest.approx(exp["weight_sparsity"], abs=1e-6), node.name
    for k in COST_KEYS:
        assert report["totals"][k] == sum(n[k] for n in report["nodes"]), k
    for name, fields in (expect or {}).items():
        for k, v in fields.items():
            if k == "output_shapes":
                assert got[name][k] == v, (name, k)
            elif k == "weight_sparsity":
                assert got[name][k] == pytest.approx(v, abs=1e-6), (name, k)
            else:
                assert got[name][k] == v, "%s: %s = %s, expected %s" % (name, k, got[name][k], v)
    return report


# ---------------------------------------------------------------------------------------------
# Conv, ConvTranspose, pools

CONV_CASES = [
    # x shape, w shape, attrs, bias
    ((1, 3, 8, 8), (4, 3, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ((2, 4, 9, 9), (6, 4, 3, 3), dict(strides=[2, 2]), False),
    ((1, 2, 10, 10), (3, 2, 3, 3), dict(dilations=[2, 2], pads=[1, 1, 1, 1]), True),
    ((1, 4, 7, 7), (6, 2, 3, 3), dict(group=2), True),
    ((1, 8, 6, 6), (8, 1, 3, 3), dict(group=8, pads=[1, 1, 1, 1], strides=[2, 2]), False),
    ((1, 3, 7, 7), (2, 3, 4, 4), dict(auto_pad="SAME_UPPER", strides=[2, 2]), False),
    ((1, 3, 7, 7), (2, 3, 4, 4), dict(auto_pad="SAME_LOWER", strides=[2, 2]), True),
    ((1, 3, 8, 6), (2, 3, 3, 2), dict(auto_pad="SAME_UPPER"), False),
    ((1, 3, 9, 9), (2, 3, 3, 3), dict(auto_pad="VALID", strides=[3, 2]), False),
    ((1, 3, 20), (5, 3, 5), dict(strides=[3]), True),
    ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3), dict(pads=[1, 1, 1, 1, 1, 1]), False),
    ((1, 3, 8, 8), (4, 3, 3, 3), dict(pads=[0, 1, 2, 0]), False),
    ((1, 16, 5, 5), (32, 16, 1, 1), dict(), True),
    ((1, 3, 8, 8), (4, 3, 3, 3), dict(kernel_shape=[3, 3], strides=[1, 2]), False),
]


@pytest.mark.parametrize("xs,ws,attrs,bias", CONV_CASES)
def test_conv(xs, ws, attrs, bias):
    n = Net()
    ins = [n.input("x", xs), n.weight("w", ws)] + ([n.const("b", np.ones(ws[0]))] if bias else [])
    n.node("Conv", ins, ["y"], name="conv", **attrs)
    check(n)


def test_conv_hand_numbers_and_sparsity():
    n = Net()
    n.input("x", (1, 3, 8, 8))
    w = np.ones((4, 3, 3, 3), np.float32)
    w[:2] = 0.0  # half of the output channels pruned
    n.const("w", w)
    n.const("b", np.zeros(4))
    n.node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[1, 1, 1, 1])
    # out 1·4·8·8 = 256; MACs 256·3·9 = 6912; FLOPs 2·6912 + 256 bias adds
    check(n, {"conv": dict(macs=6912, flops=14080, params=112, weight_bytes=448, activations=256,
                           nonzero_macs=3456, weight_sparsity=0.5, output_shapes=[[1, 4, 8, 8]])})


CONVT_CASES = [
    ((1, 4, 5, 5), (4, 3, 3, 3), dict(strides=[2, 2]), False),
    ((1, 4, 5, 5), (4, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]), True),
    ((1, 4, 5, 5), (4, 2, 3, 3), dict(group=2), True),
    ((1, 4, 5, 5), (4, 2, 3, 3), dict(strides=[2, 2], output_shape=[10, 10]), False),
    ((1, 4, 5, 5), (4, 2, 3, 3), dict(strides=[2, 2], output_shape=[10, 9]), False),
    ((1, 4, 5, 5), (4, 2, 4, 4), dict(strides=[2, 2], auto_pad="SAME_UPPER"), False),
    ((1, 4, 5, 5), (4, 2, 3, 3), dict(strides=[2, 2], auto_pad="SAME_LOWER"), True),
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(dilations=[2, 2], pads=[1, 0, 1, 0]), False),
    ((2, 3, 7), (3, 5, 4), dict(strides=[3]), True),
    ((1, 2, 3, 3, 3), (2, 2, 2, 2, 2), dict(strides=[2, 2, 2]), False),
]


@pytest.mark.parametrize("xs,ws,attrs,bias", CONVT_CASES)
def test_conv_transpose(xs, ws, attrs, bias):
    n = Net()
    cout = ws[1] * attrs.get("group", 1)
    ins = [n.input("x", xs), n.weight("w", ws, zero_every=3)] + ([n.const("b", np.ones(cout))] if bias else [])
    n.node("ConvTranspose", ins, ["y"], name="convt", **attrs)
    check(n)


def test_conv_transpose_hand_numbers():
    n = Net()
    n.input("x", (1, 4, 5, 5))
    n.weight("w", (4, 3, 3, 3), zero_every=4)  # 108 weights, 27 zeros
    n.const("b", np.ones(3))
    n.node("ConvTranspose", ["x", "w", "b"], ["y"], name="ct", strides=[2, 2])
    # out 11x11; MACs = in_elems 100 · Cout 3 · 9 = 2700
    check(n, {"ct": dict(output_shapes=[[1, 3, 11, 11]], macs=2700, flops=5400 + 363, params=111,
                         activations=363, nonzero_macs=2700 // 108 * 81, weight_sparsity=0.25)})


POOL_CASES = [
    ("MaxPool", (1, 2, 9, 9), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("MaxPool", (1, 2, 8, 8), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("MaxPool", (1, 1, 5, 5), dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    ("MaxPool", (1, 2, 10, 10), dict(kernel_shape=[2, 2], dilations=[2, 2])),
    ("MaxPool", (1, 2, 7, 7), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    ("MaxPool", (1, 2, 7, 8), dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
    ("MaxPool", (1, 3, 11), dict(kernel_shape=[3], strides=[2])),
    ("MaxPool", (1, 2, 6, 6, 6), dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2])),
    ("AveragePool", (1, 2, 9, 9), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", (1, 2, 9, 9), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                       count_include_pad=1)),
    ("AveragePool", (1, 2, 8, 8), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("AveragePool", (1, 2, 7, 7), dict(kernel_shape=[2, 2], auto_pad="VALID")),
    ("AveragePool", (2, 3, 5, 5), dict(kernel_shape=[5, 5])),
]


@pytest.mark.parametrize("op,xs,attrs", POOL_CASES)
def test_pool(op, xs, attrs):
    n = Net(opset=13)
    n.input("x", xs)
    n.node(op, ["x"], ["y"], name="pool", **attrs)
    check(n)


def test_maxpool_indices_output():
    n = Net()
    n.input("x", (1, 2, 6, 6))
    n.node("MaxPool", ["x"], ["y", "idx"], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    # 1·2·3·3 = 18 outputs, 4 comparisons each
    check(n, {"pool": dict(output_shapes=[[1, 2, 3, 3], [1, 2, 3, 3]], flops=72)})


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("xs", [(1, 3, 7), (2, 4, 5, 6), (1, 2, 3, 4, 5)])
def test_global_pool(op, xs):
    n = Net()
    n.input("x", xs)
    n.node(op, ["x"], ["y"], name="gp")
    check(n)


# ---------------------------------------------------------------------------------------------
# Gemm, MatMul

GEMM_CASES = [
    # a, b, transA, transB, C shape or None, alpha, beta
    ((4, 3), (3, 5), 0, 0, None, 1.0, 1.0),
    ((3, 4), (3, 5), 1, 0, (5,), 1.0, 1.0),
    ((4, 3), (5, 3), 0, 1, (4, 5), 1.0, 1.0),
    ((3, 4), (5, 3), 1, 1, (4, 1), 1.0, 1.0),
    ((4, 3), (3, 5), 0, 0, (), 1.0, 1.0),
    ((4, 3), (3, 5), 0, 0, (1, 5), 0.5, 1.0),
    ((4, 3), (3, 5), 0, 0, (5,), 1.0, 2.0),
    ((4, 3), (3, 5), 0, 0, (5,), 1.0, 0.0),
    ((1, 512), (10, 512), 0, 1, (10,), 1.0, 1.0),
]


@pytest.mark.parametrize("a,b,ta,tb,cs,alpha,beta", GEMM_CASES)
def test_gemm(a, b, ta, tb, cs, alpha, beta):
    n = Net()
    ins = [n.input("a", a), n.weight("b", b, zero_every=2)]
    if cs is not None:
        ins.append(n.const("c", np.ones(cs)))
    n.node("Gemm", ins, ["y"], name="gemm", transA=ta, transB=tb, alpha=alpha, beta=beta)
    check(n)


def test_gemm_hand_numbers():
    n = Net()
    n.input("a", (2, 8))
    n.weight("w", (16, 8), zero_every=4)  # 128 weights, 32 zeros
    n.const("c", np.ones(16))
    n.node("Gemm", ["a", "w", "c"], ["y"], name="fc", transB=1)
    # 2·16 outputs · K 8 = 256 MACs; + 32 bias adds
    check(n, {"fc": dict(output_shapes=[[2, 16]], macs=256, flops=544, params=144, weight_bytes=576,
                         activations=32, nonzero_macs=192, weight_sparsity=0.25)})


MATMUL_CASES = [
    ((2, 3), (3, 4)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((3,), (3,)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((2, 1, 2, 3), (4, 3, 5)),
    ((4,), (2, 4, 3)),
    ((2, 5, 3), (3,)),
    ((1, 5, 2, 3), (3, 1, 3, 4)),
    ((2, 3, 4, 5), (2, 3, 5, 6)),
]


@pytest.mark.parametrize("a,b", MATMUL_CASES)
@pytest.mark.parametrize("which_const", ["none", "b", "a"])
def test_matmul(a, b, which_const):
    n = Net()
    ia = n.weight("a", a, zero_every=3) if which_const == "a" else n.input("a", a)
    ib = n.weight("b", b, zero_every=2) if which_const == "b" else n.input("b", b)
    n.node("MatMul", [ia, ib], ["y"], name="mm")
    check(n)


def test_matmul_attention_hand_numbers():
    # ViT-style attention scores: (1,12,197,64) x (1,12,64,197)
    n = Net()
    n.input("q", (1, 12, 197, 64))
    n.input("k", (1, 12, 64, 197))
    n.node("MatMul", ["q", "k"], ["s"], name="qk")
    check(n, {"qk": dict(macs=12 * 197 * 197 * 64, flops=2 * 12 * 197 * 197 * 64, activations=12 * 197 * 197,
                         params=0, weight_sparsity=None)})


# ---------------------------------------------------------------------------------------------
# Elementwise

UNARY = [("Relu", 13, {}), ("LeakyRelu", 13, dict(alpha=0.1)), ("Sigmoid", 13, {}),
         ("HardSigmoid", 13, dict(alpha=0.3, beta=0.4)), ("HardSwish", 14, {}), ("Tanh", 13, {}),
         ("Erf", 13, {}), ("Exp", 13, {}), ("Log", 13, {}), ("Sqrt", 13, {}), ("Neg", 13, {}),
         ("Abs", 13, {}), ("Reciprocal", 13, {}), ("Floor", 13, {}), ("Ceil", 13, {}), ("Round", 13, {}),
         ("Elu", 13, {}), ("Softplus", 13, {}), ("Gelu", 20, {}), ("Gelu", 20, dict(approximate="tanh")),
         ("Sign", 13, {})]


@pytest.mark.parametrize("op,opset,attrs", UNARY, ids=lambda v: str(v) if not isinstance(v, dict) else "")
def test_unary(op, opset, attrs):
    n = Net(opset)
    n.input("x", (2, 3, 4))
    n.node(op, ["x"], ["y"], name="u", **attrs)
    check(n)


def test_not():
    n = Net()
    n.input("x", (3, 4), np.bool_)
    n.node("Not", ["x"], ["y"], name="not")
    check(n, {"not": dict(flops=12)})


def _bcast_shapes(ra, rb):
    full = (2, 3, 4, 5)
    a = list(full[4 - ra:])
    b = list(full[4 - rb:])
    # put 1s in alternating positions so both operands broadcast somewhere
    for i in range(len(a)):
        if i % 2 == 1:
            a[i] = 1
    for i in range(len(b)):
        if i % 2 == 0 and len(b) > 1:
            b[i] = 1
    return tuple(a), tuple(b)


@pytest.mark.parametrize("ra", range(5))
@pytest.mark.parametrize("rb", range(5))
def test_broadcast_ranks(ra, rb):
    n = Net()
    a, b = _bcast_shapes(ra, rb)
    n.input("a", a)
    n.input("b", b)
    n.node("Add", ["a", "b"], ["y"], name="add")
    check(n)


BINARY = [("Add", np.float32), ("Sub", np.float32), ("Mul", np.float32), ("Div", np.float32),
          ("Pow", np.float32), ("Equal", np.float32), ("Less", np.float32), ("Greater", np.float32),
          ("LessOrEqual", np.float32), ("GreaterOrEqual", np.float32), ("And", np.bool_),
          ("Or", np.bool_), ("Xor", np.bool_), ("Mod", np.int64), ("Div", np.int64)]


@pytest.mark.parametrize("op,dtype", BINARY)
def test_binary(op, dtype):
    n = Net()
    n.input("a", (3, 1, 5), dtype)
    n.input("b", (4, 1), dtype)
    n.node(op, ["a", "b"], ["y"], name="bin")
    check(n, {"bin": dict(flops=60)})


def test_binary_param_counting():
    """A rank-0 constant is a hyper-parameter, a rank-1 one is a parameter; each counted once."""
    n = Net()
    n.input("x", (2, 5))
    n.const("s", np.float32(3.0))
    n.const("v", np.arange(5, dtype=np.float32))
    n.node("Mul", ["x", "s"], ["y1"], name="mul_scalar")
    n.node("Add", ["y1", "v"], ["y2"], name="add_vec")
    n.node("Sub", ["y2", "v"], ["y3"], name="sub_vec")
    n.node("Mod", ["y3", "v"], ["y4"], name="fmod", fmod=1)
    r = check(n, {"mul_scalar": dict(params=0), "add_vec": dict(params=5, weight_bytes=20),
                  "sub_vec": dict(params=0)})
    assert r["totals"]["params"] == 5


@pytest.mark.parametrize("opset,bounds", [(7, "attrs_both"), (7, "attrs_min"), (11, "both"), (13, "min"),
                                          (13, "max"), (13, "none")])
def test_clip(opset, bounds):
    n = Net(opset)
    n.input("x", (2, 6))
    if opset < 11:
        attrs = dict(min=0.0, max=6.0) if bounds == "attrs_both" else dict(min=0.0)
        n.node("Clip", ["x"], ["y"], name="clip", **attrs)
    else:
        lo = n.const("lo", np.float32(0.0)) if bounds in ("both", "min") else ""
        hi = n.const("hi", np.float32(6.0)) if bounds in ("both", "max") else ""
        ins = ["x", lo, hi]
        while ins and ins[-1] == "":
            ins.pop()
        n.node("Clip", ins, ["y"], name="clip")
    check(n)


@pytest.mark.parametrize("op", ["Sum", "Max", "Min", "Mean"])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_variadic(op, k):
    n = Net()
    shapes = [(2, 3, 4), (3, 1), (4,), (1, 3, 4), (2, 1, 1)]
    names = [n.input("x%d" % i, shapes[i]) for i in range(k)]
    n.node(op, names, ["y"], name="v")
    check(n)


@pytest.mark.parametrize("op", ["Sum", "Max", "Min", "Mean"])
def test_variadic_folds_all_inputs(op):
    """Five constant shape vectors folded, then used as a Reshape target."""
    n = Net()
    n.input("x", (6, 4))
    vals = {"Sum": [[1, 2], [1, 2], [0, 4], [0, 2], [0, 2]],  # the fifth operand decides each result
            "Max": [[1, 1], [2, 1], [1, 1], [1, 3], [1, 12]],
            "Min": [[9, 99], [9, 99], [9, 99], [9, 99], [2, 12]],
            "Mean": [[1, 12], [1, 12], [1, 12], [1, 12], [6, 12]]}[op]
    if op in ("Sum", "Mean"):  # float-only ops: computed in float, cast back to a shape
        names = [n.const("c%d" % i, np.array(v, np.float32)) for i, v in enumerate(vals)]
        n.node(op, names, ["shape_f"], name="fold")
        n.node("Cast", ["shape_f"], ["shape"], name="cast", to=TP.INT64)
    else:
        names = [n.ints("c%d" % i, v) for i, v in enumerate(vals)]
        n.node(op, names, ["shape"], name="fold")
    n.node("Reshape", ["x", "shape"], ["y"], name="reshape")
    check(n, {"reshape": dict(output_shapes=[[2, 12]]), "fold": dict(flops=0)})


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((1, 4), (3, 1), (4,)), ((), (2, 1, 3), (1, 3)),
                                    ((2, 1, 1), (5,), (1, 4, 1))])
def test_where(shapes):
    n = Net()
    n.input("c", shapes[0], np.bool_)
    n.input("a", shapes[1])
    n.input("b", shapes[2])
    n.node("Where", ["c", "a", "b"], ["y"], name="where")
    check(n)


# ---------------------------------------------------------------------------------------------
# Normalisation, softmax, reductions

@pytest.mark.parametrize("xs", [(2, 3), (2, 3, 5), (1, 3, 4, 4), (1, 3, 2, 3, 3)])
def test_batchnorm(xs):
    n = Net()
    n.input("x", xs)
    c = xs[1]
    for p in ("scale", "bias", "mean", "var"):
        n.const(p, np.ones(c))
    n.node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], name="bn")
    check(n, {"bn": dict(params=2 * c, flops=2 * numel(xs))})


@pytest.mark.parametrize("xs,axis,bias,stats", [((2, 5, 8), -1, True, False), ((2, 5, 8), 1, False, True),
                                                ((4, 6), 0, True, True), ((1, 197, 768), -1, True, False)])
def test_layernorm(xs, axis, bias, stats):
    n = Net(17)
    n.input("x", xs)
    a = axis % len(xs)
    n.const("g", np.ones(xs[a:]))
    ins = ["x", "g"] + ([n.const("b", np.zeros(xs[a:]))] if bias else [])
    n.node("LayerNormalization", ins, ["y", "mean", "inv"] if stats else ["y"], name="ln", axis=axis)
    check(n)


def test_instancenorm():
    n = Net()
    n.input("x", (2, 3, 4, 5))
    n.const("s", np.ones(3))
    n.const("b", np.zeros(3))
    n.node("InstanceNormalization", ["x", "s", "b"], ["y"], name="in")
    check(n, {"in": dict(params=6, flops=8 * 120)})


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,attrs", [(11, {}), (11, dict(axis=2)), (13, {}), (13, dict(axis=1)), (13, dict(axis=-3))])
def test_softmax(op, opset, attrs):
    n = Net(opset)
    n.input("x", (2, 3, 4))
    n.node(op, ["x"], ["y"], name="sm", **attrs)
    check(n, {"sm": dict(flops=5 * 24)})


REDUCE_CASES = [
    # opset, axes (None = all), keepdims, noop_with_empty_axes
    (13, [1], 1, None), (13, [0, 2], 0, None), (13, [-1], 0, None), (13, None, 1, None), (13, None, 0, None),
    (18, [1], 1, None), (18, [-2, 0], 0, None), (18, None, 1, None), (18, None, 0, 1),
]


@pytest.mark.parametrize("op", sorted(REDUCES))
@pytest.mark.parametrize("opset,axes,keep,noop", REDUCE_CASES)
def test_reduce(op, opset, axes, keep, noop):
    n = Net(opset)
    n.input("x", (2, 3, 4))
    attrs = dict(keepdims=keep)
    if noop is not None:
        attrs["noop_with_empty_axes"] = noop
    axes_as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    ins = ["x"]
    if axes is not None:
        if axes_as_input:
            ins.append(n.ints("axes", axes))
        else:
            attrs["axes"] = axes
    n.node(op, ins, ["y"], name="red", **attrs)
    check(n)


def test_reduce_mean_hand_numbers():
    n = Net(18)
    n.input("x", (2, 3, 4))
    n.ints("axes", [2])
    n.node("ReduceMean", ["x", "axes"], ["y"], name="rm", keepdims=0)
    check(n, {"rm": dict(output_shapes=[[2, 3]], flops=24 + 6)})


# ---------------------------------------------------------------------------------------------
# Resize, Upsample

def _resize(opset, xs, mode, scales=None, sizes=None, **attrs):
    n = Net(opset)
    n.input("x", xs)
    if opset == 10:
        ins = ["x", n.const("scales", np.array(scales, np.float32))]
    else:
        roi = n.const("roi", np.zeros(0, np.float32)) if opset < 13 else ""
        sc = n.const("scales", np.array(scales, np.float32)) if scales is not None else (
            n.const("scales", np.zeros(0, np.float32)) if opset < 13 else "")
        ins = ["x", roi, sc] + ([n.ints("sizes", sizes)] if sizes is not None else [])
    n.node("Resize", ins, ["y"], name="resize", mode=mode, **attrs)
    return n


RESIZE_CASES = [
    (10, (1, 2, 4, 5), "nearest", [1, 1, 2, 2], None, {}),
    (10, (1, 2, 4, 5), "linear", [1, 1, 2, 3], None, {}),
    (11, (1, 2, 4, 5), "nearest", [1, 1, 2.5, 1.5], None, {}),
    (11, (1, 2, 4, 5), "linear", None, [1, 2, 7, 9], {}),
    (11, (1, 2, 4, 5), "cubic", [1, 1, 2, 2], None, {}),
    (13, (1, 2, 4, 5), "nearest", None, [1, 2, 8, 10], {}),
    (13, (1, 2, 4, 5), "linear", [1, 1, 0.5, 0.6], None, {}),
    (13, (1, 3, 5), "linear", [1, 1, 3], None, {}),
    (13, (2, 4, 4), "nearest", [1, 2, 1], None, {}),
    (18, (1, 2, 4, 6), "linear", None, [8, 12], dict(axes=[2, 3])),
    (18, (1, 2, 4, 6), "nearest", [2, 2], None, dict(axes=[-2, -1])),
    (18, (1, 2, 4, 6), "nearest", None, [8, 8], dict(axes=[2, 3], keep_aspect_ratio_policy="not_larger")),
    (18, (1, 2, 4, 6), "linear", None, [8, 8], dict(axes=[2, 3], keep_aspect_ratio_policy="not_smaller")),
    (18, (1, 2, 5, 7), "nearest", None, [3, 3], dict(axes=[2, 3], keep_aspect_ratio_policy="not_larger")),
    (18, (1, 2, 4, 6), "cubic", None, [1, 2, 9, 6], dict(keep_aspect_ratio_policy="stretch")),
]


@pytest.mark.parametrize("opset,xs,mode,scales,sizes,attrs", RESIZE_CASES)
def test_resize(opset, xs, mode, scales, sizes, attrs):
    check(_resize(opset, xs, mode, scales, sizes, **attrs))


def test_resize_hand_numbers():
    n = _resize(13, (1, 2, 4, 5), "linear", [1, 1, 2, 2], None)
    # 1·2·8·10 = 160 outputs, 2 interpolated axes, 3 FLOPs per axis
    check(n, {"resize": dict(output_shapes=[[1, 2, 8, 10]], flops=160 * 6, params=4)})


@pytest.mark.parametrize("opset,mode", [(7, "nearest"), (7, "linear"), (9, "nearest"), (9, "linear")])
def test_upsample(opset, mode):
    n = Net(opset)
    n.input("x", (1, 2, 3, 4))
    if opset == 7:
        n.node("Upsample", ["x"], ["y"], name="up", mode=mode, scales=[1.0, 1.0, 2.0, 3.0])
    else:
        n.const("s", np.array([1, 1, 2, 3], np.float32))
        n.node("Upsample", ["x", "s"], ["y"], name="up", mode=mode)
    check(n)


# ---------------------------------------------------------------------------------------------
# Data movement and shape ops (0 FLOPs), each with its opset variants

def test_identity_dropout():
    n = Net(13)
    n.input("x", (2, 3))
    n.node("Identity", ["x"], ["a"], name="id")
    n.node("Dropout", ["a"], ["b", "mask"], name="drop")
    n.node("Dropout", ["b"], ["c"], name="drop2")
    check(n)


def test_dropout_opset12_inputs():
    n = Net(12)
    n.input("x", (2, 3))
    n.const("ratio", np.float32(0.3))
    n.const("train", np.array(False))
    n.node("Dropout", ["x", "ratio", "train"], ["y", "mask"], name="drop")
    check(n, {"drop": dict(flops=0, params=0, output_shapes=[[2, 3], [2, 3]])})


@pytest.mark.parametrize("opset,start,end", [(13, None, None), (15, 1, None), (15, -2, None), (15, 0, -1),
                                             (15, 1, 3), (15, -10, 10), (15, 3, 1)])
def test_shape(opset, start, end):
    n = Net(opset)
    n.input("x", (2, 3, 4, 5))
    attrs = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    n.node("Shape", ["x"], ["s"], name="shape", **attrs)
    check(n)


@pytest.mark.parametrize("target,allowzero", [([4, 6], 0), ([-1, 3], 0), ([0, -1], 0), ([2, 0, 2, -1], 0),
                                              ([24], 0), ([1, 2, 3, 4], 0), ([2, 3, 4], 1)])
def test_reshape(target, allowzero):
    n = Net(14)
    n.input("x", (2, 3, 4))
    n.ints("t", target)
    n.node("Reshape", ["x", "t"], ["y"], name="reshape", **({"allowzero": 1} if allowzero else {}))
    check(n)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_flatten(axis):
    n = Net()
    n.input("x", (2, 3, 4))
    n.node("Flatten", ["x"], ["y"], name="flatten", axis=axis)
    check(n)


@pytest.mark.parametrize("opset,axes", [(11, [1]), (11, [-1, 1]), (11, None), (13, [1]), (13, [3, -3]),
                                        (13, None), (18, [1])])
def test_squeeze(opset, axes):
    n = Net(opset)
    n.input("x", (2, 1, 3, 1))
    if axes is None:
        n.node("Squeeze", ["x"], ["y"], name="squeeze")
    elif opset < 13:
        n.node("Squeeze", ["x"], ["y"], name="squeeze", axes=axes)
    else:
        n.node("Squeeze", ["x", n.ints("axes", axes)], ["y"], name="squeeze")
    check(n)


@pytest.mark.parametrize("opset,axes", [(11, [0]), (11, [-1]), (11, [0, 3]), (13, [1]), (13, [-1, 0]),
                                        (13, [4, 1, 0])])
def test_unsqueeze(opset, axes):
    n = Net(opset)
    n.input("x", (2, 3))
    if opset < 13:
        n.node("Unsqueeze", ["x"], ["y"], name="unsqueeze", axes=axes)
    else:
        n.node("Unsqueeze", ["x", n.ints("axes", axes)], ["y"], name="unsqueeze")
    check(n)


@pytest.mark.parametrize("perm", [None, [0, 2, 1, 3], [3, 2, 1, 0], [1, 0, 3, 2]])
def test_transpose(perm):
    n = Net()
    n.input("x", (2, 3, 4, 5))
    n.node("Transpose", ["x"], ["y"], name="transpose", **({"perm": perm} if perm else {}))
    check(n)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis):
    n = Net()
    shapes = {0: [(1, 3, 4), (2, 3, 4), (3, 3, 4)], 1: [(2, 1, 4), (2, 5, 4)], -1: [(2, 3, 1), (2, 3, 2), (2, 3, 3)]}
    names = [n.input("x%d" % i, s) for i, s in enumerate(shapes[axis])]
    n.node("Concat", names, ["y"], name="concat", axis=axis)
    check(n)


@pytest.mark.parametrize("opset,axis,split,n_out", [(11, 0, [2, 4], 2), (11, 1, None, 3), (13, -1, [1, 1, 2], 3),
                                                    (13, 0, None, 2), (18, 0, "num", 3), (18, 1, "num", 2),
                                                    (18, 2, [3, 1], 2)])
def test_split(opset, axis, split, n_out):
    n = Net(opset)
    n.input("x", (6, 3, 4) if split != "num" else (7, 5, 4))
    outs = ["y%d" % i for i in range(n_out)]
    if split == "num":
        n.node("Split", ["x"], outs, name="split", axis=axis, num_outputs=n_out)
    elif split is None:
        n.node("Split", ["x"], outs, name="split", axis=axis)
    elif opset < 13:
        n.node("Split", ["x"], outs, name="split", axis=axis, split=split)
    else:
        n.node("Split", ["x", n.ints("split", split)], outs, name="split", axis=axis)
    check(n)


SLICE_CASES = [
    # starts, ends, axes, steps
    ([1], [3], [0], None),
    ([0, 1], [2, -1], None, None),
    ([-3], [100], [2], None),
    ([0], [-1], [-1], [2]),
    ([4], [0], [2], [-1]),
    ([-1], [-100], [2], [-1]),
    ([-10], [-100], [2], [-1]),
    ([10], [-100], [2], [-2]),
    ([1, 0], [10, 3], [1, 2], [1, 2]),
    ([2], [1], [0], None),
    ([0], [2 ** 63 - 1], [1], None),
    ([-(2 ** 63)], [2 ** 63 - 1], [2], [3]),
    ([2 ** 63 - 1], [-(2 ** 63)], [2], [-1]),
]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICE_CASES)
def test_slice(starts, ends, axes, steps):
    n = Net(13)
    n.input("x", (4, 5, 6))
    ins = ["x", n.ints("s", starts), n.ints("e", ends)]
    if axes is not None or steps is not None:
        ins.append(n.ints("a", axes if axes is not None else list(range(len(starts)))))
    if steps is not None:
        ins.append(n.ints("st", steps))
    n.node("Slice", ins, ["y"], name="slice")
    check(n)


@pytest.mark.parametrize("starts,ends,axes", [([1], [3], [0]), ([0, 1], [2, -1], None), ([-3], [1000], [2])])
def test_slice_opset7_attrs(starts, ends, axes):
    n = Net(7)
    n.input("x", (4, 5, 6))
    n.node("Slice", ["x"], ["y"], name="slice", starts=starts, ends=ends, **({"axes": axes} if axes else {}))
    check(n)


@pytest.mark.parametrize("xs,idx,axis", [((5, 4), [0, -1, 2], 0), ((5, 4), [[1, 2], [3, 0]], 1), ((5, 4), 3, 0),
                                         ((2, 3, 4), -2, 2), ((2, 3, 4), [[0]], -2)])
def test_gather(xs, idx, axis):
    n = Net()
    n.input("x", xs)
    n.ints("i", idx)
    n.node("Gather", ["x", "i"], ["y"], name="gather", axis=axis)
    check(n)


@pytest.mark.parametrize("src,to", [(np.float32, TP.INT64), (np.int64, TP.FLOAT), (np.float32, TP.BOOL),
                                    (np.int64, TP.INT32), (np.bool_, TP.FLOAT)])
def test_cast(src, to):
    n = Net()
    n.input("x", (2, 3), src)
    n.node("Cast", ["x"], ["y"], name="cast", to=to)
    check(n)


def test_constants():
    n = Net(13)
    n.input("x", (2, 3))
    n.node("Constant", [], ["c_t"], name="c_tensor",
           value=numpy_helper.from_array(np.ones((2, 3), np.float32), "v"))
    n.node("Constant", [], ["c_f"], name="c_float", value_float=2.0)
    n.node("Constant", [], ["c_fs"], name="c_floats", value_floats=[1.0, 2.0, 3.0])
    n.node("Constant", [], ["c_is"], name="c_ints", value_ints=[3, 2])
    n.node("Constant", [], ["c_i"], name="c_int", value_int=7)
    n.node("Add", ["x", "c_t"], ["a"], name="add_t")
    n.node("Mul", ["a", "c_f"], ["b"], name="mul_f")
    n.node("Add", ["b", "c_fs"], ["c"], name="add_fs")
    n.node("Reshape", ["c", "c_is"], ["d"], name="reshape_is")
    r = check(n, {"add_t": dict(params=6), "mul_f": dict(params=0), "add_fs": dict(params=3),
                  "reshape_is": dict(output_shapes=[[3, 2]])})
    assert r["totals"]["params"] == 9


@pytest.mark.parametrize("value", [None, np.array([2.5], np.float32), np.array([3], np.int64), np.array([1], np.int32)])
def test_constant_of_shape(value):
    n = Net()
    n.input("x", (2, 3, 4))
    n.node("Shape", ["x"], ["s"], name="shape")
    attrs = {"value": numpy_helper.from_array(value, "v")} if value is not None else {}
    n.node("ConstantOfShape", ["s"], ["c"], name="cos", **attrs)
    check(n)


@pytest.mark.parametrize("xs,shape", [((3, 1), [2, 1, 6]), ((1, 4), [3, 1]), ((2, 3), [3]), ((1,), [2, 2]),
                                      ((4, 1, 2), [1, 3, 1])])
def test_expand(xs, shape):
    n = Net()
    n.input("x", xs)
    n.ints("s", shape)
    n.node("Expand", ["x", "s"], ["y"], name="expand")
    check(n)


@pytest.mark.parametrize("reps", [[1, 2], [3, 1], [2, 2]])
def test_tile(reps):
    n = Net()
    n.input("x", (2, 3))
    n.ints("r", reps)
    n.node("Tile", ["x", "r"], ["y"], name="tile")
    check(n)


@pytest.mark.parametrize("start,limit,delta,dtype", [(0, 10, 3, np.int64), (10, 0, -2, np.int64), (0, 0, 1, np.int64),
                                                     (0.5, 3.0, 0.75, np.float32), (5, 1, 1, np.int32)])
def test_range(start, limit, delta, dtype):
    n = Net(11)
    n.input("x", (1,))
    n.const("start", np.array(start, dtype))
    n.const("limit", np.array(limit, dtype))
    n.const("delta", np.array(delta, dtype))
    n.node("Range", ["start", "limit", "delta"], ["r"], name="range")
    check(n)


PAD_CASES = [
    (7, [0, 0, 1, 2, 0, 0, 3, 4], "constant", None),
    (10, [0, 0, 1, 0, 0, 0, 1, 0], "reflect", None),
    (11, [0, 0, 1, 1, 0, 0, 1, 1], "constant", None),
    (11, [0, 1, 2, 0, 0, 0, 1, 2], "edge", None),
    (13, [0, 0, -1, 0, 0, 0, 0, -2], "constant", None),
    (18, [1, 2, 3, 4], "constant", [2, 3]),
    (18, [2, 1], "reflect", [-1]),
]


@pytest.mark.parametrize("opset,pads,mode,axes", PAD_CASES)
def test_pad(opset, pads, mode, axes):
    n = Net(opset)
    n.input("x", (1, 2, 4, 5))
    if opset < 11:
        n.node("Pad", ["x"], ["y"], name="pad", pads=pads, mode=mode)
    else:
        ins = ["x", n.ints("pads", pads)]
        if mode == "constant":
            ins.append(n.const("cv", np.float32(0.5)))
        if axes is not None:
            if len(ins) == 2:
                ins.append("")
            ins.append(n.ints("axes", axes))
        n.node("Pad", ins, ["y"], name="pad", mode=mode)
    check(n, {"pad": dict(flops=0, params=0)})


# ---------------------------------------------------------------------------------------------
# Constant folding: shape subgraphs must give the downstream node concrete shapes

def test_fold_shape_gather_unsqueeze_concat_reshape():
    n = Net(13)
    n.input("x", (2, 3, 4, 5), dims=["N", 3, 4, 5])
    n.node("Shape", ["x"], ["s"], name="shape")
    n.node("Gather", ["s", n.ints("i0", 0)], ["n"], name="gather", axis=0)
    n.node("Unsqueeze", ["n", n.ints("ax", [0])], ["n1"], name="unsqueeze")
    n.node("Concat", ["n1", n.ints("m1", [-1])], ["t"], name="concat", axis=0)
    n.node("Reshape", ["x", "t"], ["y"], name="reshape")
    n.weight("w", (60, 7))
    n.node("MatMul", ["y", "w"], ["z"], name="mm")
    r = check(n, {"reshape": dict(output_shapes=[[2, 60]]), "mm": dict(macs=2 * 7 * 60, activations=14)},
              extra=("--input-shape", "x=2x3x4x5"))
    assert all(nd["flops"] == 0 for nd in r["nodes"] if nd["op_type"] != "MatMul")


def test_fold_shape_slice_cast_mul_cast_reshape():
    n = Net(13)
    n.input("x", (1, 4, 6, 8))
    n.node("Shape", ["x"], ["s"], name="shape")
    n.node("Slice", ["s", n.ints("b", [2]), n.ints("e", [4])], ["hw"], name="slice")
    n.node("Cast", ["hw"], ["hwf"], name="cast_f", to=TP.FLOAT)
    n.node("Mul", ["hwf", n.const("two", np.array([2.0, 2.0], np.float32))], ["hw2"], name="mul")
    n.node("Cast", ["hw2"], ["hw2i"], name="cast_i", to=TP.INT64)
    n.node("Concat", [n.ints("nc", [1, 4]), "hw2i"], ["size"], name="concat", axis=0)
    n.node("Resize", ["x", "", "", "size"], ["up"], name="resize", mode="nearest")
    n.node("Shape", ["up"], ["s2"], name="shape2")
    n.node("ReduceProd", ["s2"], ["p"], name="prod", keepdims=1)
    n.node("Reshape", ["up", "p"], ["flat"], name="reshape")
    check(n, {"resize": dict(output_shapes=[[1, 4, 12, 16]]), "reshape": dict(output_shapes=[[768]]),
              "mul": dict(flops=0, params=2), "prod": dict(flops=0)})


def test_fold_constant_of_shape_expand():
    n = Net(13)
    n.input("x", (2, 1, 5))
    n.node("Shape", ["x"], ["s"], name="shape")
    n.node("ConstantOfShape", ["s"], ["zeros"], name="cos_zeros")
    n.node("Add", ["x", "zeros"], ["x0"], name="add_zeros")  # a real add: x is not constant
    n.node("ConstantOfShape", [n.ints("dims", [3])], ["ones"], name="cos_ones",
           value=numpy_helper.from_array(np.array([1], np.int64), "v"))
    n.node("Mul", ["ones", n.ints("k", [2, 3, 5])], ["tgt"], name="mul")
    n.node("Expand", ["x0", "tgt"], ["e1"], name="expand")
    n.node("Expand", ["zeros", "tgt"], ["e2"], name="expand_const")
    n.node("Add", ["e1", "e2"], ["y"], name="add")
    check(n, {"expand": dict(output_shapes=[[2, 3, 5]]), "expand_const": dict(output_shapes=[[2, 3, 5]]),
              "mul": dict(flops=0), "add_zeros": dict(flops=10), "add": dict(flops=30)})


def test_fold_range_reshape():
    n = Net(13)
    n.input("x", (2, 12))
    n.node("Shape", ["x"], ["s"], name="shape")
    n.node("Gather", ["s", n.ints("i1", 1)], ["len"], name="gather")
    n.node("Div", ["len", n.ints("four", 4)], ["q"], name="div")
    n.node("Range", [n.ints("zero", 0), "q", n.ints("one", 1)], ["r"], name="range")
    n.node("Shape", ["r"], ["rs"], name="shape_r")
    n.node("Concat", [n.ints("m1", [-1]), "rs"], ["t"], name="concat", axis=0)
    n.node("Reshape", ["x", "t"], ["y"], name="reshape")
    check(n, {"reshape": dict(output_shapes=[[8, 3]]), "div": dict(flops=0)})


def test_fold_where_equal_on_shapes():
    """The exporter pattern for Reshape with -1 and 0: Where(Equal(shape, -1), ones, shape)."""
    n = Net(13)
    n.input("x", (3, 4, 5))
    n.ints("spec", [3, -1])
    n.node("Equal", ["spec", n.ints("m1", [-1])], ["is_neg"], name="equal")
    n.node("ConstantOfShape", [n.ints("two", [2])], ["ones"], name="cos",
           value=numpy_helper.from_array(np.array([1], np.int64), "v"))
    n.node("Where", ["is_neg", "ones", "spec"], ["spec1"], name="where")
    n.node("Expand", ["x", n.ints("full", [3, 4, 5])], ["xe"], name="expand")
    n.node("Reshape", ["xe", "spec"], ["y"], name="reshape")
    n.node("Unsqueeze", ["spec1", n.ints("ax", [0])], ["u"], name="unsq")
    n.node("Squeeze", ["u", n.ints("ax0", [0])], ["sq"], name="sq")
    n.node("Mul", ["sq", n.ints("k", [1, 20])], ["tgt"], name="mul")
    n.node("Reshape", ["xe", "tgt"], ["y2"], name="reshape2")
    check(n, {"reshape": dict(output_shapes=[[3, 20]]), "reshape2": dict(output_shapes=[[3, 20]]),
              "where": dict(flops=0), "equal": dict(flops=0)})


@pytest.mark.parametrize("op,a,b,attrs,then_add", [
    ("Mod", [-7, 29], [3, 5], {}, [0, 8]),            # Python-style: the divisor's sign
    ("Mod", [-7, 29], [3, 5], dict(fmod=1), [3, 8]),  # C-style: the dividend's sign
    ("Div", [7, 24], [-2, 2], {}, [5, 0]),            # integer division truncates
    ("Sub", [5, 20], [3, 8], {}, [0, 0]),
    ("Pow", [2, 3], [1, 2], {}, [0, 3]),
])
def test_fold_integer_arith(op, a, b, attrs, then_add):
    """Shape arithmetic is folded exactly as onnxruntime computes it: the result must be [2, 12]."""
    n = Net(13)
    n.input("x", (4, 6))
    n.node(op, [n.ints("a", a), n.ints("b", b)], ["r"], name="arith", **attrs)
    n.node("Add", ["r", n.ints("k", then_add)], ["t"], name="add")
    n.node("Reshape", ["x", "t"], ["y"], name="reshape")
    check(n, {"reshape": dict(output_shapes=[[2, 12]]), "arith": dict(flops=0)})


def test_fold_transpose_squeeze_of_constants():
    n = Net(13)
    n.input("x", (2, 6))
    n.weight("w", (1, 4, 6), zero_every=2)  # stored (1, out, in): a weight as exported by some tools
    n.node("Squeeze", ["w", n.ints("ax", [0])], ["w2"], name="squeeze")
    n.node("Transpose", ["w2"], ["wt"], name="transpose", perm=[1, 0])
    n.node("MatMul", ["x", "wt"], ["y"], name="mm")
    n.node("ReduceSum", ["wt", n.ints("a0", [0])], ["colsum"], name="rsum", keepdims=0)
    n.node("Add", ["y", "colsum"], ["z"], name="add")
    # the folded weight is the MatMul's weight: sparsity is counted on it, but params on the stored tensor
    check(n, {"mm": dict(macs=48, params=0, weight_sparsity=0.5, nonzero_macs=24), "squeeze": dict(params=24),
              "rsum": dict(flops=0), "add": dict(flops=8)})


def test_dynamic_batch_fixed_by_input_shape():
    n = Net(13)
    n.input("images", (3, 3, 8, 8), dims=["N", 3, "H", "W"])
    n.weight("w", (4, 3, 3, 3))
    n.node("Conv", ["images", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
    n.node("Relu", ["y"], ["z"], name="relu")
    check(n, {"conv": dict(macs=3 * 4 * 64 * 27)}, extra=("--input-shape", "images=3x3x8x8"))


# ---------------------------------------------------------------------------------------------
# Ops flopcut does not know: listed, downstream listed as unreachable, excluded from totals

def _unsupported_net(kind):
    n = Net(13)
    n.input("x", (3, 3))
    if kind == "det":
        n.node("Det", ["x"], ["d"], name="det")
    else:
        n.domains["com.example"] = 1
        n.node("Frobnicate", ["x"], ["d"], name="custom", domain="com.example")
    n.node("Mul", ["d", n.const("k", np.float32(2.0))], ["e"], name="after1")
    n.node("Neg", ["e"], ["f"], name="after2")
    n.node("Relu", ["x"], ["g"], name="independent")
    n.node("Add", ["g", "f"], ["h"], name="join")
    return n


@pytest.mark.parametrize("kind", ["det", "custom"])
def test_unsupported_op_listed_not_zero(kind):
    n = _unsupported_net(kind)
    r = run_flopcut(n.model())
    listed = {u["name"]: u for u in r["unsupported"]}
    bad = "det" if kind == "det" else "custom"
    assert set(listed) == {bad, "after1", "after2", "join"}
    assert listed[bad]["op_type"] == ("Det" if kind == "det" else "Frobnicate")
    assert "not supported" in listed[bad]["reason"]
    for name in ("after1", "after2", "join"):
        assert "unsupported" in listed[name]["reason"], listed[name]
    assert [nd["name"] for nd in r["nodes"]] == ["independent"]
    assert r["totals"]["flops"] == 9 and r["totals"]["macs"] == 0


def test_det_shapes_still_run_in_ort():
    """Sanity: the Det model is valid ONNX that onnxruntime runs (so flopcut's refusal is its own)."""
    n = _unsupported_net("det")
    shapes, _ = run_ort(n.model(), n.feeds)
    assert shapes["h"] == (3, 3)
