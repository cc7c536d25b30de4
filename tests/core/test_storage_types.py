"""One list of storage types: the backend table of spacer.storage.factory.
DataLocation checks against it; pyspacer's config.STORAGE_TYPES (config
cannot import storage, which reads config) must say the same."""
from __future__ import annotations

from spacer import config, data_classes
from spacer.storage import factory


def test_every_name_for_the_storage_types_is_the_backend_table():
    assert factory.STORAGE_TYPES == ('s3', 'filesystem', 'memory', 'url')
    assert data_classes.STORAGE_TYPES is factory.STORAGE_TYPES
    assert list(config.STORAGE_TYPES) == list(factory.STORAGE_TYPES)


def test_storage_for_is_storage_factory_of_the_location():
    loc = data_classes.DataLocation('memory', 'k')
    assert factory.storage_for(loc) is factory.storage_factory('memory')
