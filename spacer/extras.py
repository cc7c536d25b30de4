"""
Which install extra brings which package, said where it is missing.

The base install (``pip install coralnet-spacer``) is a producer's: it
submits messages and reads results. Extraction, training and storage need
the ``worker`` extra, the main job's report the ``report`` extra, nvJPEG
decoding on GPU hosts the ``gpu`` extra. A module that needs them imports
them inside ``extra_imports()``, so importing it without the extra fails
with one line naming the extra, not a bare "No module named 'torch'".
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

DISTRIBUTION = 'coralnet-spacer'

# Top-level import name -> the extra that installs it.
EXTRA_OF_PACKAGE = {
    'torch': 'worker',
    'sklearn': 'worker',
    'scipy': 'worker',
    'boto3': 'worker',
    'botocore': 'worker',
    'onnx': 'worker',
    'onnxruntime': 'worker',
    'numba': 'worker',
    'tqdm': 'worker',
    'prometheus_client': 'worker',
    'matplotlib': 'report',
    'torchvision': 'gpu',
}


@contextmanager
def extra_imports() -> Iterator[None]:
    """Imports of an extra's packages: a missing one names its extra."""
    try:
        yield
    except ModuleNotFoundError as e:
        root = (e.name or '').split('.')[0]
        extra = EXTRA_OF_PACKAGE.get(root)
        if extra is None:
            raise
        raise ModuleNotFoundError(
            f"No module named {root!r}: it comes with spacer's {extra!r} extra"
            f" (pip install '{DISTRIBUTION}[{extra}]').", name=root) from None
