"""Our exceptions against the table recorded from the real pyspacer 0.14.

tests/fixtures/pyspacer/0.14.0/exception_cases.json lists broken JSON given
to each message and data class's deserialize, and the exception pyspacer
raised (recorder: tests/fixtures/pyspacer/record_exception_cases.py). Callers
written for pyspacer catch those built-in types, so ours must be an instance
of every built-in class in the MRO of pyspacer's, while staying ours.
"""
from __future__ import annotations

import builtins
import copy
import json
from pathlib import Path

import pytest

import spacer.data_classes
import spacer.messages
from spacer.exceptions import InvalidMessageError, SpacerError

TABLE = json.loads((Path(__file__).parents[1] / 'fixtures' / 'pyspacer' / '0.14.0'
                    / 'exception_cases.json').read_text())
CASES = {case['id']: case for case in TABLE['deserialize']}

# Where we differ on purpose: pyspacer raised, we accept.
LENIENT = {
    'TrainClassifierMsg-missing-feature_cache_dir':
        "pyspacer 0.7-0.12 JSON has no feature_cache_dir; ours defaults it to 'auto'.",
}
# pyspacer accepted, we refuse (with its type for that kind of check).
STRICTER = {
    'ExtractFeaturesMsg-second-rowcol-triple':
        'pyspacer checked only the first rowcol; a later bad one failed mid-task.',
    'ClassifyImageMsg-empty-rowcols':
        'pyspacer checked rowcols only in ExtractFeaturesMsg.',
}


def _deserialize(case: dict):
    name = case['target']
    cls = getattr(spacer.data_classes, name, None) or getattr(spacer.messages, name)
    return cls.deserialize(copy.deepcopy(case['input']))


def test_the_table_is_large_enough_and_covers_every_kind():
    kinds = {tuple(c['raised']['builtin_bases'][:1]) for c in CASES.values() if c['raised']}
    assert len(CASES) >= 15
    assert {('KeyError',), ('AssertionError',), ('ModuleNotFoundError',),
            ('AttributeError',), ('TypeError',)} <= kinds


@pytest.mark.parametrize('case_id', [i for i in CASES if i not in LENIENT | STRICTER])
def test_same_builtin_types_as_pyspacer(case_id):
    case = CASES[case_id]
    if case['raised'] is None:
        _deserialize(case)  # pyspacer accepted it: so do we
        return
    with pytest.raises(Exception) as caught:
        _deserialize(case)
    assert isinstance(caught.value, SpacerError), 'still our own class'
    for name in case['raised']['builtin_bases']:
        assert isinstance(caught.value, getattr(builtins, name)), (
            f"pyspacer raised {case['raised']['type']} (a {name}); ours is"
            f" {type(caught.value).__mro__}")


@pytest.mark.parametrize('case_id', sorted(LENIENT))
def test_lenient_on_purpose(case_id):
    assert CASES[case_id]['raised'] is not None
    _deserialize(CASES[case_id])


@pytest.mark.parametrize('case_id', sorted(STRICTER))
def test_stricter_on_purpose(case_id):
    assert CASES[case_id]['raised'] is None
    with pytest.raises(InvalidMessageError):  # an AssertionError, as pyspacer's checks
        _deserialize(CASES[case_id])


def test_key_errors_keep_our_message_unquoted():
    with pytest.raises(KeyError) as caught:
        _deserialize(CASES['JobMsg-missing-tasks'])
    assert str(caught.value) == "JobMsg: missing key 'tasks'."


def test_context_is_added_without_losing_the_type():
    with pytest.raises(TypeError, match=r"^ExtractFeaturesMsg\.image_loc: DataLocation"):
        _deserialize(CASES['ExtractFeaturesMsg-image_loc-missing-key'])
    with pytest.raises(KeyError, match=r"^JobMsg\.tasks\[0\]: ClassifyImageMsg"):
        _deserialize(CASES['JobMsg-task-missing-rowcols'])


@pytest.mark.parametrize('case_id', [i for i, c in CASES.items() if c['raised']
                                     and i not in LENIENT])
def test_workers_still_treat_them_as_bad_input(case_id):
    failures = pytest.importorskip('workers.failure_kinds')
    with pytest.raises(Exception) as caught:
        _deserialize(CASES[case_id])
    assert failures.classify(caught.value) is failures.Failure.INPUT
