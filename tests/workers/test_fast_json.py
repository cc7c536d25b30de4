"""
workers.fast_json: orjson's text where it is exact, and ``NotPlainJSON``
(kombu's path) for every value or text on which orjson and kombu differ.
"""
from __future__ import annotations

import datetime
import enum
import math
import uuid
from decimal import Decimal

import pytest
from kombu.utils.json import dumps as kombu_dumps
from kombu.utils.json import loads as kombu_loads

from workers import fast_json


class Colour(enum.Enum):
    RED = 'red'


class Level(enum.IntEnum):
    HIGH = 3


PLAIN = [
    {'runtime': 0.0123, 'classes': [1, 2, 3], 'valid_rowcol': True,
     'scores': [[10, 20, [0.25, 0.75, 1e-300]], [11, 21, [-0.0, 1.0, 5e-324]]]},
    {'status': 'SUCCESS', 'result': None, 'traceback': None, 'children': [],
     'date_done': '2026-12-06T01:00:00+00:00', 'task_id': 'x'},
    [], {}, 'é \u2028 "quoted"', 0, -2 ** 53, 2 ** 59, 1.7976931348623157e308,
]


@pytest.mark.parametrize('value', PLAIN)
def test_plain_values_read_back_the_same_through_both_decoders(value):
    text = fast_json.dumps(value)
    assert fast_json.loads(text) == value
    assert kombu_loads(text) == value
    assert fast_json.loads(kombu_dumps(value)) == value


@pytest.mark.parametrize('value', [
    [math.nan], {'x': math.inf}, [-math.inf],      # kombu writes NaN, orjson null
    [uuid.UUID(int=1)], [Colour.RED],              # kombu tags or fails; orjson a string
    [datetime.datetime(2026, 1, 1)], [datetime.date(2026, 1, 1)],  # kombu tags them
    [Decimal('1.5')], [b'bytes'], {1: 'int key'},
    [2 ** 64], [(1, 2)],                              # beyond 64 bits; a tuple reads back a list
])
def test_values_orjson_would_write_differently_take_kombus_path(value):
    with pytest.raises(fast_json.NotPlainJSON):
        fast_json.dumps(value)


@pytest.mark.parametrize('value', [-2 ** 63, 2 ** 64 - 1])
def test_integers_of_19_digits_are_written_by_orjson_and_read_by_kombu(value):
    text = fast_json.dumps([value])
    assert kombu_loads(text) == [value]
    with pytest.raises(fast_json.NotPlainJSON):
        fast_json.loads(text)


def test_an_int_enum_is_written_as_kombu_writes_it():
    assert fast_json.dumps([Level.HIGH]) == kombu_dumps([Level.HIGH]).encode()


def test_long_fractions_are_read_by_orjson():
    """Small scores written positionally have long digit runs after the dot."""
    assert fast_json.loads(b'[0.00034123456789012343, -12.5e-300]') == [
        0.00034123456789012343, -12.5e-300]


@pytest.mark.parametrize('text', [
    kombu_dumps({'at': datetime.datetime(2026, 1, 1)}),  # a tagged type
    kombu_dumps({'id': uuid.UUID(int=7)}).encode(),
    '[NaN]', b'[Infinity]', '{"a": 1,}', b'\xff', '',
    '[18446744073709551616]', b'-12345678901234567890', '{"a": 1234567890123456789}',
])
def test_texts_orjson_would_read_differently_take_kombus_path(text):
    with pytest.raises(fast_json.NotPlainJSON):
        fast_json.loads(text)


def test_a_memoryview_is_read_like_its_bytes():
    assert fast_json.loads(memoryview(b'{"a": [1, 2.5]}')) == {'a': [1, 2.5]}
