# Export randomly initialised torchvision reference models to ONNX (opset 13).
# Usage: /usr/bin/python3 tools/export_models.py OUTDIR [--force] [names...]
import argparse
import os
import sys
import tempfile

import torch
import torchvision

ALL = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large",
       "efficientnet_b0", "squeezenet1_1", "vit_b_16"]


def export(name, outdir, force):
    path = os.path.join(outdir, name + ".onnx")
    if os.path.exists(path) and not force:
        print("%s: cached %s" % (name, path), flush=True)
        return
    torch.manual_seed(0)  # per model, so results do not depend on order
    net = getattr(torchvision.models, name)().eval()  # random init, no download
    x = torch.randn(1, 3, 224, 224)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=outdir)
    os.close(fd)
    try:
        # No torch.no_grad(): with grad disabled, torch 1.13 routes nn.MultiheadAttention
        # (ViT) to aten::_native_multi_head_attention, which has no ONNX export.
        torch.onnx.export(net, x, tmp, opset_version=13,
                          input_names=["input"], output_names=["output"])
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print("%s: wrote %s (%d bytes)" % (name, path, os.path.getsize(path)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("outdir")
    ap.add_argument("names", nargs="*", default=ALL)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    bad = [n for n in a.names if n not in ALL]
    if bad:
        sys.exit("unknown model(s): %s (known: %s)" % (" ".join(bad), " ".join(ALL)))
    os.makedirs(a.outdir, exist_ok=True)
    for n in a.names:
        export(n, a.outdir, a.force)


if __name__ == "__main__":
    main()
