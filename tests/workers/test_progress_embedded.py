"""A training's epochs, polled through the embedded in-process worker."""
from __future__ import annotations

from dataclasses import replace

from tests.workers.progress_checks import (
    check_job_progress, check_progress, watch_training)
from tests.workers.slow_classes import CLASS_PATHS
from workers.app import make_app
from workers.client import Client
from workers.settings import load


def embedded_client(monkeypatch) -> Client:
    from spacer import config
    assert not config.BROKER_URL, "this test needs the embedded default"
    monkeypatch.setattr(config, 'EXTRA_CLASS_PATHS', CLASS_PATHS)
    # Queues of its own: another module's embedded worker must not take these.
    queues = {kind: f'progress-{kind}' for kind in ('extract', 'train', 'classify')}
    return Client(make_app(replace(load(), queues=queues)))


def test_a_running_training_reports_its_epochs(tmp_path, monkeypatch):
    seen, returned = watch_training(embedded_client(monkeypatch), tmp_path)
    check_progress(seen, returned)
    assert len(seen) >= 2  # 8 epochs of 0.4 s, polled every 0.05 s


def test_a_job_of_trainings_reports_each_ones_epochs(tmp_path, monkeypatch):
    seen, returned = watch_training(embedded_client(monkeypatch), tmp_path,
                                    epoch_delay=0.3, job_of=2)
    check_job_progress(seen, returned, tasks=2)
