"""
Where the state of jobs is kept: dedup keys (which task holds a job) and
the dead-letter list (messages of jobs that failed for good), behind the few
Redis operations they need.

They live in Redis when a Redis URL is
configured (the result backend's, else the broker's); the embedded worker,
which has no Redis, keeps them in process memory with the same semantics.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from spacer import config
from workers.redis_scripts import queue_script

# Claim a key in one step: take it when it is free, already ours, or held
# under a value that starts with ARGV[3] (a form of ours, e.g. the
# producer's sending mark of this very task); else return its holder.
# Taking it (again) renews its TTL.
_CLAIM_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1]
   and (ARGV[3] == '' or string.sub(holder, 1, #ARGV[3]) ~= ARGV[3]) then
    return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""

# The one atomic step SET NX cannot do alone: change or delete a key only if
# it still holds a value, or one starting with ARGV[4] (another task may
# have claimed it since). One round trip; a WATCH transaction took four.
_IF_HELD_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if not holder then return 0 end
if holder ~= ARGV[1] and (ARGV[4] == '' or string.sub(holder, 1, #ARGV[4]) ~= ARGV[4]) then
    return 0
end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1
"""


class RedisKeyStore:
    """Key and list operations on a redis-py client (or fakeredis)."""

    def __init__(self, client: Any):
        self.client = client
        self._claim_script = client.register_script(_CLAIM_SCRIPT)
        self._if_held_script = client.register_script(_IF_HELD_SCRIPT)

    def claim(self, key: str, value: str, ttl: int, also_ours: str = '',
              along: Callable[[Any], Callable[[list], None]] | None = None) -> str | None:
        """Set ``key`` to ``value`` unless another holds it; return that
        holder. A holder starting with ``also_ours`` counts as ours and is
        replaced. ``along(pipe)`` adds commands of the caller's own to the
        same round trip, before the claim, and returns what takes their
        replies."""
        args = [value, ttl, also_ours]
        if along is None:
            holder = self._claim_script(keys=[key], args=args)
        else:
            with self.client.pipeline(transaction=False) as pipe:
                take_replies = along(pipe)
                queue_script(pipe, self._claim_script, [key], args)
                *replies, holder = pipe.execute()
            take_replies(replies)
        return holder.decode() if isinstance(holder, bytes) else holder

    def ping(self) -> None:
        """Raise redis's ConnectionError unless the server answers."""
        self.client.ping()

    def holder(self, key: str) -> str | None:
        value = self.client.get(key)
        return value.decode() if isinstance(value, bytes) else value

    def release(self, key: str, value: str, also_ours: str = '') -> bool:
        """Delete ``key`` if it still holds ``value`` (or a value starting
        with ``also_ours``)."""
        return bool(self._if_held_script(keys=[key], args=[value, '', 0, also_ours]))

    def queue_release(self, pipe: Any, key: str, value: str, also_ours: str = '') -> None:
        """``release``, added to a pipeline of this store's client."""
        queue_script(pipe, self._if_held_script, [key], [value, '', 0, also_ours])

    def replace(self, key: str, old: str, new: str, ttl: int) -> bool:
        """Set ``key`` to ``new`` if it still holds ``old``."""
        return bool(self._if_held_script(keys=[key], args=[old, new, ttl, '']))

    def push(self, key: str, item: str, maxlen: int) -> None:
        with self.client.pipeline() as pipe:
            pipe.lpush(key, item)
            pipe.ltrim(key, 0, maxlen - 1)
            pipe.execute()

    def items(self, key: str, start: int = 0, stop: int = -1) -> list[str]:
        return [i.decode() if isinstance(i, bytes) else i
                for i in self.client.lrange(key, start, stop)]

    def length(self, key: str) -> int:
        return int(self.client.llen(key))

    def remove(self, key: str, item: str) -> int:
        return int(self.client.lrem(key, 1, item))

    def delete(self, key: str) -> None:
        self.client.delete(key)


class MemoryKeyStore:
    """The same operations in process memory, for the embedded worker."""

    def __init__(self):
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, float]] = {}
        self._lists: dict[str, list[str]] = {}

    def ping(self) -> None:
        """Always answers (there is no server)."""

    def _live(self, key: str) -> str | None:
        entry = self._values.get(key)
        if entry is None or entry[1] < time.monotonic():
            self._values.pop(key, None)
            return None
        return entry[0]

    def claim(self, key: str, value: str, ttl: int, also_ours: str = '') -> str | None:
        with self._lock:
            holder = self._live(key)
            if holder is None or holder == value or (also_ours and holder.startswith(also_ours)):
                self._values[key] = (value, time.monotonic() + ttl)
                return None
            return holder

    def holder(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def release(self, key: str, value: str, also_ours: str = '') -> bool:
        with self._lock:
            holder = self._live(key)
            if holder is None or holder != value and not (
                    also_ours and holder.startswith(also_ours)):
                return False
            del self._values[key]
            return True

    def replace(self, key: str, old: str, new: str, ttl: int) -> bool:
        with self._lock:
            if self._live(key) != old:
                return False
            self._values[key] = (new, time.monotonic() + ttl)
            return True

    def push(self, key: str, item: str, maxlen: int) -> None:
        with self._lock:
            items = self._lists.setdefault(key, [])
            items.insert(0, item)
            del items[maxlen:]

    def items(self, key: str, start: int = 0, stop: int = -1) -> list[str]:
        with self._lock:
            items = self._lists.get(key, [])
            return list(items[start:] if stop == -1 else items[start:stop + 1])

    def length(self, key: str) -> int:
        with self._lock:
            return len(self._lists.get(key, []))

    def remove(self, key: str, item: str) -> int:
        with self._lock:
            items = self._lists.get(key, [])
            if item in items:
                items.remove(item)
                return 1
            return 0

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._lists.pop(key, None)


_EMBEDDED_STORE = MemoryKeyStore()
# Redis URLs whose client and store are kept (a process uses one or two:
# the result backend's and the broker's); the least recently used beyond
# that are dropped.
REDIS_URLS_KEPT = 8
_stores: OrderedDict[str, RedisKeyStore] = OrderedDict()
_clients: OrderedDict[str, Any] = OrderedDict()
_stores_lock = threading.Lock()


def _kept(cache: OrderedDict, url: str, make: Callable[[], Any]) -> Any:
    """``cache[url]``, made on first use; the cache keeps REDIS_URLS_KEPT."""
    if url in cache:
        cache.move_to_end(url)
    else:
        cache[url] = make()
        while len(cache) > REDIS_URLS_KEPT:
            cache.popitem(last=False)
    return cache[url]


def clear_caches() -> None:
    """Forget every kept client and store (tests)."""
    with _stores_lock:
        _stores.clear()
        _clients.clear()


def redis_url_of(app: Any) -> str | None:
    """The Redis URL the app's policies use: the result backend's, else the broker's."""
    # backend_cls: the URL workers.app chose, which Celery's conf would
    # replace by CELERY_RESULT_BACKEND from the environment.
    for url in (app.backend_cls or app.conf.result_backend, app.conf.broker_write_url):
        if isinstance(url, str) and url.startswith(('redis://', 'rediss://')):
            return url
    return None


def redis_client(url: str) -> Any:
    """A redis-py client for ``url`` (one per URL, reused)."""
    def make() -> Any:
        import redis

        return redis.Redis.from_url(
            url, socket_timeout=10, socket_connect_timeout=config.get('BROKER_CONNECT_TIMEOUT'),
            health_check_interval=30, retry_on_timeout=True)

    with _stores_lock:
        return _kept(_clients, url, make)


def store_for(app: Any) -> RedisKeyStore | MemoryKeyStore:
    """The key store of ``app`` (one per URL, reused)."""
    url = redis_url_of(app)
    if url is None:
        return _EMBEDDED_STORE
    client = redis_client(url)
    with _stores_lock:
        return _kept(_stores, url, lambda: RedisKeyStore(client))
