"""
The distributed layer's settings.

Names producers and workers share (BROKER_URL, RESULT_BACKEND, QUEUE_*,
DEVICE, ...) are in ``spacer.config``'s table and come from ``config.get``;
the worker-only names (``WORKER_SETTING_TABLE`` below: time limits,
retries, dedup, dead letters, metrics endpoint, ...) are declared here and
read the same way pyspacer reads any setting (``SPACER_<NAME>`` environment
variable, ``secrets.json``, Django's ``settings.SPACER``), so one place
configures everything.

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
from spacer.config import Setting
from spacer.exceptions import ConfigError
from spacer.task_table import QUEUE_KINDS, TASKS
from workers import celery_conf, signing

# The settings only workers read, documented here (and in the README's
# worker table) rather than in spacer.config, whose table is the library's.
# Each is read like any spacer setting (SPACER_<NAME>, secrets.json,
# Django's settings.SPACER), held to its bounds, and re-read on every read()
# (a test or an operator may change the environment before load()).
WORKER_SETTING_TABLE: tuple[Setting, ...] = (
    Setting('EXTRACT_TIME_LIMIT', int, 900, 'soft time limit of extract-queue tasks (s)',
            minimum=1),
    Setting('TRAIN_TIME_LIMIT', int, 10800, 'soft time limit of train-queue tasks (s)',
            minimum=1),
    Setting('CLASSIFY_TIME_LIMIT', int, 120, 'soft time limit of classify-queue tasks (s)',
            minimum=1),
    Setting('TIME_LIMIT_GRACE', int, 60, 'hard limit = soft limit + this (s)', minimum=0),
    Setting('VISIBILITY_TIMEOUT', int, None,
            'Redis redelivery timeout (s); unset = longest hard limit + 1 h; must exceed it',
            minimum=1),
    Setting('MAX_MESSAGE_BYTES', int, 64 * 1024 * 1024,
            'largest task message a worker decodes (extract_features and classify_image:'
            ' what MAX_POINTS_PER_IMAGE points need, far less)', minimum=1024),
    Setting('DEAD_WORKER_AFTER', int, 60,
            'seconds without a heartbeat after which a worker counts as dead and its'
            ' tasks go back to their queues (Redis brokers)', minimum=5),
    Setting('UNACKED_RESTORE_INTERVAL', int, 10, 'how often unacked messages are checked (s)',
            minimum=1),
    Setting('RETRY_MAX', int, 5, 'retries of a transient fault before dead-lettering',
            minimum=0),
    Setting('RETRY_BACKOFF', int, 2, 'first retry delay (s), doubled each time', minimum=0),
    Setting('RETRY_BACKOFF_MAX', int, 300, 'cap of the retry delay (s)', minimum=0),
    Setting('DEDUP_TTL', int, 14400, 'how long a job token blocks a duplicate submission (s);'
            ' never longer than the visibility timeout',
            minimum=1),
    Setting('DEAD_LETTER_MAX', int, 10000, 'dead letters kept in Redis', minimum=1),
    Setting('RESULT_EXPIRES', int, 86400,
            'how long results stay in the backend (s); 0 = they never expire', minimum=0),
    Setting('WORKER_CONCURRENCY', int, 0,
            'pool processes per worker; 0 = chosen per queue kind', minimum=0),
    Setting('METRICS_PORT', int, 0,
            'port of the per-worker Prometheus endpoint; 0 = off', minimum=0, maximum=65535),
    Setting('METRICS_ADDR', str, '127.0.0.1',
            'address the Prometheus endpoint binds (0.0.0.0: every interface)'),
    Setting('UNCONFINED', bool, False,
            'let a worker start without FILESYSTEM_ROOTS (`spacer worker --unconfined`):'
            ' messages may then read and write any path its user can'),
)
WORKER_SETTINGS_BY_NAME = {setting.name: setting for setting in WORKER_SETTING_TABLE}
# (name, type, default) of each, for readers that need no more.
WORKER_SETTINGS: tuple[tuple[str, type, Any], ...] = tuple(
    (setting.name, setting.type, setting.default) for setting in WORKER_SETTING_TABLE)


def read(name: str, value_type: type = str, default: Any = None) -> Any:
    """One setting: a worker setting from its sources, now, within its
    bounds (ConfigError naming it otherwise); the library's own names
    through ``config.get``; any other name as pyspacer reads it."""
    setting = WORKER_SETTINGS_BY_NAME.get(name)
    if setting is not None:
        return config.read_setting(setting)
    if name in config.SETTINGS_BY_NAME:
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
        spec = TASKS.get(task_name.rsplit('.', 1)[-1])
        if spec is not None and spec.one_image:
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
    # Each value is already within its bounds (WORKER_SETTING_TABLE); what
    # is checked here is how they combine.
    values = {name: read(name) for name, _, _ in WORKER_SETTINGS}
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
