"""Settings come from the environment, then secrets.json, then Django."""
import json

import pytest

from spacer import config
from spacer.exceptions import ConfigError


@pytest.fixture
def restore_config():
    yield
    config.reload()


def test_environment_and_casting(restore_config, monkeypatch):
    monkeypatch.setenv('SPACER_MAX_POINTS_PER_IMAGE', '12')
    monkeypatch.setenv('SPACER_AWS_ANONYMOUS', 'True')
    monkeypatch.setenv('SPACER_AWS_REGION', '')
    config.reload()
    assert config.MAX_POINTS_PER_IMAGE == 12 and config.get('AWS_ANONYMOUS') is True
    assert config.AWS_REGION is None
    assert config.TRAINING_BATCH_LABEL_COUNT == 5000


@pytest.mark.parametrize('name, value, fragment', [
    ('MAX_POINTS_PER_IMAGE', 'many', "MAX_POINTS_PER_IMAGE must be an integer, not 'many'"),
    ('AWS_ANONYMOUS', 'yes', "AWS_ANONYMOUS may only be True or False, not 'yes'"),
])
def test_bad_values_name_the_setting(restore_config, monkeypatch, name, value, fragment):
    monkeypatch.setenv('SPACER_' + name, value)
    with pytest.raises(ConfigError, match=fragment):
        config.reload()


def test_secrets_file(restore_config, monkeypatch, tmp_path):
    secrets = tmp_path / 'secrets.json'
    secrets.write_text(json.dumps({'LOG_LEVEL': 'DEBUG', 'BROKER_URL': 'redis://x'}))
    monkeypatch.setattr(config, 'SECRETS_PATH', secrets)
    monkeypatch.delenv('SPACER_BROKER_URL', raising=False)
    config.reload()
    assert config.LOG_LEVEL == 'DEBUG' and config.BROKER_URL == 'redis://x'


def test_required_value_error():
    with pytest.raises(ConfigError, match='NOPE setting is required'):
        config.get_config_value('NOPE')
    with pytest.raises(ConfigError, match="Unknown setting 'NOPE'"):
        config.get('NOPE')


def test_check_hides_secrets(monkeypatch, capsys):
    monkeypatch.setattr(config, 'AWS_SECRET_ACCESS_KEY', 'supersecretvalue123')
    config.check()
    out = capsys.readouterr().out
    assert 'supersecretvalue123' not in out and 'AWS_SECRET_ACCESS_KEY: supe...' in out
    assert 'BROKER_URL' in out and 'S3_ENDPOINT_URL' in out


def test_readme_documents_every_setting():
    from pathlib import Path
    readme = (Path(__file__).parents[2] / 'README.md').read_text()
    missing = [s.name for s in config.SETTINGS if f'| `{s.name}` |' not in readme]
    assert not missing, f"README's settings table lacks {missing}"
