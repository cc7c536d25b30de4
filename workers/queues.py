"""
How many messages wait in each queue.

With Redis, kombu keeps a queue with priorities as several lists: the queue
name itself for priority 0 and ``<name>\\x06\\x16<step>`` for the other
priority steps (3, 6, 9), so a queue's depth is the sum of their lengths.
With RabbitMQ a passive declare reports the count. Used by ``spacer
status`` and the Prometheus exporter.
"""
from __future__ import annotations

from typing import Any

from workers.settings import load

# kombu.transport.redis: Channel.sep and PRIORITY_STEPS.
REDIS_PRIORITY_SEP = '\x06\x16'
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)


def redis_queue_keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{REDIS_PRIORITY_SEP}{step}"
            for step in REDIS_PRIORITY_STEPS]


def redis_depths(client: Any, queue_names: list[str]) -> dict[str, int]:
    with client.pipeline(transaction=False) as pipe:
        for name in queue_names:
            for key in redis_queue_keys(name):
                pipe.llen(key)
        lengths = pipe.execute()
    steps = len(REDIS_PRIORITY_STEPS)
    return {name: int(sum(lengths[i * steps:(i + 1) * steps]))
            for i, name in enumerate(queue_names)}


def _broker_depths(app: Any, queue_names: list[str]) -> dict[str, int]:
    url = app.conf.broker_write_url or ''
    if url.startswith(('redis://', 'rediss://')):
        import redis
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            return redis_depths(client, queue_names)
        finally:
            client.close()
    depths = {}
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in queue_names:
            try:
                depths[name] = int(channel.queue_declare(name, passive=True).message_count)
            except Exception as e:  # not declared yet: nothing waits in it
                if 'NOT_FOUND' not in str(e) and '404' not in str(e):
                    raise
                depths[name] = 0
                channel = conn.channel()
    return depths


def queue_depths(app_or_redis: Any, queue_names: list[str] | None = None) -> dict[str, int]:
    """{queue name: messages waiting} for a Celery app or a Redis client."""
    if hasattr(app_or_redis, 'conf') and hasattr(app_or_redis, 'send_task'):
        app = app_or_redis
        names = queue_names or list(app.spacer_settings.queues.values())
        return _broker_depths(app, names)
    if queue_names is None:
        queue_names = list(load().queues.values())
    return redis_depths(app_or_redis, queue_names)



# The task ids of every message waiting in the given lists (queues and
# their priority lists) or held in the hash of the last key (kombu's
# unacknowledged messages), read inside Redis a page at a time, so no
# message crosses the network. A task message's headers hold
# '"id": "<task id>"' (its body is base64).
_PRESENT_IDS_SCRIPT = """
local found = {}
local page = 500
local function collect(item)
  local id = string.match(item, '"id": "([%w%-]+)"')
  if id then found[#found + 1] = id end
end
for i = 1, #KEYS - 1 do
  local start = 0
  while true do
    local items = redis.call('LRANGE', KEYS[i], start, start + page - 1)
    if #items == 0 then break end
    for _, item in ipairs(items) do collect(item) end
    start = start + page
  end
end
local cursor = '0'
repeat
  local reply = redis.call('HSCAN', KEYS[#KEYS], cursor, 'COUNT', page)
  cursor = reply[1]
  local fields = reply[2]
  for j = 2, #fields, 2 do collect(fields[j]) end
until cursor == '0'
return found
"""


def present_task_ids(client: Any, queues: list[str]) -> set[str]:
    """Task ids whose messages wait in ``queues`` or are held (delivered,
    not yet acknowledged) by any worker, on a Redis broker."""
    from kombu.transport.redis import Channel
    keys = [key for queue in queues for key in redis_queue_keys(queue)]
    keys.append(Channel.unacked_key)
    found = client.eval(_PRESENT_IDS_SCRIPT, len(keys), *keys)
    return {i.decode() if isinstance(i, bytes) else i for i in found}
