"""A package of an install extra that is missing is named with its extra,
in one line, wherever a module imports it."""
from __future__ import annotations

import sys

import pytest

from spacer.extras import DISTRIBUTION, EXTRA_OF_PACKAGE, extra_imports


@pytest.mark.parametrize('package', sorted(EXTRA_OF_PACKAGE))
def test_a_missing_package_names_its_extra(package, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # import now fails as if absent
    with pytest.raises(ModuleNotFoundError) as raised:
        with extra_imports():
            __import__(package)
    extra = EXTRA_OF_PACKAGE[package]
    assert str(raised.value) == (f"No module named {package!r}: it comes with spacer's"
                                 f" {extra!r} extra (pip install '{DISTRIBUTION}[{extra}]').")


def test_a_package_of_no_extra_is_reported_as_python_reports_it(monkeypatch):
    monkeypatch.setitem(sys.modules, 'not_an_extra_package', None)
    with pytest.raises(ModuleNotFoundError, match='not_an_extra_package'):
        with extra_imports():
            import not_an_extra_package  # noqa: F401


def test_nvjpeg_decoding_without_the_gpu_extra_names_it(monkeypatch):
    from spacer.extractors.device_images import decode_jpeg_on_device
    for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, 'torchvision', None)
    with pytest.raises(ModuleNotFoundError, match=r"'gpu' extra \(pip install "
                                                  r"'coralnet-spacer\[gpu\]'\)"):
        decode_jpeg_on_device(b'\xff\xd8\xff\xd9', 'cpu')
