# flopcut eval against PyTorch: on the committed 200-image Fashion-MNIST slice the embedded model
# must score exactly what PyTorch measured (models/fashion_cnn.json), whatever the batch size, file
# format or layout; bad inputs give one clear line. With Debian's dataset-fashion-mnist installed,
# the full 10,000-image test set must match PyTorch to 0.05 pt.
# Run: python3 -m pytest -q tests/py/test_eval.py  (FLOPCUT_BIN: build/flopcut by default; the
# full-set check uses FLOPCUT_RELEASE_BIN, default build/flopcut)
import gzip
import json
import os
import struct
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("FLOPCUT_BIN", "build/flopcut"))
# The full test set (75 GMAC) runs on the release build: the sanitizer build takes minutes for it.
RELEASE_BIN = os.path.join(ROOT, os.environ.get("FLOPCUT_RELEASE_BIN", "build/flopcut"))
MODEL = os.path.join(ROOT, "models", "fashion_cnn.onnx")
INFO = json.load(open(os.path.join(ROOT, "models", "fashion_cnn.json")))
IMAGES = os.path.join(ROOT, "tests", "data", "fashion-200-images-idx3-ubyte.gz")
LABELS = os.path.join(ROOT, "tests", "data", "fashion-200-labels-idx1-ubyte.gz")
FULL = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    data = gzip.open(path).read()
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(dims)


def flopcut_eval(*args, images=IMAGES, labels=LABELS, model=MODEL, check=True, timeout=120, binary=BIN):
    cmd = [binary, "eval", model, "--images", images, "--labels", labels, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if "json" in args else p.stdout
    return p


def test_slice_matches_pytorch():
    want = INFO["test_first_200"]
    r = flopcut_eval("--format", "json")
    assert r["n"] == 200
    assert r["top1_correct"] == want["top1_correct"]
    assert r["top5_correct"] == want["top5_correct"]
    for key in ("top1", "top5", "n", "images_per_s"):
        assert key in r
    assert r["top1"] == pytest.approx(want["top1"], abs=1e-6)


@pytest.mark.parametrize("batch", ["1", "7", "64", "200", "1000"])
def test_batch_sizes_agree(batch):
    # 7 leaves a partial last batch (zero-padded); 1000 is capped at the 200 images
    r = flopcut_eval("--format", "json", "--batch", batch, "--threads", "1")
    assert r["top1_correct"] == INFO["test_first_200"]["top1_correct"]
    assert r["batch"] == min(int(batch), 200)


def test_limit_and_table(tmp_path):
    r = flopcut_eval("--format", "json", "--limit", "50")
    assert r["n"] == 50
    out = flopcut_eval("--limit", "50")
    assert "top-1" in out and "images/s" in out and "/ 50)" in out


def test_npy_inputs(tmp_path):
    x = read_idx(IMAGES)
    y = read_idx(LABELS)
    want = INFO["test_first_200"]["top1_correct"]
    cases = {
        "u8_nhw.npy": x,
        "f32_nchw.npy": (x.astype(np.float32) / 255.0)[:, None],
        "u8_nhwc.npy": x[:, :, :, None],
    }
    np.save(tmp_path / "labels.npy", y.astype(np.int64))
    for name, arr in cases.items():
        np.save(tmp_path / name, arr)
        r = flopcut_eval("--format", "json", images=str(tmp_path / name), labels=str(tmp_path / "labels.npy"))
        assert r["top1_correct"] == want, name
    # the same pixels scaled by hand: --scale 1 on float input, and mean/std that cancel out
    r = flopcut_eval("--format", "json", "--scale", "0.5", "--mean", "0", "--std", "0.5",
                     images=str(tmp_path / "f32_nchw.npy"), labels=str(tmp_path / "labels.npy"))
    assert r["top1_correct"] == want


def one_line_error(p, *needles):
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flopcut: "), p.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_errors(tmp_path):
    one_line_error(flopcut_eval(images=str(tmp_path / "missing.gz"), check=False), "missing.gz")
    np.save(tmp_path / "few.npy", np.zeros(10, np.int64))
    one_line_error(flopcut_eval(labels=str(tmp_path / "few.npy"), check=False), "10 labels for 200 images")
    np.save(tmp_path / "big.npy", np.full(200, 10, np.int64))
    one_line_error(flopcut_eval(labels=str(tmp_path / "big.npy"), check=False), "outside the model's 10 classes")
    np.save(tmp_path / "rgb.npy", np.zeros((4, 3, 28, 28), np.uint8))
    np.save(tmp_path / "l4.npy", np.zeros(4, np.int64))
    one_line_error(flopcut_eval(images=str(tmp_path / "rgb.npy"), labels=str(tmp_path / "l4.npy"), check=False),
                   "rgb.npy", "4x3x28x28")
    one_line_error(flopcut_eval("--layout", "nhcw", check=False), "--layout")
    one_line_error(flopcut_eval("--batch", "0", check=False), "--batch")
    one_line_error(flopcut_eval("--mean", "0", "0", check=False), "--mean has 2 values")
    p = subprocess.run([BIN, "eval", MODEL], capture_output=True, text=True)
    assert p.returncode == 2 and "usage: flopcut eval" in p.stderr


@pytest.mark.skipif(not os.path.exists(os.path.join(FULL, "t10k-images-idx3-ubyte.gz")),
                    reason="Debian dataset-fashion-mnist not installed")
def test_full_test_set_matches_pytorch():
    r = flopcut_eval("--format", "json", "--batch", "100",
                     images=os.path.join(FULL, "t10k-images-idx3-ubyte.gz"),
                     labels=os.path.join(FULL, "t10k-labels-idx1-ubyte.gz"), timeout=600,
                     binary=RELEASE_BIN if os.path.exists(RELEASE_BIN) else BIN)
    assert r["n"] == 10000
    assert abs(r["top1"] - INFO["test"]["top1"]) <= 0.0005
    assert abs(r["top5"] - INFO["test"]["top5"]) <= 0.0005
