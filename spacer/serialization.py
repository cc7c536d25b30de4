"""The JSON forms of spacer's data classes and messages, declared once per class.

A class is a dataclass whose fields say how each value is checked (when the
object is built, from Python or from JSON), written to JSON and read back:

    @dataclasses.dataclass(eq=False, repr=False)
    class ClassifyFeaturesMsg(DataClass):
        job_token: str = json_field(check=fields.job_token)
        feature_loc: DataLocation = json_field(
            check=fields.location, to_json=fields.serialized,
            from_json=fields.location_from_json)

``DataClass.serialize`` writes the fields in declaration order under their
JSON keys; ``deserialize`` reads each key (a missing one is an error that
names the class and the key) and builds the object, whose checks then run,
followed by ``check_together`` for checks across fields.
A class that declares no JSON fields keeps pyspacer's plain form:
``serialize()`` is its ``__dict__`` and ``deserialize(data)`` is
``cls(**data)``.
"""
from __future__ import annotations

import dataclasses
import json
from io import BytesIO
from pprint import pformat
from typing import Any, Callable

from spacer.content_free import describe, without_content
from spacer.exceptions import MessageArgumentError, MessageError, MissingKeyError
from spacer.storage.factory import storage_for

# check(value, owner, field name) -> the value to keep, or a MessageError.
Check = Callable[[Any, str, str], Any]
# from_json(json value, owner, JSON key) -> the value to pass the constructor.
FromJson = Callable[[Any, str, str], Any]
ToJson = Callable[[Any], Any]


def _same(value: Any, *_context: str) -> Any:
    return value


@dataclasses.dataclass(frozen=True)
class JsonField:
    """How one field is checked and carried in JSON."""
    key: str | None = None            # the JSON key; None: the field's name
    check: Check = _same
    to_json: ToJson = _same
    from_json: FromJson = _same
    required: bool = True             # whether JSON must hold the key
    missing: type[MessageError] = MissingKeyError


def json_field(*, key: str | None = None, check: Check = _same, to_json: ToJson = _same,
               from_json: FromJson = _same, default: Any = dataclasses.MISSING,
               missing: type[MessageError] = MissingKeyError) -> Any:
    """A dataclass field with its JSON declaration; a field with a default
    may be absent from JSON."""
    spec = JsonField(key, check, to_json, from_json,
                     required=default is dataclasses.MISSING, missing=missing)
    return dataclasses.field(default=default, metadata={'json': spec})


def json_fields(cls: type) -> tuple[tuple[str, str, JsonField], ...]:
    """(attribute, JSON key, declaration) of each declared field, in order;
    worked out once per class and kept on it."""
    found = cls.__dict__.get('_json_fields')
    if found is None:
        found = tuple((f.name, f.metadata['json'].key or f.name, f.metadata['json'])
                      for f in dataclasses.fields(cls) if 'json' in f.metadata) \
            if dataclasses.is_dataclass(cls) else ()
        cls._json_fields = found
    return found


def require(data: Any, key: str, owner: str,
            missing: type[MessageError] = MissingKeyError) -> Any:
    """data[key], or an error that names the owner and the key: by default
    a MissingKeyError (a KeyError, as pyspacer's data[key] raised); classes
    pyspacer built with cls(**data) pass MessageArgumentError (TypeError)."""
    if not isinstance(data, dict):
        raise MessageError(f"{owner}: expected a JSON object, got {type(data).__name__}.")
    try:
        return data[key]
    except KeyError:
        raise missing(f"{owner}: missing key {key!r}.") from None


def _in_order(declared: tuple, first: tuple[str, ...]) -> tuple:
    """declared, the fields named in ``first`` first (in that order)."""
    if not first:
        return declared
    rank = {name: i for i, name in enumerate(first)}
    return tuple(sorted(declared, key=lambda item: rank.get(item[0], len(first))))


def check_fields(obj: Any) -> None:
    """Run each declared field's check, keeping what it returns."""
    cls = type(obj)
    owner = cls.__name__
    for name, _key, spec in _in_order(json_fields(cls), cls.CHECK_FIRST):
        if spec.check is not _same:
            setattr(obj, name, spec.check(getattr(obj, name), owner, name))


def fields_to_json(obj: Any) -> dict:
    return {key: spec.to_json(getattr(obj, name))
            for name, key, spec in json_fields(type(obj))}


def fields_from_json(cls: type, data: Any) -> dict:
    """The constructor's keyword arguments from JSON (keys it does not
    declare are ignored, as pyspacer's message classes did)."""
    owner = cls.__name__
    if not isinstance(data, dict):
        raise MessageError(f"{owner}: expected a JSON object, got {type(data).__name__}.")
    kwargs = {}
    for name, key, spec in _in_order(json_fields(cls), cls.READ_FIRST):
        if key not in data and not spec.required:
            continue
        kwargs[name] = spec.from_json(require(data, key, owner, spec.missing), owner, key)
    return kwargs


class DataClass:
    """JSON (de)serialization, storage round trips, equality by value."""

    # Fields checked (CHECK_FIRST) or read from JSON (READ_FIRST) before the
    # others, where pyspacer's order differs from the JSON's: when several
    # are wrong, the error is about the same one as before.
    CHECK_FIRST: tuple[str, ...] = ()
    READ_FIRST: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_fields(self)
        self.check_together()

    def check_together(self) -> None:
        """Checks that involve several fields (after each field's own)."""

    @classmethod
    def load(cls, loc):
        raw = storage_for(loc).load(loc.key).getvalue()
        try:
            data = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as e:
            raise MessageError(f"{cls.__name__} at {loc.key}: not valid JSON"
                               f" ({describe(e)}).") from without_content(e)
        try:
            return cls.deserialize(data)
        except MessageError as e:  # its text may quote the file's fields
            raise type(e)(f"{cls.__name__} at {loc.key}: the file does not hold a"
                          f" {cls.__name__} ({describe(e)}).") from without_content(e)

    def store(self, loc) -> None:
        storage_for(loc).store(loc.key, BytesIO(json.dumps(self.serialize()).encode('utf-8')))

    @classmethod
    def example(cls):
        raise NotImplementedError

    @classmethod
    def deserialize(cls, data: dict):
        if json_fields(cls):
            return cls(**fields_from_json(cls, data))
        if not isinstance(data, dict):
            raise MessageError(
                f"{cls.__name__}: expected a JSON object, got {type(data).__name__}.")
        try:
            return cls(**data)
        except TypeError as e:  # a missing or unknown field, as pyspacer's cls(**data)
            raise MessageArgumentError(f"{cls.__name__}: {e}") from e

    def serialize(self) -> dict:
        if json_fields(type(self)):
            return fields_to_json(self)
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return pformat(vars(self))

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__
