"""pyspacer 0.6-0.10's home of the extractor classes (now spacer.extractors)."""
from __future__ import annotations

from spacer import extractors
from spacer.warnings_once import warn_once

_MOVED = ('FeatureExtractor', 'EfficientNetExtractor', 'VGG16CaffeExtractor', 'DummyExtractor')


def __getattr__(name: str):
    if name in _MOVED:
        warn_once(f'spacer.extract_features.{name}', f'spacer.extractors.{name}')
        return getattr(extractors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(_MOVED)
