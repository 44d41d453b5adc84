# Build small hand-made ONNX models (+ *.expected.json with hand-computed counts) for flopcut tests.
# Usage: python3 tools/make_test_models.py OUTDIR
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 14  # HardSwish needs opset 14; every other op used here has its opset-13 form
IR_VERSION = 8


class Builder:
    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)
        self.nodes, self.inits = [], []
        self.params = 0  # float constant elements counted by hand (non-scalar only)

    def weight(self, name, shape):
        self.inits.append(numpy_helper.from_array(
            (self.rng.standard_normal(shape) * 0.1).astype(np.float32), name))
        self.params += int(np.prod(shape))
        return name

    def floats(self, name, values):
        """Float initializer with fixed values (e.g. Resize scales); counts as a param."""
        arr = np.array(values, np.float32)
        self.inits.append(numpy_helper.from_array(arr, name))
        self.params += arr.size
        return name

    def ints(self, name, values):
        self.inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    def const(self, name, array):
        """A Constant node; float tensors of rank >= 1 count as params, scalars do not."""
        array = np.asarray(array)
        self.node("Constant", [], name, value=numpy_helper.from_array(array, name + "_value"))
        if array.dtype.kind == "f" and array.ndim >= 1:
            self.params += array.size
        return name

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=output + "_" + op, **attrs))
        return output

    def model(self, name, inputs, outputs):
        g = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(g, producer_name="flopcut-tests",
                              opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = IR_VERSION
        onnx.checker.check_model(m, full_check=True)
        return m


def build_detector():
    """Segmentation-style head whose reshapes are computed at run time from Shape ops."""
    b, N, H, W = Builder(0), 1, 64, 64
    macs = acts = 0
    # stem: Conv 3->8 s2 + HardSwish
    x = b.node("Conv", ["images", b.weight("stem.w", [8, 3, 3, 3]), b.weight("stem.b", [8])], "stem",
               kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    h, w = H // 2, W // 2
    macs += N * 8 * h * w * 3 * 9
    acts += N * 8 * h * w
    x = b.node("HardSwish", [x], "stem_act")
    # Conv 8->16 s2, SE-style gate multiplied back onto the features
    x = b.node("Conv", [x, b.weight("down.w", [16, 8, 3, 3]), b.weight("down.b", [16])], "down",
               kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    h, w = h // 2, w // 2
    macs += N * 16 * h * w * 8 * 9
    acts += N * 16 * h * w
    gate = b.node("HardSigmoid", [x], "gate", alpha=0.2, beta=0.5)
    x = b.node("Mul", [x, gate], "se")
    # per-channel offset: Range(0, C) -> Cast -> Unsqueeze -> * 0.01 (scalar Constant) -> Add
    s = b.node("Shape", [x], "se_shape")
    c1 = b.node("Slice", [s, b.ints("i1", [1]), b.ints("i2", [2])], "c_1d")
    c = b.node("Squeeze", [c1, b.ints("axis0", [0])], "c_scalar")
    r = b.node("Range", [b.const("zero_i", np.array(0, np.int64)), c,
                         b.const("one_i", np.array(1, np.int64))], "chan_idx")
    rf = b.node("Cast", [r], "chan_idx_f", to=TensorProto.FLOAT)
    ru = b.node("Unsqueeze", [rf, b.ints("axes023", [0, 2, 3])], "chan_idx_4d")
    off = b.node("Mul", [ru, b.const("step", np.array(0.01, np.float32))], "chan_off")
    x = b.node("Add", [x, off], "se_off")
    # ConstantOfShape(Shape(x)) of ones multiplied in; a shared per-channel bias Expand'ed and added
    ones = b.node("ConstantOfShape", [b.node("Shape", [x], "off_shape")], "ones",
                  value=numpy_helper.from_array(np.ones([1], np.float32), "one_f"))
    x = b.node("Mul", [x, ones], "se_ones")
    chan_bias = b.weight("chan_bias", [1, 16, 1, 1])  # used twice below, counted once
    cb = b.node("Expand", [chan_bias, b.node("Shape", [x], "ones_shape")], "chan_bias_full")
    x = b.node("Add", [x, cb], "feat")
    # flatten spatial dims with a run-time computed shape [N, 16, H*W]
    s = b.node("Shape", [x], "feat_shape")
    n = b.node("Unsqueeze", [b.node("Gather", [s, b.const("g0", np.array(0, np.int64))], "n_scalar",
                                    axis=0), b.ints("axes0", [0])], "n_1d")
    hwp = b.node("Mul", [b.node("Slice", [s, b.ints("s2", [2]), b.ints("e3", [3])], "h_1d"),
                         b.node("Slice", [s, b.ints("s3", [3]), b.ints("e4", [4])], "w_1d")], "hw_prod")
    tgt = b.node("Concat", [n, b.const("c16", np.array([16], np.int64)), hwp], "flat_shape", axis=0)
    t = b.node("Reshape", [x, tgt], "flat")
    t = b.node("Transpose", [t], "tokens", perm=[0, 2, 1])
    wm = b.const("mix.w", (b.rng.standard_normal([16, 16]) * 0.1).astype(np.float32))
    t = b.node("MatMul", [t, wm], "mix")
    macs += N * h * w * 16 * 16
    acts += N * h * w * 16
    t = b.node("Transpose", [t], "mix_t", perm=[0, 2, 1])
    back = b.node("Concat", [b.node("Slice", [b.node("Shape", [t], "mix_shape"), b.ints("s0", [0]),
                                              b.ints("e2", [2])], "nc"),
                             b.node("Slice", [s, b.ints("s2b", [2]), b.ints("e4b", [4])], "hw2")],
                  "unflat_shape", axis=0)
    x = b.node("Reshape", [t, back], "unflat")
    # upsample 2x (opset-13 Resize: empty roi, scales input), add the shared bias again
    x = b.node("Resize", [x, "", b.floats("up.scales", [1, 1, 2, 2])], "up", mode="nearest")
    h, w = h * 2, w * 2
    x = b.node("Add", [x, chan_bias], "up_bias")
    x = b.node("ConvTranspose", [x, b.weight("deconv.w", [16, 8, 2, 2]), b.weight("deconv.b", [8])],
               "deconv", kernel_shape=[2, 2], strides=[2, 2])
    macs += N * 16 * h * w * 8 * 4  # input elements * Cout * kh * kw
    h, w = h * 2, w * 2
    acts += N * 8 * h * w
    x = b.node("Relu", [x], "deconv_act")
    x = b.node("Conv", [x, b.weight("head.w", [4, 8, 1, 1]), b.weight("head.b", [4])], "head",
               kernel_shape=[1, 1])
    macs += N * 4 * h * w * 8
    acts += N * 4 * h * w
    b.node("Sigmoid", [x], "masks")
    m = b.model("detector",
                [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                               ["batch", 3, "height", "width"])],
                [helper.make_tensor_value_info("masks", TensorProto.FLOAT,
                                               ["batch", 4, "height", "width"])])
    expected = {"input_shape": "images=%dx3x%dx%d" % (N, H, W), "macs": macs, "params": b.params,
                "activations": acts, "output_shape": [N, 4, h, w]}
    return m, expected, {"images": [N, 3, H, W]}


def build_tiny_cnn():
    b = Builder(1)
    x = b.node("Conv", ["input", b.weight("conv.w", [4, 1, 3, 3]), b.weight("conv.b", [4])], "conv",
               kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = b.node("Relu", [x], "relu")
    x = b.node("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])
    x = b.node("Flatten", [x], "flat", axis=1)
    b.node("Gemm", [x, b.weight("fc.w", [10, 784]), b.weight("fc.b", [10])], "logits", transB=1)
    m = b.model("tiny_cnn",
                [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 28, 28])],
                [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])])
    expected = {"input_shape": "input=1x1x28x28", "macs": 4 * 28 * 28 * 9 + 10 * 784,
                "params": b.params, "activations": 4 * 28 * 28 + 10, "output_shape": [1, 10]}
    return m, expected, {"input": [1, 1, 28, 28]}


def check_runs(model, feeds, expected):
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.RandomState(0)
    out = sess.run(None, {k: rng.rand(*v).astype(np.float32) for k, v in feeds.items()})[0]
    if list(out.shape) != expected["output_shape"] or not np.all(np.isfinite(out)):
        sys.exit("onnxruntime output %s does not match %s" % (out.shape, expected["output_shape"]))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_test_models.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for name, build in (("detector", build_detector), ("tiny_cnn", build_tiny_cnn)):
        model, expected, feeds = build()
        check_runs(model, feeds, expected)
        path = os.path.join(outdir, name + ".onnx")
        onnx.save(model, path)
        with open(os.path.join(outdir, name + ".expected.json"), "w") as f:
            json.dump(expected, f, indent=1)
            f.write("\n")
        print("%s: %s" % (path, json.dumps(expected)))


if __name__ == "__main__":
    main()
