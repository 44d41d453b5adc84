# Independent reference counter (MACs, params, activations) for ONNX models, used as a test oracle.
# Usage: python3 tools/count_reference.py MODEL.onnx [--input-shape NAME=1x3x64x64 ...] [--json] [--check-ort]
import argparse
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def parse_shape_args(items):
    out = {}
    for it in items or []:
        name, _, dims = it.rpartition("=")
        out[name] = [int(d) for d in dims.lower().split("x")]
    return out


def fix_inputs(model, shapes):
    """Pin graph input dims; error if a dynamic dim remains unfixed."""
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if inp.name in shapes:
            want = shapes[inp.name]
            if len(want) != len(dims):
                sys.exit("input %s: rank %d given, model has rank %d" % (inp.name, len(want), len(dims)))
            for d, v in zip(dims, want):
                d.Clear()
                d.dim_value = v
        elif any(not d.HasField("dim_value") for d in dims):
            sys.exit("input %s has a dynamic shape; pass --input-shape %s=..." % (inp.name, inp.name))


def shapes_from_inference(model):
    inferred = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    g = inferred.graph
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[vi.name] = [d.dim_value for d in t.shape.dim]
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def shapes_from_ort(model):
    """Second, independent shape source: execute the model and record every tensor."""
    import onnxruntime as ort
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in m.graph.node:
        for o in n.output:
            if o and o not in have:
                m.graph.output.append(helper.ValueInfoProto(name=o))
                have.add(o)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        dt = np.float32 if "float" in i.type else np.int64
        feeds[i.name] = np.random.RandomState(0).rand(*i.shape).astype(dt)
    names = [o.name for o in sess.get_outputs()]
    shapes = {k: list(np.shape(v)) for k, v in zip(names, sess.run(names, feeds))}
    shapes.update({k: list(v.shape) for k, v in feeds.items()})
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def prod(xs):
    r = 1
    for x in xs:
        r *= int(x)
    return r


def count_params(graph):
    """Params rule: elements of float initializers + float Constant nodes of rank >= 1, each
    tensor name counted once. Rank-0 float Constants (Clip bounds, epsilons, GELU factors) are
    hyper-parameters, not weights; their element count is returned separately, not added."""
    seen, inits, consts, scalars = set(), 0, 0, 0
    for init in graph.initializer:
        if init.data_type in FLOAT_TYPES and init.name not in seen:
            seen.add(init.name)
            inits += prod(init.dims)
    for n in graph.node:
        if n.op_type != "Constant" or n.output[0] in seen:
            continue
        seen.add(n.output[0])
        for a in n.attribute:
            if a.name == "value" and a.t.data_type in FLOAT_TYPES:
                if len(a.t.dims) == 0:
                    scalars += 1
                else:
                    consts += prod(a.t.dims)
            elif a.name == "value_float":
                scalars += 1
            elif a.name == "value_floats":
                consts += len(a.floats)
    return inits, consts, scalars


def attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def node_macs(node, shapes):
    out = shapes[node.output[0]]
    op = node.op_type
    if op == "Conv":
        w = shapes[node.input[1]]  # [Cout, Cin/group, k...]
        return prod(out) * prod(w[1:])
    if op == "ConvTranspose":
        x, w = shapes[node.input[0]], shapes[node.input[1]]  # w: [Cin, Cout/group, k...]
        return prod(x) * prod(w[1:])
    if op == "Gemm":
        a = shapes[node.input[0]]
        k = a[0] if attr(node, "transA", 0) else a[1]
        return prod(out) * k
    if op == "MatMul":
        return prod(out) * shapes[node.input[0]][-1]
    return 0


def count(model, use_ort=False):
    shapes = shapes_from_ort(model) if use_ort else shapes_from_inference(model)
    macs = acts = 0
    for n in model.graph.node:
        if n.op_type not in COMPUTE_OPS:
            continue
        missing = [t for t in (n.input[0], n.input[1], n.output[0]) if t not in shapes]
        if missing:
            raise RuntimeError("unresolved shape for %s (%s): %s" % (n.name, n.op_type, missing))
        macs += node_macs(n, shapes)
        acts += prod(shapes[n.output[0]])
    init_params, const_params, scalar_consts = count_params(model.graph)
    outs = [shapes.get(o.name) for o in model.graph.output]
    return {"macs": macs, "params": init_params + const_params,
            "params_initializers": init_params, "params_constant_nodes": const_params,
            "scalar_float_constants_excluded": scalar_consts,
            "activations": acts, "output_shape": outs[0] if len(outs) == 1 else outs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--input-shape", action="append")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check-ort", action="store_true", help="also count with shapes from onnxruntime")
    a = ap.parse_args()
    model = onnx.load(a.model)
    fix_inputs(model, parse_shape_args(a.input_shape))
    res = count(model)
    if a.check_ort:
        other = count(model, use_ort=True)
        if other != res:
            sys.exit("shape-inference and onnxruntime counts differ:\n%s\n%s" % (res, other))
        res["ort_agrees"] = True
    if a.json:
        print(json.dumps(res))
    else:
        print("%s: macs=%d params=%d (initializers %d + constant nodes %d; %d scalar float "
              "constants excluded) activations=%d output=%s"
              % (a.model, res["macs"], res["params"], res["params_initializers"],
                 res["params_constant_nodes"], res["scalar_float_constants_excluded"],
                 res["activations"], res["output_shape"]))


if __name__ == "__main__":
    main()
