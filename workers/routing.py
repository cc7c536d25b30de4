"""
Which queue each task goes to.

Queues are split by the kind of machine that should run them: ``extract``
(GPU hosts: extract_features, classify_image), ``train`` (CPU, long) and
``classify`` (CPU, short). ``spacer.process_job`` carries a ``JobMsg`` and
goes where its ``task_name`` goes. Importing this module imports neither
torch nor the task code, so producers can route.
"""
from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from spacer.exceptions import MessageError
from spacer.task_table import JOB_MESSAGE_CLASS, JOB_SHAPE, JOB_TASK, TASKS
from workers.settings import WorkerSettings

# pyspacer task name -> queue kind.
KIND_OF_TASK = {name: spec.queue_kind for name, spec in TASKS.items()}
PREFIX = 'spacer.'
PROCESS_JOB = PREFIX + JOB_TASK
TASK_NAMES = tuple(PREFIX + name for name in TASKS) + (PROCESS_JOB,)


def full_name(task_name: str) -> str:
    """'extract_features' or 'spacer.extract_features' -> the Celery name."""
    if not isinstance(task_name, str):
        raise TypeError(f"A task name must be a string, not {type(task_name).__name__}.")
    name = task_name if task_name.startswith(PREFIX) else PREFIX + task_name
    if name not in TASK_NAMES:
        raise ValueError(
            f"Unknown task {task_name!r}; expected one of "
            f"{', '.join(n[len(PREFIX):] for n in TASK_NAMES)}.")
    return name


def kind_for(task_name: str, message: dict | None = None) -> str:
    """The queue kind of a task; for process_job, of its JobMsg's task_name."""
    name = full_name(task_name)
    if name == PROCESS_JOB:
        if not isinstance(message, dict) or 'task_name' not in message:
            raise MessageError("A process_job message must be a JobMsg with a 'task_name'.")
        inner = message['task_name']
        if not isinstance(inner, str) or inner not in KIND_OF_TASK:
            raise MessageError(
                f"JobMsg task_name {inner!r} is not one of {', '.join(KIND_OF_TASK)}.")
        return KIND_OF_TASK[inner]
    return KIND_OF_TASK[name[len(PREFIX):]]


def check_job_tasks(task_name: str, message: Any) -> None:
    """Refuse, before sending, a JobMsg whose tasks cannot be task messages
    (the worker would refuse it too, a round trip later)."""
    if full_name(task_name) != PROCESS_JOB or not isinstance(message, dict):
        return
    tasks = message.get('tasks')
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise MessageError("A JobMsg's 'tasks' must be a list of task messages"
                           f" (JSON objects), got {tasks!r:.60}.")


def queue_for(task_name: str, message: dict | None, settings: WorkerSettings) -> str:
    return settings.queues[kind_for(task_name, message)]


def declare_queues(settings: WorkerSettings) -> tuple[Queue, ...]:
    """
    One direct exchange and routing key per queue: a bare ``Queue(name)``
    can end up bound to another queue's exchange (see facts.md).
    """
    return tuple(
        Queue(name, Exchange(name, type='direct'), routing_key=name)
        for name in settings.queues.values())


class Router:
    """Celery router, for callers that use ``send_task`` without a queue."""

    def __init__(self, settings: WorkerSettings):
        self.settings = settings

    def __call__(self, name: str, args: Any, kwargs: Any, options: dict,
                 task: Any = None, **_: Any) -> dict | None:
        if name not in TASK_NAMES:
            return None
        message = args[0] if args else (kwargs or {}).get('message')
        try:
            queue = queue_for(name, message, self.settings)
        except MessageError:
            # Let the worker answer the malformed JobMsg with an error result.
            queue = self.settings.queues['extract']
        return {'queue': queue, 'exchange': queue, 'routing_key': queue}


# Message class name -> task name, for callers that pass message objects.
TASK_OF_MESSAGE_CLASS = {spec.message_class: name for name, spec in TASKS.items()}
TASK_OF_MESSAGE_CLASS[JOB_MESSAGE_CLASS] = JOB_TASK


def task_name_for(message: Any) -> str:
    """
    The task a message is for, from its class or, for JSON, its shape
    (``spacer.task_table``): a JobMsg has task_name and tasks; the others
    differ in their locations.
    """
    cls_name = type(message).__name__
    if cls_name in TASK_OF_MESSAGE_CLASS:
        return PREFIX + TASK_OF_MESSAGE_CLASS[cls_name]
    if not isinstance(message, dict):
        raise MessageError(f"Cannot tell which task a {cls_name} is for.")
    keys = set(message)
    if JOB_SHAPE <= keys:
        return PROCESS_JOB
    for name, spec in TASKS.items():
        if spec.shape <= keys:
            return PREFIX + name
    raise MessageError(
        "Cannot tell which task this message is for; its keys "
        f"({', '.join(sorted(keys)) or 'none'}) match no spacer message. Name the task.")
