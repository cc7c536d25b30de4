"""Send the main job's tasks through the queue and get their return messages.

The producer client (`workers.client`) picks the embedded in-process worker
when no broker is configured and the fleet when `SPACER_BROKER_URL` is set;
this module only submits, waits, and turns the JSON that comes back into
pyspacer return messages.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Iterator, Protocol

from spacer.messages import return_message_class
from workers import client as producer_client
from workers import control, routing
from workers.errors import BrokerUnavailableError

WAIT_TICK = 0.5   # seconds between on_wait calls while a task runs
CONSUMERS_TIMEOUT = 2.0  # seconds the live workers have to say which queues they consume
CONSUMERS_RECHECK = 30.0  # seconds between looks at the consumers while tasks wait


class Dispatcher(Protocol):
    def run_all(self, task_name: str, messages: Iterable[Any]
                ) -> Iterator[Any]:
        """Submit every message, then yield each one's return message (or
        the exception it failed with), in the order given."""

    def run_one(self, task_name: str, message: Any,
                on_wait: Callable[[dict | None], None] | None = None) -> Any:
        """Submit one message and return its return message; raise on
        failure. `on_wait(progress)` is called now and then while the task
        runs, with what the task last reported (a training: `{'epoch',
        'epochs', 'ref_acc'}`) or None."""


def _as_return_message(task_name: str, result: Any) -> Any:
    if isinstance(result, dict):
        return return_message_class(task_name).deserialize(result)
    return result


class QueueDispatcher:
    """Runs tasks through `workers.client` (embedded worker or fleet)."""

    def __init__(self, client: Any = None, timeout: float | None = None):
        self.client = producer_client if client is None else client
        self.timeout = timeout
        self._unconsumed: set[str] = set()  # queues warned about, still without a worker
        self._checked_at: dict[str, float] = {}

    def _client_object(self) -> Any:
        client = self.client
        if not hasattr(client, 'settings'):  # the module: its default client
            client = client.default_client()
        return client

    @property
    def runs_here(self) -> bool:
        """Whether tasks run in this process (the embedded worker)."""
        return bool(self._client_object().settings.embedded)

    def _submit(self, task_name: str, message: Any) -> str:
        task_id = self.client.submit(task_name, message)
        self._watch_consumers(task_name, force=task_name not in self._checked_at)
        return task_id

    def _watch_consumers(self, task_name: str, force: bool = False) -> None:
        """Warn when no live worker consumes the queue of ``task_name``:
        at its first submit, then every CONSUMERS_RECHECK seconds while its
        tasks wait (the last worker may die mid-job). Once per loss: the
        warning comes again only after a worker has consumed it since."""
        client = self._client_object()
        if client.settings.embedded:
            return
        now = time.monotonic()
        if not force and now - self._checked_at.get(task_name, now) < CONSUMERS_RECHECK:
            return
        self._checked_at[task_name] = now
        kind = routing.kind_for(task_name)
        queue = client.settings.queues[kind]
        try:
            consumed = control.consumers(client.app, CONSUMERS_TIMEOUT).get(queue)
        except Exception:  # noqa: BLE001 - cannot tell; waiting reports broker faults
            return
        if consumed:
            self._unconsumed.discard(queue)
        elif queue not in self._unconsumed:
            self._unconsumed.add(queue)
            print(f"spacer: warning: no live worker consumes the {queue!r} queue; its"
                  f" tasks wait until one starts (spacer worker --queues {kind}).",
                  file=sys.stderr, flush=True)

    def _wait(self, task_name: str, task_id: str,
              on_wait: Callable[[dict | None], None] | None = None) -> Any:
        """The task's return message, waiting in ticks: between them the
        consumers are watched and ``on_wait`` hears the task's progress."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                return _as_return_message(task_name, self.client.wait(task_id, WAIT_TICK))
            except TimeoutError:
                if deadline is not None and time.monotonic() > deadline:
                    raise
            self._watch_consumers(task_name)
            if on_wait is not None:
                on_wait(self._progress(task_id))

    def _progress(self, task_id: str) -> dict | None:
        """What the task last reported, from one read; None while the
        result backend cannot be reached (the wait goes on through that)."""
        try:
            return self.client.peek([task_id])[task_id].progress
        except BrokerUnavailableError:
            return None

    def run_all(self, task_name: str, messages: Iterable[Any]
                ) -> Iterator[Any]:
        ids = [self._submit(task_name, message) for message in messages]
        for task_id in ids:
            try:
                yield self._wait(task_name, task_id)
            except Exception as err:    # a failed task is a result here
                yield err

    def run_one(self, task_name: str, message: Any,
                on_wait: Callable[[dict | None], None] | None = None) -> Any:
        return self._wait(task_name, self._submit(task_name, message), on_wait)
