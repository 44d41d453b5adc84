# End-to-end checks of `flopcut profile` totals against hand-computed and reference counts.
# Run: python3 -m pytest tests/py  (FLOPCUT_BIN overrides build/flopcut; FLOPCUT_SLOW=1 exports models)
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("FLOPCUT_BIN", "build/flopcut"))
MODELS = os.path.join(ROOT, "build", "models")
SLOW = os.environ.get("FLOPCUT_SLOW") == "1"
TORCH_PYTHON = os.environ.get("FLOPCUT_TORCH_PYTHON", "/usr/bin/python3")

# torchvision 0.14, torch.manual_seed(0), opset 13, input 1x3x224x224 (tools/export_models.py).
# params: float initializers counted once per tensor (the exporter shares identical tensors via
# Identity); rank-0 float Constant nodes are not params. None = not checked exactly.
REFERENCE = {
    "resnet18": (1814073344, 11680872, 2484712),
    "resnet50": (4089184256, 25507944, 11114984),
    "mobilenet_v2": (300774272, 3475008, 6679112),
    "mobilenet_v3_large": (216589760, 5457176, 4407168),
    "efficientnet_b0": (385814752, 5242196, 6748036),
    "squeezenet1_1": (349151936, 1233288, 2589352),
    "vit_b_16": (17563828224, None, 23895544),
}


def run(*args, timeout=900):
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def profile(model, *extra):
    if not os.path.exists(BIN):
        pytest.fail("flopcut binary not found at %s (build it or set FLOPCUT_BIN)" % BIN)
    p = run(BIN, "profile", model, *extra, "--format", "json")
    assert p.returncode == 0, "flopcut failed (%d): %s" % (p.returncode, p.stderr)
    return json.loads(p.stdout)


def shape_arg(expected):
    return ["--input-shape", expected["input_shape"]]


def assert_totals(report, macs, params, activations):
    t = report["totals"]
    assert t["macs"] == macs
    if params is not None:
        assert t["params"] == params
    assert t["activations"] == activations


def assert_concrete_nodes(report):
    assert report["nodes"], "no nodes reported"
    for n in report["nodes"]:
        shapes = n["output_shapes"]
        assert isinstance(shapes, list) and shapes, n
        for s in shapes:
            assert isinstance(s, list) and all(isinstance(d, int) and d >= 0 for d in s), n
    t = report["totals"]
    assert sum(n["macs"] for n in report["nodes"]) == t["macs"]
    assert sum(n["activations"] for n in report["nodes"]) == t["activations"]


@pytest.fixture(scope="session")
def test_models(tmp_path_factory):
    out = tmp_path_factory.mktemp("testmodels")
    p = run(sys.executable, os.path.join(ROOT, "tools", "make_test_models.py"), str(out))
    assert p.returncode == 0, p.stderr

    def get(name):
        with open(out / (name + ".expected.json")) as f:
            return str(out / (name + ".onnx")), json.load(f)
    return get


@pytest.mark.parametrize("name", ["detector", "tiny_cnn"])
def test_oracle_matches_expected(test_models, name):
    """The independent python counter agrees with the hand-computed expectations."""
    model, exp = test_models(name)
    p = run(sys.executable, os.path.join(ROOT, "tools", "count_reference.py"), model,
            *shape_arg(exp), "--json", "--check-ort")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert (got["macs"], got["params"], got["activations"], got["output_shape"]) == \
        (exp["macs"], exp["params"], exp["activations"], exp["output_shape"])


def test_detector_totals(test_models):
    model, exp = test_models("detector")
    r = profile(model, *shape_arg(exp))
    assert_totals(r, exp["macs"], exp["params"], exp["activations"])
    assert r["unsupported"] == []
    assert r["inputs"] == [{"name": "images", "shape": [1, 3, 64, 64]}]
    assert_concrete_nodes(r)
    last = [n for n in r["nodes"] if n["op_type"] == "Sigmoid"][-1]
    assert last["output_shapes"] == [exp["output_shape"]]


def test_detector_requires_input_shape(test_models):
    model, _ = test_models("detector")
    if not os.path.exists(BIN):
        pytest.fail("flopcut binary not found at %s" % BIN)
    p = run(BIN, "profile", model, "--format", "json")
    assert p.returncode != 0
    msg = p.stderr.strip()
    assert msg and "\n" not in msg, "expected a one-line error, got: %r" % p.stderr
    assert "images" in msg


@pytest.mark.parametrize("with_shape", [False, True])
def test_tiny_cnn_totals(test_models, with_shape):
    model, exp = test_models("tiny_cnn")
    r = profile(model, *(shape_arg(exp) if with_shape else []))
    assert_totals(r, exp["macs"], exp["params"], exp["activations"])
    assert r["unsupported"] == []
    assert_concrete_nodes(r)


def reference_model(name):
    """Path to an exported reference model; exports it when FLOPCUT_SLOW=1, else skips."""
    path = os.path.join(MODELS, name + ".onnx")
    if not os.path.exists(path):
        if not SLOW:
            pytest.skip("slow: set FLOPCUT_SLOW=1 or run tools/export_models.py build/models")
        p = run(TORCH_PYTHON, os.path.join(ROOT, "tools", "export_models.py"), MODELS, name)
        assert p.returncode == 0, p.stderr
    return path


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_model(name):
    r = profile(reference_model(name))
    assert_totals(r, *REFERENCE[name])
    assert r["unsupported"] == []


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_oracle(name):
    """The python oracle reproduces the reference table on the exported files."""
    p = run(sys.executable, os.path.join(ROOT, "tools", "count_reference.py"),
            reference_model(name), "--json")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    macs, params, acts = REFERENCE[name]
    assert (got["macs"], got["activations"]) == (macs, acts)
    if params is not None:
        assert got["params"] == params
