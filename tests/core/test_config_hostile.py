"""Settings out of range, and logging settings that cannot be used: a
ConfigError naming the setting and where it was set, when it is read."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spacer import config
from spacer.exceptions import ConfigError

REPO = Path(__file__).parents[2]


@pytest.fixture
def restore_config():
    yield
    config.reload()


@pytest.mark.parametrize('name, value, wanted', [
    ('MAX_IMAGE_PIXELS', '-5', 'must be positive'),
    ('MAX_POINTS_PER_IMAGE', '-1', 'must be positive'),
    ('MAX_POINTS_PER_IMAGE', '0', 'must be positive'),
    ('TRAINING_BATCH_LABEL_COUNT', '-1', 'must be positive'),
    ('URL_TIMEOUT', '-1', 'must be positive'),
    ('URL_TIMEOUT', '0', 'must be positive'),
    ('EXTRACT_BATCH_SIZE', '-3', 'must not be negative'),
    ('TRAINING_TORCH_THREADS', '-4', 'must be positive'),
    ('CLASSIFIER_CACHE_SIZE', '0', 'must be positive'),
    ('METRICS_PORT', '70000', 'must be at most 65535'),
])
def test_out_of_range_values_name_the_setting(restore_config, monkeypatch, name, value,
                                              wanted):
    monkeypatch.setenv('SPACER_' + name, value)
    with pytest.raises(ConfigError) as info:
        _read_now(name)
    assert str(info.value) == (f"{name} {wanted}, not {value} "
                               f"(from environment variable SPACER_{name}).")


def _read_now(name: str):
    """A setting as its readers get it: the library's at reload, the
    workers' (workers.settings) whenever they are read."""
    from workers import settings as worker_settings
    if name in worker_settings.WORKER_SETTINGS_BY_NAME:
        return worker_settings.read(name)
    config.reload()
    return config.get(name)


@pytest.mark.parametrize('name', ['EXTRACT_BATCH_SIZE', 'WORKER_CONCURRENCY', 'METRICS_PORT',
                                  'RESULT_EXPIRES', 'TRAINING_IN_MEMORY_MB', 'RETRY_MAX'])
def test_zero_is_accepted_where_it_means_something(restore_config, monkeypatch, name):
    monkeypatch.setenv('SPACER_' + name, '0')
    assert _read_now(name) == 0


def test_every_int_setting_has_a_minimum():
    from workers.settings import WORKER_SETTING_TABLE
    assert [s.name for s in (*config.SETTINGS, *WORKER_SETTING_TABLE)
            if s.type is int and s.minimum is None] == []


def test_direct_readers_get_the_bounds_too(monkeypatch):
    """Code reading a setting itself (as pyspacer's code does) is held to them."""
    from spacer.training.torch_optim import torch_threads
    monkeypatch.setenv('SPACER_TRAINING_TORCH_THREADS', '-4')
    with pytest.raises(ConfigError, match='TRAINING_TORCH_THREADS must be positive, not -4'):
        torch_threads()


def test_worker_settings_use_the_same_bounds(monkeypatch):
    from workers.settings import load
    monkeypatch.setenv('SPACER_DEDUP_TTL', '0')
    with pytest.raises(ConfigError, match='DEDUP_TTL must be positive, not 0'):
        load()


def test_a_secrets_file_value_names_the_file(restore_config, monkeypatch, tmp_path):
    secrets = tmp_path / 'secrets.json'
    secrets.write_text(json.dumps({'MAX_IMAGE_PIXELS': -5}))
    monkeypatch.setattr(config, 'SECRETS_PATH', secrets)
    monkeypatch.delenv('SPACER_MAX_IMAGE_PIXELS', raising=False)
    with pytest.raises(ConfigError, match=f'not -5 \\(from {secrets}\\)'):
        config.reload()


def test_log_level_names_are_checked_in_any_case(monkeypatch):
    assert config._log_level('debug') == 10
    monkeypatch.setenv('SPACER_LOG_LEVEL', 'NOPE')
    with pytest.raises(ConfigError, match="LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or "
                                          "CRITICAL, not 'NOPE' \\(from environment "
                                          "variable SPACER_LOG_LEVEL\\)"):
        config._log_level('NOPE')


def test_unusable_logging_settings_fail_the_import_naming_them(tmp_path):
    """Logging is set up when spacer.config is imported: a fresh interpreter."""
    script = ("from spacer.exceptions import ConfigError\n"
              "try:\n    import spacer.config\n"
              "except ConfigError as e:\n    print(e)\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith('SPACER_')}
    environ['SPACER_LOG_DESTINATION'] = str(tmp_path / 'missing' / 'log.txt')
    done = subprocess.run([sys.executable, '-c', script], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith(
        f"LOG_DESTINATION '{tmp_path / 'missing' / 'log.txt'}' cannot be opened for logging: "
        f"No such file or directory (from environment variable SPACER_LOG_DESTINATION)")
