"""
Celery's Redis result backend, storing a task's state in one round trip.

Celery reads a task's stored result before each state write (STARTED,
SUCCESS, PROGRESS...) so that a late write never overwrites a success, then
sets and publishes the new state: two round trips, and the read is not
atomic with the write. Here one Lua script does the check and the write
together. The stored value, its expiry and the message published to
waiting clients are Celery's own, so every Celery client reads them as
usual. Results that are not JSON take Celery's own path.
"""
from __future__ import annotations

from typing import Any

from celery import states
from celery.backends.redis import RedisBackend
from celery.exceptions import BackendStoreError
from kombu.utils.encoding import bytes_to_str

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


class RedisResultBackend(RedisBackend):
    """``redis://`` and ``rediss://`` result backends of spacer's app."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._store_script = self.client.register_script(_STORE_UNLESS_SUCCEEDED)

    def _store_result(self, task_id: str, result: Any, state: str, traceback: Any = None,
                      request: Any = None, **kwargs: Any) -> Any:
        if self.serializer != 'json':
            return super()._store_result(task_id, result, state, traceback=traceback,
                                         request=request, **kwargs)
        meta = self._get_result_meta(result=result, state=state, traceback=traceback,
                                     request=request)
        meta['task_id'] = bytes_to_str(task_id)
        value = self.encode(meta)
        if isinstance(value, str) and len(value) > self._MAX_STR_VALUE_SIZE:
            raise BackendStoreError('value too large for Redis backend', state=state,
                                    task_id=task_id)
        expires = self.failure_expires if state == states.FAILURE else self.expires
        self.ensure(self._store_unless_succeeded,
                    (self.get_key_for_task(task_id), value, expires))
        return result

    def _store_unless_succeeded(self, key: bytes | str, value: str | bytes,
                                expires: Any) -> None:
        seconds = int(expires.total_seconds() if hasattr(expires, 'total_seconds')
                      else expires or 0)
        self._store_script(keys=[key], args=[value, seconds], client=self.client)


# The schemes spacer's app resolves to this backend (Celery's loader lets an
# app map a URL scheme to its own class).
BACKEND_FOR_SCHEME = {scheme: f'{__name__}:RedisResultBackend' for scheme in ('redis', 'rediss')}
