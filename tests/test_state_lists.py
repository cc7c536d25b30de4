"""Each package's list of process-wide state (``spacer.process_state``,
``workers.worker_state``) names real attributes and every module-level
cache its package has."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.state_listing import module_level_caches

LISTS = ['spacer.process_state', 'workers.worker_state']


@pytest.mark.parametrize('list_module', LISTS)
def test_every_entry_names_a_real_attribute(list_module):
    for state in importlib.import_module(list_module).STATE:
        assert hasattr(importlib.import_module(state.module), state.attribute), state


@pytest.mark.parametrize('list_module', LISTS)
def test_every_module_level_cache_is_listed(list_module):
    listing = importlib.import_module(list_module)
    listed = {(s.module, s.attribute) for s in listing.STATE}
    assert module_level_caches(Path(listing.__file__).parent) - listed == set()
