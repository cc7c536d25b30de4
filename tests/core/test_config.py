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


def _readme_tables() -> list[dict[str, str]]:
    """Each settings table of the README: name -> default as written."""
    from pathlib import Path
    readme = (Path(__file__).parents[2] / 'README.md').read_text()
    tables, rows = [], None
    for line in readme.splitlines():
        if line.startswith('| setting (`SPACER_` + name) |'):
            rows = {}
            tables.append(rows)
        elif rows is not None and line.startswith('| `'):
            cells = [cell.strip() for cell in line.strip('|').split('|')]
            rows[cells[0].strip('`')] = cells[1].strip('`')
        elif rows is not None and not line.startswith('|'):
            rows = None
    return tables


def test_readme_documents_every_setting():
    """The README has one table per table of the code (the library's in
    spacer.config, the workers' in workers.settings), each naming exactly
    its settings with their defaults."""
    from workers.settings import WORKER_SETTING_TABLE
    tables = _readme_tables()
    assert len(tables) == 2, "README should have the library's and the workers' settings tables"
    for documented, code in zip(tables, (config.SETTINGS, WORKER_SETTING_TABLE)):
        missing = [s.name for s in code if s.name not in documented]
        assert not missing, f"README's settings table lacks {missing}"
        stale = sorted(set(documented) - {s.name for s in code})
        assert not stale, f"README's settings table documents unknown {stale}"
        wrong = [s.name for s in code if documented[s.name] != str(s.default)]
        assert not wrong, f"README's defaults differ from the code's for {wrong}"


def test_library_and_worker_settings_do_not_overlap():
    from workers.settings import WORKER_SETTING_TABLE
    assert not {s.name for s in WORKER_SETTING_TABLE} & set(config.SETTINGS_BY_NAME)
