"""The task table: every task declared once.

Routing, the Celery tasks, ``process_job`` and the main job's dispatch all
derive from ``TASKS``, so adding a task is one entry here (and its function
in ``spacer.tasks``, its message classes in ``spacer.messages``). Classes are
named, not imported, so a producer routes without loading the message code.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    ``name`` is pyspacer's task name and the name of its function in
    ``spacer.tasks``; ``message_class`` and ``return_class`` name classes of
    ``spacer.messages``; ``queue_kind`` is the kind of worker that runs it
    (``extract`` on GPU hosts, ``train`` and ``classify`` on CPU ones), whose
    queue and time limits the worker settings give; ``shape`` holds the keys
    that tell its JSON from the other tasks' (the first task, in table order,
    whose keys a message has is the one it is for); ``reports_epochs`` says
    whether its function takes an ``on_epoch`` progress callback;
    ``one_image`` whether its message holds one image's points and little
    else, so that its size is bounded by MAX_POINTS_PER_IMAGE."""
    name: str
    message_class: str
    return_class: str
    queue_kind: str
    shape: frozenset[str]
    reports_epochs: bool = False
    one_image: bool = False


QUEUE_KINDS = ('extract', 'train', 'classify')

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    TaskSpec('extract_features', 'ExtractFeaturesMsg', 'ExtractFeaturesReturnMsg', 'extract',
             frozenset({'extractor', 'image_loc', 'feature_loc'}), one_image=True),
    TaskSpec('train_classifier', 'TrainClassifierMsg', 'TrainClassifierReturnMsg', 'train',
             frozenset({'labels', 'model_loc'}), reports_epochs=True),
    TaskSpec('classify_features', 'ClassifyFeaturesMsg', 'ClassifyReturnMsg', 'classify',
             frozenset({'feature_loc', 'classifier_loc'})),
    TaskSpec('classify_image', 'ClassifyImageMsg', 'ClassifyReturnMsg', 'extract',
             frozenset({'extractor', 'image_loc', 'classifier_loc'}), one_image=True),
)}
TASK_NAMES = tuple(TASKS)

# pyspacer's task that runs a JobMsg's tasks; it goes where its tasks go.
JOB_TASK = 'process_job'
JOB_MESSAGE_CLASS = 'JobMsg'
JOB_SHAPE = frozenset({'task_name', 'tasks'})
