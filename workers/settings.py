"""
The distributed layer's settings, read through ``spacer.config``.

Names the library already knows (BROKER_URL, RESULT_BACKEND, QUEUE_*,
DEVICE) come from ``config.get``; the worker-only names below are read the
same way pyspacer reads any setting (``SPACER_<NAME>`` environment variable,
``secrets.json``, Django's ``settings.SPACER``), so one place configures
everything.

Time limits and the visibility timeout, and why these numbers
--------------------------------------------------------------
Each queue has a soft limit (the task gets ``SoftTimeLimitExceeded`` and can
clean up) and a hard limit (the process running it is killed) ``grace``
seconds later:

=========  ==========  ==========  ==================================
queue      soft (s)    hard (s)    why
=========  ==========  ==========  ==================================
extract    900         960         one image, up to 1000 points; a CPU
                                   worker needs ~30 s for 1000 patches
classify   120         180         one feature file and one
                                   predict_proba: milliseconds
train      10800       10860       the largest CoralNet sources train
                                   in well under an hour; 3 h is a
                                   wide margin
=========  ==========  ==========  ==================================

With Redis as the broker an unacknowledged message (acks are late, so every
running task's message is unacknowledged) goes back to its queue once it
has been out for ``visibility_timeout`` seconds. The unacked index is one
per Redis database, and every consumer restores any message older than its
own timeout, so the timeout must exceed the longest hard limit of any queue
(the train queue's): otherwise a training job still running would be handed
to a second worker. The default is that limit plus one hour (14460 s, about
4 h). A whole worker host that dies is noticed sooner, by its heartbeat
(``workers.liveness``, ``DEAD_WORKER_AFTER``); a dead pool process is
requeued at once. RabbitMQ has no visibility timeout but closes a channel
whose delivery stays unacknowledged past its ``consumer_timeout`` (30 min by
default): raise that above the train hard limit on the RabbitMQ server.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spacer import config
from spacer.exceptions import ConfigError
from workers import celery_conf, signing

QUEUE_KINDS = ('extract', 'train', 'classify')

# Tasks whose message holds one image's points and little else.
POINT_BOUNDED_TASKS = ('extract_features', 'classify_image')

# The settings only the worker layer reads. Their types and defaults are
# those of the one table in spacer.config (which documents them); they are
# re-read from their sources on every load().
_WORKER_POLICY_NAMES = (
    'EXTRACT_TIME_LIMIT', 'TRAIN_TIME_LIMIT', 'CLASSIFY_TIME_LIMIT',
    'TIME_LIMIT_GRACE', 'VISIBILITY_TIMEOUT', 'UNACKED_RESTORE_INTERVAL',
    'RETRY_MAX', 'RETRY_BACKOFF', 'RETRY_BACKOFF_MAX', 'DEDUP_TTL', 'DEAD_WORKER_AFTER',
    'MAX_MESSAGE_BYTES',
    'DEAD_LETTER_MAX', 'RESULT_EXPIRES', 'WORKER_CONCURRENCY',
)
WORKER_SETTINGS: tuple[tuple[str, type, Any], ...] = tuple(
    (name, config.SETTINGS_BY_NAME[name].type, config.SETTINGS_BY_NAME[name].default)
    for name in _WORKER_POLICY_NAMES)

_WORKER_NAMES = {name for name, _, _ in WORKER_SETTINGS}


def read(name: str, value_type: type = str, default: Any = None) -> Any:
    """One setting. The worker-policy names are re-read from their sources on
    every call (a test or an operator may change the environment before
    ``load()``); the library's own names come through ``config.get``."""
    if name in getattr(config, 'SETTINGS_BY_NAME', {}) and name not in _WORKER_NAMES:
        return config.get(name)
    return config.get_config_value(name, value_type, default)


@dataclass(frozen=True)
class WorkerSettings:
    broker_url: str | None
    result_backend: str | None
    queues: dict[str, str]  # kind -> queue name
    soft_limits: dict[str, int]  # kind -> seconds
    grace: int
    visibility_timeout: int
    unacked_restore_interval: int
    retry_max: int
    retry_backoff: int
    retry_backoff_max: int
    dedup_ttl: int
    dead_worker_after: int
    max_message_bytes: int
    dead_letter_max: int
    result_expires: int
    concurrency: int
    # Key, certificate and trusted store of signed messages (workers.signing);
    # None: plain JSON.
    signing: Any = None

    @property
    def embedded(self) -> bool:
        """No broker configured: tasks run in an in-process worker."""
        return not self.broker_url or self.broker_url.startswith('memory://')

    def broker_and_backend(self) -> tuple[str, str]:
        """The URLs the app connects to: the in-memory ones when embedded."""
        if self.embedded:
            return 'memory://localhost/', self.result_backend or 'cache+memory://'
        broker, backend = self.broker_url, self.result_backend
        if not backend:
            # Redis can hold results too; other brokers need RESULT_BACKEND for
            # results to be readable from another process than the sender.
            backend = broker if broker.startswith(('redis://', 'rediss://')) else 'rpc://'
        return broker, backend

    def hard_limit(self, kind: str) -> int:
        return self.soft_limits[kind] + self.grace

    def limits(self, kind: str) -> tuple[int, int]:
        """(soft, hard) seconds for a queue kind."""
        return self.soft_limits[kind], self.hard_limit(kind)

    def message_byte_limit(self, task_name: str) -> int:
        """The largest message of ``task_name`` a worker decodes. One image's
        points are bounded (MAX_POINTS_PER_IMAGE), so its messages are too:
        a hostile list of a million points is refused before it is decoded
        into hundreds of megabytes."""
        if task_name.rsplit('.', 1)[-1] in POINT_BOUNDED_TASKS:
            points = config.get('MAX_POINTS_PER_IMAGE')
            return min(self.max_message_bytes, 64 * 1024 + 64 * points)
        return self.max_message_bytes

    def kind_of_queue(self, queue: str) -> str | None:
        for kind, name in self.queues.items():
            if name == queue:
                return kind
        return None


def load() -> WorkerSettings:
    """Read every setting now (call again after changing the environment)."""
    # Each value is already within its bounds (spacer.config's table); what
    # is checked here is how they combine.
    values = {name: read(name, t, d) for name, t, d in WORKER_SETTINGS}
    soft = {kind: values[f'{kind.upper()}_TIME_LIMIT'] for kind in QUEUE_KINDS}
    grace = values['TIME_LIMIT_GRACE']
    longest_hard = max(soft.values()) + grace
    visibility = values['VISIBILITY_TIMEOUT']
    if visibility is None:
        visibility = longest_hard + 3600
    elif visibility <= longest_hard:
        raise ConfigError(
            f"VISIBILITY_TIMEOUT ({visibility} s) must exceed the longest hard time "
            f"limit ({longest_hard} s), or a task still running is delivered again.")
    queues = {kind: read(f'QUEUE_{kind.upper()}', str, kind) for kind in QUEUE_KINDS}
    if len(set(queues.values())) != len(queues):
        raise ConfigError(f"Queue names must differ: {queues}.")
    # spacer's own names first; Celery's only when spacer names no broker
    # (workers.celery_conf).
    broker, backend = read('BROKER_URL'), read('RESULT_BACKEND')
    if not broker:
        broker = celery_conf.standard_url('BROKER_URL')[0]
        backend = backend or celery_conf.standard_url('RESULT_BACKEND')[0]
    return WorkerSettings(
        broker_url=broker or None,
        result_backend=backend or None,
        queues=queues,
        soft_limits=soft,
        grace=grace,
        visibility_timeout=visibility,
        unacked_restore_interval=values['UNACKED_RESTORE_INTERVAL'],
        retry_max=values['RETRY_MAX'],
        retry_backoff=values['RETRY_BACKOFF'],
        retry_backoff_max=values['RETRY_BACKOFF_MAX'],
        # A job key never outlives the message it guards.
        dedup_ttl=min(values['DEDUP_TTL'], visibility),
        dead_worker_after=values['DEAD_WORKER_AFTER'],
        max_message_bytes=values['MAX_MESSAGE_BYTES'],
        dead_letter_max=values['DEAD_LETTER_MAX'],
        result_expires=values['RESULT_EXPIRES'],
        concurrency=values['WORKER_CONCURRENCY'],
        signing=signing.configured(),
    )
