#!/usr/bin/env bash
# Builds .venv-pyspacer: the real pyspacer 0.14.0 (from PyPI) beside torch
# 2.13.0 CPU, so benchmarks and fixture generators can run the reference
# implementation next to ours.
#
# Why by hand: pyspacer 0.14.0 pins torch<2.9 and torchvision<0.24, and a
# plain install pulls a multi-GB CUDA torch. It runs fine on torch 2.13.0,
# and all it uses of torchvision is transforms.Compose and ToTensor, so a
# small stand-in module (written below) replaces torchvision.
#
# Idempotent: a complete environment (stamp file present and the imports
# work) is left as it is. Usage: bash benchmarks/pyspacer_env.sh
# Run its python with -P (or from outside the repo root): otherwise this
# repository's spacer/ shadows pyspacer's, e.g.
#   .venv-pyspacer/bin/python -P -c "import spacer.tasks"
# Environment: PYTHON (interpreter to build from, default python3),
#              PYSPACER_VENV (target, default <repo>/.venv-pyspacer).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PYSPACER_VENV:-$ROOT/.venv-pyspacer}
PYTHON=${PYTHON:-python3}
PY=$VENV/bin/python
STAMP=$VENV/.pyspacer-env-complete

# -P: do not put the current directory on sys.path, so this repository's own
# spacer/ package (when run from the repo root) cannot shadow pyspacer's.
check_imports() {
    "$PY" -P -c "from spacer.extractors import EfficientNetExtractor; import spacer.tasks"
}

if [ -f "$STAMP" ] && [ -x "$PY" ] && check_imports 2>/dev/null; then
    echo "pyspacer side environment already complete: $VENV"
    exit 0
fi

echo "Building pyspacer side environment in $VENV"
test -x "$PY" || "$PYTHON" -m venv "$VENV"
"$PY" -m pip install --quiet --upgrade pip
# Pinned: an unpinned torch resolves to a multi-GB CUDA build.
"$PY" -m pip install --quiet torch==2.13.0
"$PY" -m pip install --quiet --no-deps pyspacer==0.14.0
# pyspacer's remaining requirements, minus torch and torchvision. pip then
# reports the torch/torchvision pins as conflicts: expected, and harmless.
"$PY" -m pip install --quiet 'numpy>=1.25,<2.4' 'scikit-learn==1.5.2' \
    'Pillow>=12.1.1' 'boto3>=1.26.115'

SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
mkdir -p "$SITE/torchvision"
cat > "$SITE/torchvision/__init__.py" <<'EOF'
"""Stand-in for torchvision in the pyspacer side environment.

pyspacer 0.14 only imports torchvision.transforms (Compose, ToTensor); the
real torchvision would drag in a torch build other than 2.13.0.
"""
from . import transforms  # noqa: F401

__version__ = "0.0.0+standin"
EOF
cat > "$SITE/torchvision/transforms.py" <<'EOF'
"""Compose and ToTensor, behaving as torchvision's do for pyspacer's use."""
import numpy as np
import torch


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, value):
        for transform in self.transforms:
            value = transform(value)
        return value


class ToTensor:
    """HWC image (PIL or ndarray) to a CHW float tensor; uint8 scaled by 1/255."""

    def __call__(self, picture):
        array = np.asarray(picture)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3:
            raise TypeError(f"ToTensor expects an HWC image, got shape {array.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
        if tensor.dtype == torch.uint8:
            return tensor.to(torch.float32).div(255)
        return tensor
EOF

# Verify: imports, then one real extraction with random EfficientNet weights
# built by pyspacer's own efficientnet module.
check_imports
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -P - "$WORK" <<'EOF'
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spacer.data_classes import DataLocation
from spacer.extractors import EfficientNetExtractor
from spacer.extractors.efficientnet import EfficientNet
from spacer.messages import ExtractFeaturesMsg
from spacer.storage import load_image  # noqa: F401  (import check)
from spacer.tasks import extract_features
from spacer.data_classes import ImageFeatures

work = Path(sys.argv[1])
torch.manual_seed(0)
net = EfficientNet.from_pretrained(model_name="efficientnet-b0", num_classes=1275)
torch.save({"net": net.state_dict()}, work / "weights.pt")
rng = np.random.default_rng(0)
Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(work / "img.jpg")

msg = ExtractFeaturesMsg(
    job_token="check",
    extractor=EfficientNetExtractor(data_locations=dict(
        weights=DataLocation("filesystem", str(work / "weights.pt")))),
    rowcols=[(10, 10), (150, 200), (299, 399)],
    image_loc=DataLocation("filesystem", str(work / "img.jpg")),
    feature_loc=DataLocation("filesystem", str(work / "feats.json")),
)
extract_features(msg)
feats = ImageFeatures.load(DataLocation("filesystem", str(work / "feats.json")))
assert len(feats.point_features) == 3, feats
assert len(feats.point_features[0].data) == 1280
print("pyspacer", __import__("importlib.metadata").metadata.version("pyspacer"),
      "extract_features OK: 3 points x", len(feats.point_features[0].data))
EOF

touch "$STAMP"
echo "pyspacer side environment ready: $VENV"
