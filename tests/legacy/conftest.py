"""Shared inputs of the legacy-API tests: EfficientNet weights made once per
session, and a fresh once-per-process warning registry for each test."""
from __future__ import annotations

import pytest


@pytest.fixture(scope='session')
def weights_state() -> dict:
    """EfficientNet-B0 weights with BatchNorm statistics fitted on generated
    textures, so features differ from point to point (a bare random network
    gives near-zero, identical features)."""
    from spacer.extractors.default_weights import build_default_state_dict
    return build_default_state_dict(seed=0, n_patches=32)


@pytest.fixture
def fresh_legacy_warnings():
    """Each old form warns once per process: forget which ones already did."""
    from spacer import legacy
    legacy.reset_warnings()
    yield
    legacy.reset_warnings()
