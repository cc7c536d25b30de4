"""The task table declares each task once; every entry is complete."""
from __future__ import annotations

import inspect

import pytest

from spacer import messages, tasks
from spacer.task_table import QUEUE_KINDS, TASKS


@pytest.mark.parametrize('name', sorted(TASKS))
def test_each_task_has_its_function_and_message_classes(name):
    spec = TASKS[name]
    function = getattr(tasks, name)
    assert callable(function)
    assert ('on_epoch' in inspect.signature(function).parameters) == spec.reports_epochs
    assert messages.task_message_class(name).__name__ == spec.message_class
    assert messages.return_message_class(name).__name__ == spec.return_class
    assert spec.queue_kind in QUEUE_KINDS


@pytest.mark.parametrize('name', sorted(TASKS))
def test_each_message_has_its_own_shape(name):
    """A message's JSON carries its task's shape keys, and no earlier entry's
    shape, so that JSON sent without a task name finds its task."""
    keys = set(messages.task_message_class(name).example().serialize())
    assert TASKS[name].shape <= keys
    earlier = list(TASKS)[:list(TASKS).index(name)]
    assert not [other for other in earlier if TASKS[other].shape <= keys]


def test_an_unknown_task_is_refused_naming_the_known_ones():
    from spacer.exceptions import InvalidMessageError
    with pytest.raises(InvalidMessageError, match='expected one of extract_features'):
        messages.task_message_class('resize_image')
