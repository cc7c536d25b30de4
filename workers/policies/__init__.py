"""
What a worker does when a task fails, one policy per module:

- ``failures``: tells bad input (fail fast, no retry) from a transient fault
  (retry) from anything else (our own fault: fail, keep the message);
- ``retries``: exponential backoff with a cap;
- ``dead_letters``: messages that ended in failure for a reason other than
  bad input, kept in a Redis list for an operator;
- ``dedup``: one run at a time per job token.

``workers.task_base.SpacerTask`` applies them around every task;
``install()`` hooks the parts that must also see failures the task body
never saw (hard time limits, lost pool processes) on Celery's signals.
"""
from __future__ import annotations

from workers.policies import dead_letters, dedup


def install() -> None:
    dead_letters.install()
    dedup.install()
