"""Shared inputs of the legacy-API tests: EfficientNet weights and the
release scenario's files made once per session, and a fresh once-per-process
warning registry where a test counts warnings."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.legacy import scenario


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


@pytest.fixture(scope='session')
def base(tmp_path_factory, weights_state) -> Path:
    """The files the release messages name (tests only read them)."""
    directory = tmp_path_factory.mktemp('scenario')
    scenario.build(directory, weights_state)
    return directory
