# A model file is untrusted: truncated, bit-flipped and hostile models must give exactly one line on
# stderr starting with "flopcut:", a nonzero exit, no sanitizer report, within seconds.
# Run: python3 -m pytest -q tests/py/test_bad_input.py  (FLOPCUT_BIN: build/flopcut; `make test`
# runs it with the ASan+UBSan build). Also replays the fuzzer's regression inputs (tests/fuzz/).
import glob
import os
import random
import subprocess
import tempfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("FLOPCUT_BIN", "build/flopcut"))
REGRESSIONS = sorted(glob.glob(os.path.join(ROOT, "tests", "fuzz", "regressions", "*")))
TIMEOUT = 10  # seconds; the ASan build is slower than release, every case here takes well under 1 s
SANITIZER_MARKS = ("Sanitizer", "runtime error:", "==ERROR", "LeakSanitizer", "SUMMARY:")


def run(path, *extra):
    if not os.path.exists(BIN):
        pytest.fail("flopcut binary not found at %s (build it or set FLOPCUT_BIN)" % BIN)
    return subprocess.run([BIN, "profile", path, "--format", "json", *extra], capture_output=True,
                          text=True, errors="replace", timeout=TIMEOUT)


def assert_no_sanitizer(p):
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, "sanitizer report:\n" + p.stderr


def assert_one_line_error(p, *needles):
    """Nonzero exit, exactly one stderr line starting 'flopcut:' that contains every needle."""
    assert_no_sanitizer(p)
    assert p.returncode != 0, "accepted a bad model: " + p.stdout[:300]
    lines = p.stderr.splitlines()
    assert len(lines) == 1, "expected one line on stderr, got:\n" + p.stderr
    assert lines[0].startswith("flopcut: "), lines[0]
    for needle in needles:
        assert needle in lines[0], "%r not in %r" % (needle, lines[0])
    return lines[0]


def assert_clean(p):
    """Either a proper profile (exit 0, silent stderr) or a proper one-line error."""
    assert_no_sanitizer(p)
    if p.returncode == 0:
        assert p.stderr == "", p.stderr
    else:
        assert_one_line_error(p)


def save(model, directory, name="m.onnx"):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString() if hasattr(model, "SerializeToString") else model)
    return path


def make_model(nodes, inputs, outputs, inits=(), sparse=(), opset=13):
    g = oh.make_graph(nodes, "bad", inputs, outputs, initializer=list(inits), sparse_initializer=list(sparse))
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, dims, dtype=TP.FLOAT):
    return oh.make_tensor_value_info(name, dtype, dims)


def small_cnn():
    """Conv → Relu → GlobalAveragePool → Flatten → Gemm, about 2 KB: the base for cut and flip tests."""
    rng = np.random.RandomState(0)
    inits = [numpy_helper.from_array(rng.standard_normal([4, 3, 3, 3]).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal([4]).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal([5, 4]).astype(np.float32), "fc")]
    nodes = [oh.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c"], ["r"], name="relu"),
             oh.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             oh.make_node("Flatten", ["p"], ["f"], name="flatten"),
             oh.make_node("Gemm", ["f", "fc"], ["y"], name="gemm", transB=1)]
    return make_model(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 5])], inits)


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory() as d:
        yield d


def test_small_cnn_is_fine(tmp):
    """The base model of the cut/flip tests profiles cleanly (otherwise those tests prove nothing)."""
    p = run(save(small_cnn(), tmp))
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_missing_file(tmp):
    assert_one_line_error(run(os.path.join(tmp, "nope.onnx")), "nope.onnx")


def test_directory_instead_of_file(tmp):
    assert_one_line_error(run(tmp), tmp)


def test_empty_file(tmp):
    assert_one_line_error(run(save(b"", tmp)), "m.onnx")


def test_not_a_protobuf(tmp):
    assert_one_line_error(run(save(b"\xff" * 64 + b"this is not ONNX", tmp)))


@pytest.mark.parametrize("cut", [1, 7, 0.1, 0.25, 0.5, 0.75, 0.9, -1])
def test_truncated_model(tmp, cut):
    data = small_cnn().SerializeToString()
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut > 0 else len(data) + cut)
    assert_one_line_error(run(save(data[:n], tmp)))


def test_random_bit_flips(tmp):
    """50 variants with 1-4 flipped bits (fixed seed): a flip may land in a weight and leave a
    valid model, so each run must be either a clean profile or a clean one-line error."""
    data = small_cnn().SerializeToString()
    rng = random.Random(2)
    errors = 0
    for k in range(50):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        p = run(save(bytes(b), tmp, "flip%d.onnx" % k))
        assert_clean(p)
        errors += p.returncode != 0
    assert errors > 0  # the flips do reach the checks


def test_huge_dims_in_initializer(tmp):
    t = TP(name="w", data_type=TP.FLOAT, dims=[1 << 40, 1 << 40])  # no data: a few bytes on disk
    m = make_model([oh.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [t])
    assert_one_line_error(run(save(m, tmp)), "'w'", "too large")


def test_dims_without_data(tmp):
    """1 G floats declared, none stored: refused before anything is allocated."""
    t = TP(name="w", data_type=TP.FLOAT, dims=[1 << 15, 1 << 15])
    m = make_model([oh.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [t])
    assert_one_line_error(run(save(m, tmp)), "'w'")


def test_huge_dims_in_graph_input(tmp):
    m = make_model([oh.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [1 << 40, 1 << 40])], [vi("y", None)])
    assert_one_line_error(run(save(m, tmp)), "'x'", "too large")


def test_negative_gather_index(tmp):
    idx = numpy_helper.from_array(np.array([0, -9], np.int64), "idx")
    m = make_model([oh.make_node("Gather", ["x", "idx"], ["y"], name="gather", axis=1)], [vi("x", [2, 4])],
                   [vi("y", None)], [idx])
    assert_one_line_error(run(save(m, tmp)), "'gather'", "-9")


def test_cycle(tmp):
    nodes = [oh.make_node("Neg", ["b"], ["y"], name="after"), oh.make_node("Add", ["x", "b"], ["a"], name="add"),
             oh.make_node("Relu", ["a"], ["b"], name="relu")]
    line = assert_one_line_error(run(save(make_model(nodes, [vi("x", [2])], [vi("y", None)]), tmp)), "cycle")
    assert "'add'" in line or "'relu'" in line  # a node on the cycle, not the one downstream of it


def test_node_reads_undefined_value(tmp):
    m = make_model([oh.make_node("Add", ["x", "nowhere"], ["y"], name="add")], [vi("x", [2])], [vi("y", None)])
    assert_one_line_error(run(save(m, tmp)), "'add'", "'nowhere'")


def test_wrong_element_types(tmp):
    k = numpy_helper.from_array(np.array([1, 2], np.int64), "k")
    m = make_model([oh.make_node("Add", ["x", "k"], ["y"], name="add")], [vi("x", [2])], [vi("y", None)], [k])
    assert_one_line_error(run(save(m, tmp)), "'add'", "int64")


def test_wrong_element_type_for_shape(tmp):
    s = numpy_helper.from_array(np.array([4.0], np.float32), "s")
    m = make_model([oh.make_node("Reshape", ["x", "s"], ["y"], name="reshape")], [vi("x", [2, 2])],
                   [vi("y", None)], [s])
    assert_one_line_error(run(save(m, tmp)), "'reshape'", "integer")


def test_reshape_to_impossible_shape(tmp):
    s = numpy_helper.from_array(np.array([3, -1], np.int64), "s")
    m = make_model([oh.make_node("Reshape", ["x", "s"], ["y"], name="reshape")], [vi("x", [2, 5])],
                   [vi("y", None)], [s])
    assert_one_line_error(run(save(m, tmp)), "'reshape'")


def test_concat_rank_mismatch(tmp):
    m = make_model([oh.make_node("Concat", ["a", "b"], ["y"], name="concat", axis=0)],
                   [vi("a", [2, 3]), vi("b", [2, 3, 1])], [vi("y", None)])
    assert_one_line_error(run(save(m, tmp)), "'concat'", "rank")


def test_dynamic_dim_not_fixed(tmp):
    """A 10-deep chain on an input with a dynamic batch: the error names the input and says how to fix it."""
    nodes, prev = [], "x"
    for i in range(10):
        nodes.append(oh.make_node("Relu", [prev], ["t%d" % i], name="relu%d" % i))
        prev = "t%d" % i
    m = make_model(nodes, [vi("x", ["batch", 16])], [vi(prev, None)])
    path = save(m, tmp)
    assert_one_line_error(run(path), "'x'", "--input-shape x=")
    p = run(path, "--input-shape", "x=2x16")
    assert p.returncode == 0, p.stderr


def external_model(location):
    t = TP(name="w", data_type=TP.FLOAT, dims=[4], data_location=TP.EXTERNAL)
    t.external_data.add(key="location", value=location)
    return make_model([oh.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [4])], [vi("y", None)], [t])


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/passwd", "sub/../../outside.bin"])
def test_external_data_outside_folder(tmp, location):
    d = os.path.join(tmp, "model")
    os.makedirs(d)
    with open(os.path.join(tmp, "outside.bin"), "wb") as f:
        f.write(b"\0" * 16)
    assert_one_line_error(run(save(external_model(location), d)), "'w'", "leaves the model's folder")


def test_external_data_missing_file(tmp):
    assert_one_line_error(run(save(external_model("weights.bin"), tmp)), "'w'", "weights.bin")


def test_external_data_too_short(tmp):
    with open(os.path.join(tmp, "weights.bin"), "wb") as f:
        f.write(b"\0" * 8)  # 4 floats need 16 bytes
    assert_one_line_error(run(save(external_model("weights.bin"), tmp)), "'w'", "shorter")


def test_external_data_ok(tmp):
    with open(os.path.join(tmp, "weights.bin"), "wb") as f:
        f.write(np.arange(4, dtype=np.float32).tobytes())
    p = run(save(external_model("weights.bin"), tmp))
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("indices", [[1, 100], [-1, 2]])
def test_sparse_initializer_out_of_range(tmp, indices):
    values = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "w")
    idx = numpy_helper.from_array(np.array(indices, np.int64), "w_idx")
    sp = oh.make_sparse_tensor(values, idx, [4])
    m = make_model([oh.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [4])], [vi("y", None)],
                   sparse=[sp])
    assert_one_line_error(run(save(m, tmp)), "'w'", "out of range")


def test_sparse_initializer_too_large_dense(tmp):
    """Two values claiming a 4 GB dense tensor (legal size, absurd for a 200-byte file): refused by the
    densify budget before anything is allocated; 64 G elements are refused as too large outright."""
    values = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "w")
    idx = numpy_helper.from_array(np.array([0, 1], np.int64), "w_idx")
    for dims, needle in (([1 << 15, 1 << 15], "would expand"), ([1 << 18, 1 << 18], "too large")):
        sp = oh.make_sparse_tensor(values, idx, dims)
        m = make_model([oh.make_node("Relu", ["w"], ["y"], name="relu")], [], [vi("y", None)], sparse=[sp])
        assert_one_line_error(run(save(m, tmp)), "'w'", needle)


def test_absurd_attribute_values(tmp):
    w = numpy_helper.from_array(np.ones([2, 2, 1, 1], np.float32), "w")
    m = make_model([oh.make_node("Conv", ["x", "w"], ["y"], name="conv", group=1 << 62)],
                   [vi("x", [1, 2, 4, 4])], [vi("y", None)], [w])
    assert_one_line_error(run(save(m, tmp)), "'conv'")
    m = make_model([oh.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[1 << 40, 1])],
                   [vi("x", [1, 2, 4, 4])], [vi("y", None)])
    assert_one_line_error(run(save(m, tmp)), "'pool'", "kernel_shape")


def test_control_characters_in_names_stay_one_line(tmp):
    m = make_model([oh.make_node("Add", ["x", "no\nwhere"], ["y"], name="add\nnode")], [vi("x", [2])],
                   [vi("y", None)])
    assert_one_line_error(run(save(m, tmp)), "no?where")


def field(tag, payload):
    """One length-delimited protobuf field."""
    n, size = len(payload), bytearray()
    while True:
        size.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes([tag]) + bytes(size) + payload


def test_deeply_nested_protobuf(tmp):
    """Graph → node → attribute → subgraph → ... 5000 deep: refused before protobuf-c recurses."""
    graph = b""
    for _ in range(5000):  # GraphProto.node(1) → NodeProto.attribute(5) → AttributeProto.g(6)
        graph = field(0x0A, field(0x2A, field(0x32, graph)))
    assert_one_line_error(run(save(field(0x3A, graph), tmp)), "nest")


@pytest.mark.parametrize("path", REGRESSIONS, ids=[os.path.basename(p) for p in REGRESSIONS])
def test_fuzz_regressions(path):
    """Every input the fuzzer once crashed on (tests/fuzz/regressions/) now profiles or fails cleanly."""
    assert_clean(run(path))
