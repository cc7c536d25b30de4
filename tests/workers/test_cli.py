"""The `spacer` command: help everywhere, submit/result through the embedded worker."""
from __future__ import annotations

import json

import pytest

from spacer_cli.spacer_command import build_parser, main

SUBCOMMANDS = ['worker', 'submit', 'result', 'status', 'dead-letters', 'config']


@pytest.mark.parametrize('command', SUBCOMMANDS)
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, '--help'])
    assert exit_info.value.code == 0
    assert f'spacer {command}' in capsys.readouterr().out


def test_survey_subcommands_are_included():
    choices = build_parser()._subparsers._group_actions[0].choices
    assert set(SUBCOMMANDS) <= set(choices)
    assert {'run', 'demo'} <= set(choices)


def test_submit_infers_the_task_and_waits(tmp_path, capsys):
    from tests.workers.scenario import Scenario
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    path = tmp_path / 'msg.json'
    path.write_text(json.dumps(scenario.extract_msg(0).serialize()))
    assert main(['submit', str(path), '--wait', '--timeout', '30']) == 0
    report = json.loads(capsys.readouterr().out)
    assert report['state'] == 'SUCCESS' and 'runtime' in report['result']
    scenario.check_features(0)


def test_submit_then_result_of_a_failure(tmp_path, capsys):
    from tests.workers.scenario import Scenario
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)  # image never stored
    path = tmp_path / 'msg.json'
    path.write_text(json.dumps(scenario.extract_msg(0).serialize()))
    # No broker: submit runs the task here (as --wait), so it is not lost.
    assert main(['submit', str(path), '--task', 'extract_features']) == 1
    report = json.loads(capsys.readouterr().out)
    assert report['state'] == 'FAILURE'
    assert report['error']['type'] == 'FileNotFoundError'
    assert main(['result', report['id']]) == 1
    assert json.loads(capsys.readouterr().out)['state'] == 'FAILURE'


def test_submit_rejects_unknown_shapes(tmp_path, capsys):
    path = tmp_path / 'msg.json'
    path.write_text('{"hello": 1}')
    assert main(['submit', str(path)]) == 2
    assert 'match no spacer message' in capsys.readouterr().err
    path.write_text('not json')
    with pytest.raises(SystemExit, match='not JSON'):
        main(['submit', str(path)])


def test_worker_refuses_to_start_without_a_broker():
    with pytest.raises(SystemExit, match='no broker configured'):
        main(['worker', '--queues', 'extract'])


def test_config_lists_worker_settings(capsys):
    assert main(['config']) == 0
    out = capsys.readouterr().out
    assert 'BROKER_URL: None' in out and 'VISIBILITY_TIMEOUT: 14460' in out
