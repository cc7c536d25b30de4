"""The seed README's Config section: its three ways of setting spacer's
variables (environment, secrets.json, a Django setting), each taken from the
README text and checked with what the README says to run,
``from spacer import config`` then ``config.check()``.

Each runs in a fresh interpreter: settings are read when spacer.config is
imported.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / 'fixtures' / 'seed' / 'pyspacer-0.6.0-README.txt'
ROOT = Path(__file__).resolve().parents[2]
TEXT = README.read_text(encoding='utf-8')
# What every example sets, as config.check() prints it (the AWS keys masked).
EXPECTED = ['AWS_ACCESS_KEY_ID: YOUR...', 'AWS_SECRET_ACCESS_KEY: YOUR...',
            'AWS_REGION: us-west-2', 'EXTRACTORS_CACHE_DIR: /your/cache']


def readme_exports() -> dict[str, str]:
    return dict(re.findall(r"export (SPACER_\w+)='([^']*)'", TEXT))


def readme_block_after(intro: str) -> str:
    """The indented block that follows the line ending with ``intro``."""
    lines = TEXT[TEXT.index(intro) + len(intro):].splitlines()[1:]
    block = []
    for line in lines:
        if line.strip() and not line.startswith('    '):
            break
        block.append(line[4:])
    return '\n'.join(block).strip()


def check_output(env_extra: dict, setup: str = '') -> str:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('SPACER_') and k != 'DJANGO_SETTINGS_MODULE'}
    env.update(env_extra)
    code = f"{setup}\nfrom spacer import config\nconfig.check()\n"
    done = subprocess.run([sys.executable, '-c', code], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_environment_variables():
    exports = readme_exports()
    assert set(exports) == {'SPACER_AWS_ACCESS_KEY_ID', 'SPACER_AWS_SECRET_ACCESS_KEY',
                            'SPACER_AWS_REGION', 'SPACER_EXTRACTORS_CACHE_DIR'}
    lines = check_output(exports).splitlines()
    assert all(line in lines for line in EXPECTED), lines
    assert 'YOUR_AWS_SECRET_KEY' not in '\n'.join(lines)


def test_secrets_json(tmp_path):
    secrets = tmp_path / 'secrets.json'
    secrets.write_text(readme_block_after('Example secrets.json contents:'))
    assert json.loads(secrets.read_text())['AWS_REGION'] == 'us-west-2'
    # The README puts secrets.json beside the package; here it is pointed at.
    setup = (f"from pathlib import Path\nimport spacer.config as c\n"
             f"c.SECRETS_PATH = Path({str(secrets)!r})\nc.reload()")
    lines = check_output({}, setup).splitlines()
    assert lines[0].startswith('Secrets file found.')
    assert all(line in lines for line in EXPECTED), lines
    # "Check environment variables first, then use secrets.json as a fallback."
    lines = check_output({'SPACER_AWS_REGION': 'eu-west-1'}, setup).splitlines()
    assert 'AWS_REGION: eu-west-1' in lines and 'EXTRACTORS_CACHE_DIR: /your/cache' in lines


def test_django_setting(tmp_path):
    pytest.importorskip('django')
    snippet = readme_block_after('Example code in a Django settings module:')
    assert snippet.startswith('SPACER = {')
    (tmp_path / 'readme_settings.py').write_text(snippet + '\n')
    env = {'DJANGO_SETTINGS_MODULE': 'readme_settings',
           'PYTHONPATH': os.pathsep.join([str(tmp_path), str(ROOT)])}
    lines = check_output(env).splitlines()
    assert lines[0].endswith('SPACER Django setting found.')
    assert all(line in lines for line in EXPECTED), lines
    # "Check environment variables first, then use Django settings as a fallback."
    lines = check_output({**env, 'SPACER_EXTRACTORS_CACHE_DIR': '/env/cache'}).splitlines()
    assert 'EXTRACTORS_CACHE_DIR: /env/cache' in lines and 'AWS_REGION: us-west-2' in lines
