"""
A stand-in for CoralNet's side of the vision-backend queue, to run
``workers.coralnet_queue.CeleryQueue`` the way CoralNet would.

``BaseQueue`` has exactly the shape of CoralNet's abstract base class
(``vision_backend/queues.py``), ``SpacerJobSpec`` the values of its spec
levels (``config/constants.py``), and ``get_queue_class`` and
``collect_spacer_jobs`` do what CoralNet's do: import the class named by
the ``SPACER_QUEUE_CHOICE`` setting, and hand the collectable jobs to
``collect_jobs`` in batches of at most 100.
"""
from __future__ import annotations

import abc
import enum
import inspect
from collections import Counter

from django.conf import settings
from django.utils.module_loading import import_string
from spacer.messages import JobMsg, JobReturnMsg

COLLECT_BATCH = 100  # AWS Batch's describe_jobs takes at most 100 ids


class SpacerJobSpec(enum.Enum):
    MEDIUM = 'medium'
    HIGH = 'high'


class BaseQueue(abc.ABC):

    @abc.abstractmethod
    def submit_job(self, job: JobMsg, job_id: int, spec_level: SpacerJobSpec):
        raise NotImplementedError

    @abc.abstractmethod
    def get_collectable_jobs(self):
        raise NotImplementedError

    @abc.abstractmethod
    def collect_jobs(self, jobs: list) -> tuple[list[JobReturnMsg], list[str]]:
        raise NotImplementedError


def get_queue_class() -> type:
    return import_string(settings.SPACER_QUEUE_CHOICE)


def satisfies_base_queue(queue_class: type) -> bool:
    """Whether ``queue_class`` can stand in for a BaseQueue subclass: a class
    deriving from both has no abstract method left, and each of the three
    methods takes the same parameters, by the same names."""
    combined = type('Combined', (queue_class, BaseQueue), {})
    if combined.__abstractmethods__:
        return False
    for name in BaseQueue.__abstractmethods__:
        ours = list(inspect.signature(getattr(queue_class, name)).parameters)
        theirs = list(inspect.signature(getattr(BaseQueue, name)).parameters)
        if ours != theirs:
            return False
    return True


def collect_spacer_jobs(queue) -> tuple[list[JobReturnMsg], Counter]:
    """One round of CoralNet's periodic collection: every collectable job,
    at most 100 per collect_jobs call; the results and a count per status."""
    jobs = list(queue.get_collectable_jobs())
    results, statuses = [], Counter()
    for start in range(0, len(jobs), COLLECT_BATCH):
        batch_results, batch_statuses = queue.collect_jobs(jobs[start:start + COLLECT_BATCH])
        results.extend(batch_results)
        statuses.update(batch_statuses)
    return results, statuses
