"""The one generic serialize/deserialize (spacer.serialization) and the
layering it allows: messages read extractors and trainers through their
interfaces, never importing the concrete classes."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from spacer.exceptions import MessageArgumentError, MessageError, MissingKeyError
from spacer.serialization import DataClass, json_field


def _positive(value, owner, field):
    if not isinstance(value, int) or value < 1:
        raise MessageError(f"{owner}: {field} must be positive, not {value!r}.")
    return value


@dataclasses.dataclass(eq=False, repr=False)
class Declared(DataClass):
    count: int = json_field(check=_positive)
    names: tuple = json_field(key='name_list', to_json=list,
                              from_json=lambda value, owner, key: tuple(value))
    note: str = json_field(default='none')


@dataclasses.dataclass(eq=False, repr=False)
class Plain(DataClass):
    a: int
    b: int


def test_a_declared_class_writes_its_keys_in_order_and_reads_them_back():
    obj = Declared(2, ('x', 'y'))
    assert list(obj.serialize()) == ['count', 'name_list', 'note']
    assert obj.serialize() == {'count': 2, 'name_list': ['x', 'y'], 'note': 'none'}
    assert Declared.deserialize(json.loads(json.dumps(obj.serialize()))) == obj


def test_checks_run_when_built_from_python_or_from_json():
    with pytest.raises(MessageError, match='Declared: count must be positive, not 0'):
        Declared(0, ())
    with pytest.raises(MessageError, match='Declared: count must be positive, not -1'):
        Declared.deserialize({'count': -1, 'name_list': []})


def test_a_missing_key_names_the_class_and_key_and_optional_ones_default():
    with pytest.raises(MissingKeyError, match="Declared: missing key 'name_list'"):
        Declared.deserialize({'count': 1})
    assert Declared.deserialize({'count': 1, 'name_list': []}).note == 'none'
    with pytest.raises(MessageError, match='expected a JSON object, got list'):
        Declared.deserialize([])


def test_a_class_without_declarations_keeps_pyspacers_plain_form():
    assert Plain(1, 2).serialize() == {'a': 1, 'b': 2}
    assert Plain.deserialize({'a': 1, 'b': 2}) == Plain(1, 2)
    with pytest.raises(MessageArgumentError, match='unexpected keyword argument'):
        Plain.deserialize({'a': 1, 'b': 2, 'c': 3})


def test_reading_messages_imports_no_concrete_extractor_or_trainer():
    code = (
        "import sys\n"
        "import spacer.messages, spacer.data_classes, spacer.legacy\n"
        "loaded = [m for m in ('spacer.extractors', 'spacer.train_classifier', 'torch',"
        " 'sklearn') if m in sys.modules]\n"
        "print(loaded)\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == '[]'
