"""Device choice, thread shares and pool choice for each kind of worker."""
from __future__ import annotations

import logging

import pytest

from workers import process_setup as warm
from spacer_cli.worker_command import pool_for


def test_gpu_kind_without_cuda_falls_back_to_cpu_with_a_warning():
    device, warning = warm.choose_device('auto', gpu_kind=True, cuda_available=False)
    assert device == 'cpu' and 'CPU' in warning
    device, warning = warm.choose_device('cuda:1', gpu_kind=False, cuda_available=False)
    assert device == 'cpu' and "'cuda:1'" in warning


def test_device_kept_when_usable():
    assert warm.choose_device('cuda:0', True, True) == ('cuda:0', None)
    assert warm.choose_device('auto', True, True) == ('auto', None)
    assert warm.choose_device('auto', False, False) == ('auto', None)
    assert warm.choose_device('cpu', True, False) == ('cpu', None)


def test_cores_are_shared_among_pool_processes():
    assert warm.threads_per_process(1, cpus=16) == 16
    assert warm.threads_per_process(4, cpus=16) == 4
    assert warm.threads_per_process(32, cpus=16) == 1


def test_pool_per_kind():
    # Extract workers are prefork too (only prefork enforces hard limits).
    assert pool_for({'extract'}, cpus=8) == ('prefork', 1)
    assert pool_for({'extract'}, cpus=8, gpu=True) == ('prefork', 4)
    assert pool_for({'extract'}, cpus=8, concurrency=2, gpu=True) == ('prefork', 2)
    assert pool_for({'train', 'classify'}, cpus=8) == ('prefork', 8)
    assert pool_for({'classify'}, cpus=8, concurrency=3) == ('prefork', 3)


def test_prepare_process_on_this_host(monkeypatch, caplog):
    """No CUDA here: a GPU-kind process warns and configures the CPU."""
    import torch
    from spacer import config
    if torch.cuda.is_available():
        pytest.skip('this host has CUDA')
    monkeypatch.setattr(config, 'DEVICE', 'auto')
    monkeypatch.setenv('SPACER_DEVICE', 'auto')
    threads = torch.get_num_threads()
    try:
        with caplog.at_level(logging.WARNING, logger='workers.process_setup'):
            chosen = warm.prepare_process(pool_size=1, gpu_kind=True)
        assert chosen['device'] == 'cpu' and config.DEVICE == 'cpu'
        assert 'no CUDA' in caplog.text
        assert torch.get_num_threads() == warm.threads_per_process(1)
    finally:
        torch.set_num_threads(threads)
        warm.limit_threads(threads)


def test_model_builds_reach_the_load_time_signal():
    """The library reports each network build; the worker layer turns it into
    the extractor_loaded signal its metrics listen to."""
    from spacer.extractors import warm as library_warm
    from workers import metrics
    from workers import process_setup as worker_warm

    seen = []

    def receiver(sender=None, extractor=None, seconds=None, **_):
        seen.append((extractor, seconds))

    worker_warm.install()
    metrics.extractor_loaded.connect(receiver, weak=False)
    try:
        library_warm.get_or_build(('test-load-signal', object()), lambda: 'net',
                                  label='EfficientNetExtractor')
    finally:
        metrics.extractor_loaded.disconnect(receiver)
        library_warm.clear()
    assert len(seen) == 1 and seen[0][0] == 'EfficientNetExtractor' and seen[0][1] >= 0
