"""
Celery's Redis result backend, storing a task's state in one round trip.

Celery reads a task's stored result before each state write (STARTED,
SUCCESS, PROGRESS...) so that a late write never overwrites a success, then
sets and publishes the new state: two round trips, and the read is not
atomic with the write. Here one Lua script does the check and the write
together. The stored value, its expiry and the message published to
waiting clients are Celery's own, so every Celery client reads them as
usual. Results that are not JSON take Celery's own path.

JSON results are encoded and decoded with orjson where that is exact
(``workers.fast_json``), and with kombu's JSON otherwise.
"""
from __future__ import annotations

from typing import Any

from celery import states
from celery.backends.redis import RedisBackend
from celery.exceptions import BackendStoreError
from kombu.utils.encoding import bytes_to_str

from workers import fast_json
from workers.redis_scripts import queue_script

# KEYS[1]: the task's result key. ARGV: the encoded meta, its expiry in
# seconds (0: none). Returns 0 when a success is stored already.
_STORE_UNLESS_SUCCEEDED = """
local current = redis.call('GET', KEYS[1])
if current then
    local ok, meta = pcall(cjson.decode, current)
    if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then return 0 end
end
if tonumber(ARGV[2]) > 0 then
    redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
else
    redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""

# STARTED, stored by the first delivery of each attempt only. KEYS[2]: the
# task's attempt key; ARGV[3]: the attempt (retries so far), ARGV[4]: '1'
# for a message given back to its queue (redelivered). Returns -1, writing
# nothing, for a second copy of a message whose attempt has started: a
# publish that reached Redis twice (its reply was lost and the send was
# retried). A redelivered message starts its attempt anew: its first
# delivery ended without finishing (its worker died or lost the broker).
_START_ATTEMPT = """
local started = redis.call('GET', KEYS[2])
if started and tonumber(started) >= tonumber(ARGV[3]) and ARGV[4] ~= '1' then return -1 end
if tonumber(ARGV[2]) > 0 then
    redis.call('SETEX', KEYS[2], ARGV[2], ARGV[3])
else
    redis.call('SET', KEYS[2], ARGV[3])
end
""" + _STORE_UNLESS_SUCCEEDED

ATTEMPT_PREFIX = 'spacer:attempt:'
# Replies of _START_ATTEMPT that mean this message must not run.
DUPLICATE, SUCCEEDED_ALREADY = -1, 0


class RedisResultBackend(RedisBackend):
    """``redis://`` and ``rediss://`` result backends of spacer's app."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._store_script = self.client.register_script(_STORE_UNLESS_SUCCEEDED)
        self._start_script = self.client.register_script(_START_ATTEMPT)

    def _store_result(self, task_id: str, result: Any, state: str, traceback: Any = None,
                      request: Any = None, **kwargs: Any) -> Any:
        if self.serializer != 'json':
            return super()._store_result(task_id, result, state, traceback=traceback,
                                         request=request, **kwargs)
        key, value, seconds = self._state_write(task_id, result, state, traceback, request)
        self.ensure(self._store_now, (key, value, seconds))
        return result

    def _store_now(self, key: Any, value: Any, seconds: int) -> None:
        self._store_script(keys=[key], args=[value, seconds], client=self.client)

    def queue_start(self, pipe: Any, request: Any, started: Any) -> bool:
        """Add the STARTED write of ``request``'s attempt to a pipeline of a
        client of this backend's Redis (``_START_ATTEMPT``: its reply is
        DUPLICATE or SUCCEEDED_ALREADY when the message must not run);
        False when this backend cannot (results not in JSON)."""
        if self.serializer != 'json':
            return False
        key, value, seconds = self._state_write(
            request.id, self.encode_result(started, states.STARTED), states.STARTED, None,
            request)
        redelivered = bool((request.delivery_info or {}).get('redelivered'))
        queue_script(pipe, self._start_script, [key, ATTEMPT_PREFIX + request.id],
                     [value, seconds, request.retries or 0, int(redelivered)])
        return True

    def attempts_started(self, task_id: str) -> int:
        """How many attempts of a task have started (recorded by
        ``_START_ATTEMPT``); 0 when none has."""
        started = self.client.get(ATTEMPT_PREFIX + task_id)
        return 0 if started is None else int(started) + 1

    def _state_write(self, task_id: str, result: Any, state: str, traceback: Any,
                     request: Any) -> tuple[Any, Any, int]:
        """The key, encoded meta and expiry (seconds, 0: none) of one write."""
        meta = self._get_result_meta(result=result, state=state, traceback=traceback,
                                     request=request)
        meta['task_id'] = bytes_to_str(task_id)
        value = self.encode(meta)
        if len(value) > self._MAX_STR_VALUE_SIZE:
            raise BackendStoreError('value too large for Redis backend', state=state,
                                    task_id=task_id)
        expires = self.failure_expires if state == states.FAILURE else self.expires
        seconds = int(expires.total_seconds() if hasattr(expires, 'total_seconds')
                      else expires or 0)
        return self.get_key_for_task(task_id), value, seconds

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Celery subscribes to a task's result as it sends the task, and
        unsubscribes once the returned AsyncResult is collected: two pub/sub
        commands per task that a producer which submits now and waits later
        (or never) does not use. Waiting subscribes by itself, then reads the
        stored state, so a result stored before the wait is not missed."""

    def _encode(self, data: Any) -> tuple[str, str, Any]:
        if self.serializer == 'json':
            try:
                return 'application/json', 'utf-8', fast_json.dumps(data)
            except fast_json.NotPlainJSON:
                pass
        return super()._encode(data)

    def decode(self, payload: Any) -> Any:
        # A compressed payload is not JSON, and goes to Celery's path too.
        if self.serializer == 'json' and payload:
            try:
                return fast_json.loads(payload)
            except fast_json.NotPlainJSON:
                pass
        return super().decode(payload)

# The schemes spacer's app resolves to this backend (Celery's loader lets an
# app map a URL scheme to its own class).
BACKEND_FOR_SCHEME = {scheme: f'{__name__}:RedisResultBackend' for scheme in ('redis', 'rediss')}
