"""The `spacer` command given bad settings, or used without a broker: one line
naming the cause, never a traceback, a hang or a job that silently never runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from spacer.storage import storage_factory
from spacer_cli.spacer_command import main

REPO = Path(__file__).parents[2]
DUMMY = 'spacer.extractors.dummy.DummyExtractor'


def spacer_cli(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """`spacer ARGS` in a fresh interpreter (settings are read at import)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith('SPACER_')}
    environ.update({f'SPACER_{k}': v for k, v in env.items()})
    return subprocess.run([sys.executable, '-m', 'spacer_cli', *args], cwd=REPO,
                          env=environ, capture_output=True, text=True, timeout=60)


def test_a_bad_setting_is_one_line_even_for_help():
    done = spacer_cli(['run', '--help'], MAX_POINTS_PER_IMAGE='abc')
    assert done.returncode == 2 and done.stdout == ''
    assert done.stderr == ("spacer: error: MAX_POINTS_PER_IMAGE must be an integer, not 'abc' "
                           "(from environment variable SPACER_MAX_POINTS_PER_IMAGE).\n")


def test_a_bad_setting_read_by_a_command_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv('SPACER_RETRY_MAX', '-1')
    assert main(['config']) == 2
    assert capsys.readouterr().err == (
        "spacer: error: RETRY_MAX must not be negative, not -1 "
        "(from environment variable SPACER_RETRY_MAX).\n")


def _no_broker(monkeypatch) -> None:
    from workers.app import app
    if not app.spacer_settings.embedded:
        pytest.skip('a broker is configured')


def test_submit_without_a_broker_runs_the_task_before_exiting(tmp_path, monkeypatch,
                                                                capsys):
    _no_broker(monkeypatch)
    image = BytesIO()
    Image.new('RGB', (20, 20)).save(image, format='JPEG')
    storage_factory('memory').store('cli-hostile.jpg', image)
    path = tmp_path / 'msg.json'
    path.write_text(json.dumps({
        'job_token': 'cli-hostile', 'extractor': {'class_path': DUMMY, 'feature_dim': 4},
        'rowcols': [[1, 1]], 'image_loc': {'storage_type': 'memory', 'key': 'cli-hostile.jpg'},
        'feature_loc': {'storage_type': 'memory', 'key': 'cli-hostile.npz'}}))
    assert main(['submit', str(path), '--timeout', '30']) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)['state'] == 'SUCCESS'
    assert 'no broker configured (SPACER_BROKER_URL): running the task here' in err
    assert storage_factory('memory').exists('cli-hostile.npz')


@pytest.mark.parametrize('wait', [[], ['--wait']])
def test_result_without_a_broker_says_so(monkeypatch, capsys, wait):
    _no_broker(monkeypatch)
    assert main(['result', 'no-such-task', *wait]) == 1
    err = capsys.readouterr().err
    assert err.startswith('spacer result: no broker configured; set SPACER_BROKER_URL')


def test_dead_letters_without_a_broker_says_so(capsys):
    from spacer_cli.spacer_command import main
    assert main(['dead-letters', 'list']) == 1
    assert 'no broker configured' in capsys.readouterr().err
