"""DataLocation: where a piece of data lives (a URL, an S3 key, a file path or
a memory key), in pyspacer's JSON form."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlparse

from spacer.exceptions import InvalidMessageError, MessageArgumentError, MessageError
from spacer.serialization import DataClass, json_field
from spacer.storage.factory import STORAGE_TYPES


def _storage_type(value: object, *_context: str) -> str:
    if value not in STORAGE_TYPES:
        raise InvalidMessageError(
            f"Storage type {value!r} is not valid; expected one of"
            f" {', '.join(STORAGE_TYPES)}.")
    return value


def _key(value: object, *_context: str) -> str:
    if not isinstance(value, str):
        raise MessageError(f"DataLocation key must be a string, got {value!r}.")
    return value


@dataclasses.dataclass(eq=False, repr=False)
class DataLocation(DataClass):
    """Where a piece of data lives: a URL, an S3 key, a file path or a memory key."""

    # pyspacer built it with DataLocation(**data): a missing key is a TypeError.
    storage_type: str = json_field(check=_storage_type, missing=MessageArgumentError)
    key: str = json_field(check=_key, missing=MessageArgumentError)
    bucket_name: str | None = json_field(default=None)

    def check_together(self) -> None:
        if self.storage_type == 's3' and not self.bucket_name:
            raise InvalidMessageError(f"Need bucket_name to use s3 (key {self.key!r}).")
        if self.bucket_name is not None and not isinstance(self.bucket_name, str):
            raise MessageError(f"bucket_name must be a string, got {self.bucket_name!r}.")

    @classmethod
    def example(cls) -> DataLocation:
        return cls('memory', 'my_blob')

    @property
    def filename(self) -> str:
        path = self.key
        if self.storage_type == 'url':
            try:
                path = urlparse(self.key).path
            except ValueError:  # not a parseable URL: its last segment will do
                path = self.key.split('?', 1)[0]
        return Path(path).name

    @property
    def is_remote(self) -> bool:
        return self.storage_type in ('url', 's3')

    @property
    def is_writable(self) -> bool:
        return self.storage_type != 'url'

    @classmethod
    def deserialize(cls, data: dict) -> DataLocation:
        unknown = sorted(set(data) - {'storage_type', 'key', 'bucket_name'}) \
            if isinstance(data, dict) else []
        if unknown:  # pyspacer's DataLocation(**data) refused them too
            raise MessageArgumentError(f"DataLocation: unknown keys {unknown}.")
        return super().deserialize(data)

    def __eq__(self, other) -> bool:
        return (isinstance(other, DataLocation)
                and (self.storage_type, self.key, self.bucket_name)
                == (other.storage_type, other.key, other.bucket_name))

    def __hash__(self) -> int:
        return hash((self.storage_type, self.key, self.bucket_name))

    def __repr__(self) -> str:
        return (f"DataLocation({self.storage_type!r}, {self.key!r}"
                + (f", {self.bucket_name!r})" if self.bucket_name else ")"))
