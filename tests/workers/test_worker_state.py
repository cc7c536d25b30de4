"""The one list of the worker layer's process-wide state: complete, bounded,
clearable."""
from __future__ import annotations

from workers import job_state_store, worker_state


def test_redis_clients_are_kept_for_a_bounded_number_of_urls(monkeypatch):
    monkeypatch.setattr(job_state_store, 'REDIS_URLS_KEPT', 2)
    job_state_store.clear_caches()
    try:
        urls = [f'redis://127.0.0.1:6379/{db}' for db in (11, 12, 13)]
        clients = [job_state_store.redis_client(url) for url in urls]
        assert list(job_state_store._clients) == urls[1:]
        # The most recent stay, and a hit keeps its client.
        assert job_state_store.redis_client(urls[2]) is clients[2]
    finally:
        job_state_store.clear_caches()


def test_clear_all_forgets_the_kept_clients():
    job_state_store.redis_client('redis://127.0.0.1:6379/14')
    worker_state.clear_all()
    assert not job_state_store._clients
