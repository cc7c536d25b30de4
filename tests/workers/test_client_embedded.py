"""The producer client with no broker configured: the embedded in-process worker."""
from __future__ import annotations

import pytest

from spacer.messages import JobMsg
from workers.app import make_app
from workers.client import Client
from workers.settings import load
from tests.workers.scenario import Scenario, run_all_five


@pytest.fixture(scope='module')
def client():
    from spacer import config
    assert not config.BROKER_URL, "these tests need the embedded default"
    app = make_app(load())
    return Client(app)


def test_all_five_tasks_through_the_embedded_worker(client, tmp_path):
    run_all_five(client, Scenario('filesystem', str(tmp_path)))


def test_memory_storage_is_shared_with_the_embedded_worker(client):
    run_all_five(client, Scenario('memory', 'survey', n_images=5))


def test_bad_input_is_an_error_result_naming_the_cause(client, tmp_path):
    scenario = Scenario('filesystem', str(tmp_path))
    msg = scenario.extract_msg(0)  # its image was never stored
    outcome = client.wait_result(client.submit('extract_features', msg), 30)
    assert outcome.state == 'FAILURE'
    assert outcome.error_type == 'FileNotFoundError'
    assert scenario.image_loc(0).key in outcome.error_message

    (tmp_path / 'junk.png').write_bytes(b'not a picture at all')
    msg.image_loc = type(msg.image_loc)('filesystem', str(tmp_path / 'junk.png'))
    msg.job_token = 'junk'
    outcome = client.wait_result(client.submit('extract_features', msg), 30)
    assert outcome.error_type == 'ImageDecodeError'
    from workers.errors import RemoteError
    with pytest.raises(RemoteError, match='ImageDecodeError'):
        outcome.raise_for_error()


def test_malformed_message_is_a_message_error(client):
    outcome = client.wait_result(
        client.submit('classify_features', {'job_token': 'x', 'feature_loc': 12}), 30)
    assert outcome.state == 'FAILURE' and outcome.error_type == 'MessageError'


def test_process_job_failure_is_a_job_return_message(client, tmp_path):
    scenario = Scenario('filesystem', str(tmp_path))
    result = client.wait(client.submit(None, scenario.job_msg()), 30)
    # pyspacer's contract: a JobReturnMsg with ok False and the traceback.
    assert result['ok'] is False
    assert 'FileNotFoundError' in result['error_message']


def test_process_job_keeps_the_results_of_tasks_that_succeeded(client, tmp_path):
    """The README's guarantee holds through the queue too: a failed task
    does not throw away the others' return messages."""
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    job = JobMsg('extract_features', [scenario.extract_msg(1),  # image never stored
                                      scenario.extract_msg(0)])
    result = client.wait(client.submit(None, job), 30)
    assert result['ok'] is False
    assert result['results'][0] is None
    assert set(result['results'][1]) >= {'runtime', 'extractor_loaded_remotely'}
    assert 'FileNotFoundError' in result['error_message']
    assert scenario.extract_msg(1).job_token in result['error_message']
    scenario.check_features(0)


def test_poll_and_peek_are_non_blocking_and_cover_many_ids(client, tmp_path):
    scenario = Scenario('filesystem', str(tmp_path), n_images=3)
    scenario.put_images()
    ids = [client.submit('extract_features', scenario.extract_msg(i)) for i in range(3)]
    states = client.poll(ids + ['no-such-task'])
    assert set(states) == set(ids) | {'no-such-task'}
    assert states['no-such-task'].state == 'PENDING' and not states['no-such-task'].ready
    for task_id in ids:
        client.wait(task_id, 30)
    assert all(r.ok for r in client.poll(ids).values())
    peeked = client.peek(ids + ['no-such-task'])
    assert [peeked[i].state for i in ids + ['no-such-task']] == ['SUCCESS'] * 3 + ['PENDING']


def test_a_finished_job_may_run_again(client, tmp_path):
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    msg = scenario.extract_msg(0)
    first = client.submit('extract_features', msg)
    client.wait(first, 30)
    second = client.submit('extract_features', msg)
    assert second != first
    client.wait(second, 30)


def test_unknown_task_name_is_refused_before_sending(client):
    with pytest.raises(ValueError, match='Unknown task'):
        client.submit('extract', {'job_token': 'x'})


def test_a_job_without_task_messages_is_refused_before_sending(client):
    from spacer.exceptions import MessageError
    for tasks in (5, [5], None):
        with pytest.raises(MessageError, match="'tasks' must be a list"):
            client.submit('process_job', {'task_name': 'extract_features', 'tasks': tasks})


def test_a_message_that_is_not_json_is_refused_before_sending(client):
    from spacer.exceptions import MessageError
    with pytest.raises(MessageError, match='not JSON'):
        client.submit('classify_features', {'job_token': 'x', 'feature_loc': {1, 2}})


def test_a_task_sent_without_its_message_fails_as_bad_input(client):
    task_id = client.app.send_task('spacer.classify_features', args=[],
                                   queue=client.settings.queues['classify']).id
    outcome = client.wait_result(task_id, 30)
    assert outcome.state == 'FAILURE' and outcome.error_type == 'MessageError'
    assert 'takes one argument, the message' in outcome.error_message


def test_a_message_sent_as_a_keyword_is_read(client):
    task_id = client.app.send_task('spacer.classify_features',
                                   kwargs={'message': {'job_token': 'kw'}},
                                   queue=client.settings.queues['classify']).id
    outcome = client.wait_result(task_id, 30)
    assert outcome.error_type == 'MissingKeyError'  # a MessageError that is also a KeyError
    assert "missing key 'feature_loc'" in outcome.error_message


def test_spent_retries_leave_exactly_one_dead_letter(tmp_path):
    from dataclasses import replace

    from spacer.data_classes import DataLocation
    from tests.conftest import free_port
    from workers.job_state_store import store_for
    from workers import dead_letters
    # Queues of its own: the module's embedded worker must not take these.
    queues = {kind: f'no-retry-{kind}' for kind in ('extract', 'train', 'classify')}
    client = Client(make_app(replace(load(), retry_max=0, queues=queues)))
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    msg = scenario.extract_msg(0)
    msg.image_loc = DataLocation('url', f'http://127.0.0.1:{free_port()}/img.png')
    task_id = client.submit('extract_features', msg)
    outcome = client.wait_result(task_id, 30)
    assert outcome.error_type == 'URLDownloadError'
    kept = [e for e in dead_letters.entries(store_for(client.app)) if e['task_id'] == task_id]
    assert len(kept) == 1 and kept[0]['message'] == msg.serialize()


def test_wait_returns_a_stored_result_even_when_its_notification_is_lost(
        client, tmp_path, monkeypatch):
    """The backend's push can be missed; a stored result still ends the wait."""
    from celery.exceptions import TimeoutError as CeleryTimeout
    from celery.result import AsyncResult

    scenario = Scenario('filesystem', str(tmp_path))
    scenario.put_images()
    task_id = client.submit('extract_features', scenario.extract_msg(0))
    client.wait(task_id, 30)

    def never_notified(self, timeout=None, **kwargs):
        raise CeleryTimeout()

    monkeypatch.setattr(AsyncResult, 'get', never_notified)
    assert 'runtime' in client.wait(task_id, 5)
    with pytest.raises(TimeoutError, match='not finished after 0.2 s'):
        client.wait('no-such-task', 0.2)
