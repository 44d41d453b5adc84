# Seed corpus and dictionary for the loader fuzzer (tools/fuzz.sh): one small ONNX model per op in
# the src/ops tables (a dynamic-input and an all-constant variant, so folding runs too).
# Real models given after DICT_FILE are added as skeletons (big weights → static-shape inputs).
# Usage: python3 tests/fuzz/make_seeds.py CORPUS_DIR DICT_FILE [MODEL.onnx...]
import glob
import os
import re
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def table_ops():
    """Op names from the rows of the src/ops/*.c tables ({"Name", infer..} and ROW("Name"))."""
    ops = []
    for path in sorted(glob.glob(os.path.join(ROOT, "src", "ops", "*.c"))):
        text = open(path).read()
        ops += re.findall(r'\{"([A-Za-z]+)",\s*infer', text)
        ops += re.findall(r'ROW\("([A-Za-z]+)"\)', text)
    return sorted(set(ops))


def i64(*v):
    return np.array(v, np.int64)


def f32(shape, seed=0):
    return (np.random.RandomState(seed).standard_normal(shape) * 0.5).astype(np.float32)


X4 = [1, 2, 4, 4]
UNARY = {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Exp", "Log", "Sqrt",
         "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Elu", "Softplus", "Gelu", "Sign",
         "Identity", "Dropout", "Shape", "Flatten", "Transpose", "GlobalAveragePool", "GlobalMaxPool",
         "Softmax", "LogSoftmax", "Cast"}
BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less", "Greater", "LessOrEqual",
          "GreaterOrEqual", "Max", "Min", "Sum", "Mean"}
LOGIC = {"And", "Or", "Xor", "Not"}
REDUCE = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2"}

# op -> (inputs: list of (name, array or shape-for-dynamic), attrs, opset)
def spec(op):
    x = ("x", f32(X4))
    if op in UNARY:
        attrs = {"to": TensorProto.INT64} if op == "Cast" else {}
        if op == "Transpose": attrs = {"perm": [0, 2, 3, 1]}
        if op == "Softmax": attrs = {"axis": 1}
        return [x], attrs, 13
    if op in BINARY:
        return [x, ("y", f32([2, 1, 4], 1))], {}, 13
    if op in LOGIC:
        b = ("x", np.array([[1, 0, 1, 1]], np.bool_))
        return ([b] if op == "Not" else [b, ("y", np.array([1, 0, 0, 1], np.bool_))]), {}, 13
    if op in REDUCE:
        return [x, ("axes", i64(1, -1))], {"keepdims": 0}, 18
    table = {
        "Clip": ([x, ("lo", np.array(-0.5, np.float32)), ("hi", np.array(0.5, np.float32))], {}, 13),
        "Where": ([("c", np.array([[1, 0, 0, 1]], np.bool_)), x, ("y", f32([4], 2))], {}, 13),
        "Conv": ([("x", f32([1, 4, 5, 5])), ("w", f32([6, 2, 3, 3], 3)), ("b", f32([6], 4))],
                 {"group": 2, "pads": [1, 0, 1, 0], "strides": [2, 1], "dilations": [1, 2]}, 13),
        "ConvTranspose": ([("x", f32([1, 4, 3, 3])), ("w", f32([4, 3, 2, 2], 5))],
                          {"strides": [2, 2], "output_padding": [1, 0]}, 13),
        "MaxPool": ([("x", f32([1, 2, 7, 7]))], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, 13),
        "AveragePool": ([("x", f32([1, 2, 7, 7]))], {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}, 13),
        "Gemm": ([("a", f32([3, 4])), ("b", f32([5, 4], 6)), ("c", f32([5], 7))], {"transB": 1}, 13),
        "MatMul": ([("a", f32([2, 3, 4])), ("b", f32([4, 5], 8))], {}, 13),
        "BatchNormalization": ([x, ("s", f32([2], 1)), ("bb", f32([2], 2)), ("m", f32([2], 3)),
                                ("v", np.ones([2], np.float32))], {}, 13),
        "LayerNormalization": ([x, ("s", f32([4], 1)), ("bb", f32([4], 2))], {"axis": -1}, 17),
        "InstanceNormalization": ([x, ("s", f32([2], 1)), ("bb", f32([2], 2))], {}, 13),
        "Reshape": ([x, ("shape", i64(0, -1, 2))], {}, 13),
        "Squeeze": ([("x", f32([1, 3, 1])), ("axes", i64(0))], {}, 13),
        "Unsqueeze": ([x, ("axes", i64(0, -1))], {}, 13),
        "Concat": ([x, ("y", f32([1, 3, 4, 4], 1))], {"axis": 1}, 13),
        "Split": ([x, ("split", i64(1, 3))], {"axis": 2}, 13),
        "Slice": ([x, ("st", i64(0, -1)), ("en", i64(3, -4)), ("ax", i64(2, 3)), ("sp", i64(2, -1))], {}, 13),
        "Gather": ([x, ("idx", i64(-1, 0, 2))], {"axis": 2}, 13),
        "Constant": ([], {"value": numpy_helper.from_array(f32([2, 3]), "v")}, 13),
        "ConstantOfShape": ([("shape", i64(2, 3))],
                            {"value": numpy_helper.from_array(np.array([7], np.int64), "v")}, 13),
        "Expand": ([("x", f32([2, 1])), ("shape", i64(3, 2, 4))], {}, 13),
        "Tile": ([("x", f32([2, 3])), ("rep", i64(2, 2))], {}, 13),
        "Range": ([("s", np.array(1, np.int64)), ("l", np.array(9, np.int64)), ("d", np.array(2, np.int64))], {}, 13),
        "Pad": ([x, ("pads", i64(0, 0, 1, 2, 0, 0, 1, 0))], {"mode": "constant"}, 13),
        "Resize": ([x, ("roi", np.zeros([0], np.float32)), ("scales", np.array([1, 1, 2, 1.5], np.float32))],
                   {"mode": "linear"}, 13),
        "Upsample": ([x, ("scales", np.array([1, 1, 2, 2], np.float32))], {"mode": "nearest"}, 9),
    }
    return table.get(op)


def build(op, dynamic):
    s = spec(op)
    if s is None:
        return None
    inputs, attrs, opset = s
    graph_inputs, inits, names = [], [], []
    for k, (name, arr) in enumerate(inputs):
        names.append(name)
        if dynamic and k == 0 and arr.dtype == np.float32:
            dims = ["N"] + list(arr.shape[1:]) if arr.ndim else []
            graph_inputs.append(helper.make_tensor_value_info(name, F, dims))
        else:
            inits.append(numpy_helper.from_array(arr, name))
    outs = ["out", "out2"] if op == "Split" else ["out"]
    node = helper.make_node(op, names, outs, name=op.lower() + "_0", **attrs)
    graph = helper.make_graph([node], op, graph_inputs, [helper.make_tensor_value_info("out", F, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def shape_chain():
    """Shape → Gather → Unsqueeze → Concat → Reshape with a dynamic batch, the exporters' pattern."""
    n = [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
         helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
         helper.make_node("Concat", ["b1", "minus1"], ["tgt"], axis=0),
         helper.make_node("Reshape", ["x", "tgt"], ["y"]),
         helper.make_node("Relu", ["y"], ["out"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(i64(0), "ax0"),
             numpy_helper.from_array(i64(-1), "minus1")]
    g = helper.make_graph(n, "chain", [helper.make_tensor_value_info("x", F, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("out", F, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def skeleton(path):
    """A real model with its big weights turned into static-shape graph inputs: the same graph
    structure and shapes in a few KB, so the fuzzer mutates structure rather than weights."""
    import onnx
    m = onnx.load(path)
    keep = []
    for t in m.graph.initializer:
        if int(np.prod(t.dims)) > 64 and t.data_type == F:
            m.graph.input.append(helper.make_tensor_value_info(t.name, F, list(t.dims)))
        else:
            keep.append(t)
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    return m


def write_dict(path, ops):
    words = set(ops) | {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad", "SAME_UPPER",
                        "SAME_LOWER", "VALID", "NOTSET", "ceil_mode", "output_padding", "output_shape", "axis",
                        "axes", "keepdims", "noop_with_empty_axes", "perm", "split", "num_outputs", "to",
                        "value", "value_float", "value_int", "value_floats", "value_ints", "sparse_value",
                        "transA", "transB", "alpha", "beta", "epsilon", "mode", "scales", "sizes", "min", "max",
                        "shape", "allowzero", "starts", "ends", "start", "end", "linear", "nearest", "cubic",
                        "location", "offset", "length", "ai.onnx", "com.microsoft", "batch"}
    with open(path, "w") as f:
        for w in sorted(words):
            f.write('"%s"\n' % w)
        # protobuf keys of ModelProto/GraphProto/NodeProto fields (tag bytes) help splice structure
        for tag in (b"\x08", b"\x12", b"\x1a", b"\x22", b"\x2a", b"\x3a", b"\x42", b"\x4a", b"\x52", b"\x5a",
                    b"\x62", b"\x6a", b"\x72", b"\x7a", b"\x8a\x01"):
            f.write('"%s"\n' % "".join("\\x%02x" % c for c in tag))


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: make_seeds.py CORPUS_DIR DICT_FILE [MODEL.onnx...]")
    out, dict_path = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    ops = table_ops()
    missing = []
    for op in ops:
        for dynamic in (False, True):
            m = build(op, dynamic)
            if m is None:
                missing.append(op)
                break
            with open(os.path.join(out, "op_%s_%s.onnx" % (op, "dyn" if dynamic else "const")), "wb") as f:
                f.write(m.SerializeToString())
    with open(os.path.join(out, "shape_chain.onnx"), "wb") as f:
        f.write(shape_chain().SerializeToString())
    for path in sys.argv[3:]:
        name = os.path.splitext(os.path.basename(path))[0]
        with open(os.path.join(out, name + "_skeleton.onnx"), "wb") as f:
            f.write(skeleton(path).SerializeToString())
    write_dict(dict_path, ops)
    if missing:
        sys.exit("make_seeds.py: no seed for ops %s (add them to spec())" % ", ".join(missing))
    print("make_seeds.py: %d ops, %d seeds" % (len(ops), len(os.listdir(out))))


if __name__ == "__main__":
    main()
