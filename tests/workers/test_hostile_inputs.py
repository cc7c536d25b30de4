"""Malformed messages, message files and locations: a clear input error, never a crash."""
from __future__ import annotations

import errno
import json

import fakeredis
import pytest

import spacer.exceptions
from spacer.exceptions import MessageError
from spacer_cli.spacer_command import main
from spacer_cli.submit_command import load_message
from workers.job_state_store import RedisKeyStore
from workers import dedup
from workers.failure_kinds import Failure, classify

DUMMY = 'spacer.extractors.dummy.DummyExtractor'


def extract_json(**changes) -> dict:
    message = {'job_token': 'img-1', 'extractor': {'class_path': DUMMY, 'feature_dim': 4},
               'rowcols': [[1, 1]],
               'image_loc': {'storage_type': 'memory', 'key': 'img.jpg'},
               'feature_loc': {'storage_type': 'memory', 'key': 'img.npz'}}
    message.update(changes)
    return message


BAD_EXTRACTOR = {'class_path': DUMMY, 'data_locations': 5}


# --- workers.celery_tasks.parse: the safety net under every deserializer ---------

class Exploding:
    """A message class whose deserializer fails the way ``error`` says."""

    error: BaseException = AttributeError("'int' object has no attribute 'items'")

    @classmethod
    def deserialize(cls, data: dict) -> None:
        raise cls.error


def exploding(error: BaseException) -> type:
    return type('ExplodingMsg', (Exploding,), {'error': error})


@pytest.mark.parametrize('error', [
    AttributeError("'int' object has no attribute 'items'"),
    TypeError("'int' object is not iterable"), IndexError('list index out of range'),
    RecursionError('maximum recursion depth exceeded'), OSError(errno.ENAMETOOLONG, 'long'),
])
def test_parse_turns_any_deserializer_failure_into_a_message_error(error):
    from workers.celery_tasks import parse
    with pytest.raises(MessageError, match=f'Malformed ExplodingMsg: {type(error).__name__}') \
            as info:
        parse(exploding(error), {})
    assert info.value.__cause__ is error
    assert classify(info.value) == Failure.INPUT


@pytest.mark.parametrize('error', [MemoryError(), ConnectionError('broker gone')])
def test_parse_leaves_faults_that_are_not_the_messages(error):
    from workers.celery_tasks import parse
    with pytest.raises(type(error)):
        parse(exploding(error), {})


def test_parse_leaves_a_soft_time_limit_alone():
    from celery.exceptions import SoftTimeLimitExceeded
    from workers.celery_tasks import parse
    with pytest.raises(SoftTimeLimitExceeded):
        parse(exploding(SoftTimeLimitExceeded()), {})


def test_parse_keeps_a_huge_cause_short():
    from workers.celery_tasks import CAUSE_CHARS, parse
    with pytest.raises(MessageError) as info:
        parse(exploding(KeyError('x' * 100_000)), {})
    assert len(str(info.value)) < CAUSE_CHARS + 100


@pytest.mark.parametrize('message_class, message', [
    ('ExtractFeaturesMsg', extract_json(extractor=BAD_EXTRACTOR)),
    ('ExtractFeaturesMsg', extract_json(extractor={'class_path': DUMMY,
                                                   'data_locations': [1]})),
    ('JobMsg', {'task_name': 'extract_features',
                'tasks': [extract_json(extractor=BAD_EXTRACTOR)]}),
    ('JobMsg', {'task_name': 'extract_features', 'tasks': 5}),
])
def test_parse_of_malformed_nested_data_is_a_message_error(message_class, message):
    from spacer import messages
    from workers.celery_tasks import parse
    with pytest.raises(MessageError):
        parse(getattr(messages, message_class), message)


# --- dedup.job_key: never raises, whatever the message holds -------------

@pytest.mark.parametrize('task_name, message', [
    ('spacer.process_job', {'task_name': 'extract_features', 'tasks': 5}),
    ('spacer.process_job', {'task_name': 'extract_features', 'tasks': None}),
    ('spacer.process_job', {'task_name': 'extract_features', 'tasks': 'ab'}),
    ('spacer.process_job', {'task_name': 'extract_features', 'tasks': {'job_token': 'a'}}),
    ('spacer.process_job', {'task_name': 'extract_features', 'tasks': []}),
    ('spacer.process_job', {'task_name': 'extract_features', 'tasks': [None]}),
    ('spacer.process_job', {'task_name': 'extract_features', 'tasks': [{}]}),
    ('spacer.process_job', {'task_name': 'extract_features',
                            'tasks': [{'job_token': 'a'}, None]}),
    ('spacer.process_job', {'task_name': 'extract_features', 'tasks': [{'job_token': [1]}]}),
    ('spacer.process_job', {'task_name': ['x'], 'tasks': [{'job_token': 'a'}]}),
    ('spacer.extract_features', {'job_token': [1, 2]}),
    ('spacer.extract_features', {'job_token': {'a': 1}}),
    ('spacer.extract_features', {'job_token': True}),
    ('spacer.extract_features', {'job_token': 1.5}),
    ('spacer.extract_features', {'job_token': 10 ** 5000}),
    ('spacer.extract_features', 'a string'),
    ('spacer.extract_features', 5),
    (None, {'job_token': 'a'}),
    (5, {'job_token': 'a'}),
])
def test_malformed_messages_are_not_deduplicated(task_name, message):
    assert dedup.job_key(task_name, message) is None


def test_valid_keys_keep_their_form():
    job = {'task_name': 'extract_features', 'tasks': [{'job_token': 'a'}, {'job_token': 'b'}]}
    assert dedup.job_key('spacer.process_job', job) \
        == 'spacer:job:process_job:extract_features:a\x1fb'
    assert dedup.job_key('spacer.extract_features', {'job_token': 7}) \
        == 'spacer:job:extract_features:7'


@pytest.mark.parametrize('token', ['x' * 100_000, 'img-\ud800'])
def test_long_or_unencodable_tokens_are_hashed_and_storable(token):
    key = dedup.job_key('spacer.extract_features', {'job_token': token})
    assert len(key) < 120
    assert key != dedup.job_key('spacer.extract_features', {'job_token': token + 'y'})
    store = RedisKeyStore(fakeredis.FakeRedis())
    assert dedup.claim(store, key, 'task-1', ttl=60) is None
    assert dedup.holder(store, key) == 'task-1'


# --- the producer: a malformed JobMsg is sent for the worker to reject ----

@pytest.fixture
def sent(monkeypatch):
    """Client.submit with no worker: what it would send is recorded."""
    from workers.app import make_app
    from workers.client import Client
    from workers.settings import load
    client = Client(make_app(load()))
    calls: list[tuple] = []
    monkeypatch.setattr(client, '_ensure_worker', lambda: None)
    monkeypatch.setattr(client.app, 'send_task',
                        lambda name, args, **options: calls.append((name, args)))
    return client, calls


@pytest.mark.parametrize('tasks', [5, [None], None])
def test_submit_refuses_a_jobmsg_without_task_messages(sent, tasks):
    client, calls = sent
    with pytest.raises(MessageError, match="'tasks' must be a list"):
        client.submit('process_job', {'task_name': 'extract_features', 'tasks': tasks})
    assert not calls


@pytest.mark.parametrize('tasks', [[{}], [{'job_token': {'a': 1}}]])
def test_submit_of_a_jobmsg_with_bad_tokens_does_not_crash(sent, tasks):
    client, calls = sent
    client.submit('process_job', {'task_name': 'extract_features', 'tasks': tasks})
    assert calls and calls[0][0] == 'spacer.process_job'


# --- classify: a location that cannot be valid is bad input ---------------

def _param_validation_errors():
    import botocore.exceptions as bex
    return [bex.ParamValidationError(report='Invalid bucket name "a/b"'),
            bex.ParamValidationError(report='Invalid length for parameter Key, value: 0')]


@pytest.mark.parametrize('exc', _param_validation_errors() + [
    OSError(errno.ENAMETOOLONG, 'File name too long'),
    OSError(errno.ELOOP, 'Too many levels of symbolic links'),
    OSError(errno.ENOTDIR, 'Not a directory'), OSError(errno.EISDIR, 'Is a directory'),
])
def test_invalid_locations_are_input_errors(exc):
    assert classify(exc) == Failure.INPUT


def test_a_real_over_long_path_is_an_input_error(tmp_path):
    with pytest.raises(OSError) as info:
        (tmp_path / ('x' * 5000)).read_bytes()
    assert classify(info.value) == Failure.INPUT


# A full, read-only or failing disk is now transient (retried until the
# operator repairs it: tests/workers/test_failures.py); these are not.
@pytest.mark.parametrize('exc', [OSError(errno.EMFILE, 'Too many open files'),
                                 MemoryError()])
def test_machine_trouble_stays_internal(exc):
    assert classify(exc) == Failure.INTERNAL


# --- spacer submit: one line naming the file, a non-zero status -----------

def exit_text(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    text = str(info.value.code)
    assert info.value.code not in (0, None) and '\n' not in text
    return text


def test_submit_of_a_missing_file(tmp_path):
    path = tmp_path / 'nope.json'
    assert exit_text(['submit', str(path)]) \
        == f'spacer submit: cannot read {path}: No such file or directory.'


def test_submit_of_a_directory(tmp_path):
    assert exit_text(['submit', str(tmp_path)]) \
        == f'spacer submit: cannot read {tmp_path}: Is a directory.'


def test_submit_of_an_over_long_name(tmp_path):
    path = tmp_path / ('x' * 5000)
    assert 'File name too long' in exit_text(['submit', str(path)])


def test_submit_of_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / 'bin.json'
    path.write_bytes(b'\xff\xfe{')
    assert exit_text(['submit', str(path)]) \
        == f'spacer submit: {path} is not UTF-8 text (byte 0: invalid start byte).'


@pytest.mark.parametrize('content, expected', [
    ('[' * 100_000 + ']' * 100_000, 'nested too deeply'),
    ('[1, 2]', 'must hold a JSON object (a message), not a JSON array'),
    ('', 'is not JSON'),
])
def test_submit_of_json_that_is_no_message(tmp_path, content, expected):
    path = tmp_path / 'msg.json'
    path.write_text(content)
    text = exit_text(['submit', str(path)])
    assert str(path) in text and expected in text


def test_a_byte_order_mark_is_not_an_error(tmp_path):
    path = tmp_path / 'msg.json'
    path.write_bytes(b'\xef\xbb\xbf' + json.dumps({'job_token': 'a'}).encode())
    assert load_message(str(path)) == {'job_token': 'a'}


@pytest.mark.parametrize('error', [TypeError('A message must be a JSON dict'),
                                   MessageError('JobMsg tasks must be a list')])
def test_submit_reports_a_refused_message_in_one_line(tmp_path, monkeypatch, capsys, error):
    from workers.client import Client

    def refuse(*args, **kwargs):
        raise error
    monkeypatch.setattr(Client, 'submit', refuse)
    path = tmp_path / 'job5.json'
    path.write_text('{"task_name": "extract_features", "tasks": 5}')
    assert main(['submit', str(path)]) == 2
    assert capsys.readouterr().err == f'spacer submit: {path}: {error}\n'


def test_submit_of_a_malformed_jobmsg_is_refused_naming_the_file(tmp_path, monkeypatch,
                                                                 capsys):
    from workers.app import app
    from workers.client import Client
    sent = []
    monkeypatch.setattr(Client, '_ensure_worker', lambda self: None)
    monkeypatch.setattr(app, 'send_task', lambda name, args, **options: sent.append(name))
    path = tmp_path / 'job5.json'
    path.write_text('{"task_name": "extract_features", "tasks": 5}')
    assert main(['submit', str(path)]) == 2
    assert not sent
    err = capsys.readouterr().err
    assert 'job5.json' in err and "'tasks' must be a list" in err


def test_submit_reports_an_unreachable_broker(tmp_path, monkeypatch, capsys):
    from workers.client import Client

    def unreachable(*args, **kwargs):
        raise ConnectionRefusedError(111, 'Connection refused')
    monkeypatch.setattr(Client, 'submit', unreachable)
    path = tmp_path / 'msg.json'
    path.write_text(json.dumps(extract_json()))
    assert main(['submit', str(path)]) == 1
    assert 'cannot reach the broker: ConnectionRefusedError' in capsys.readouterr().err


# --- the embedded worker: malformed nested data fails as input, no dead letter

@pytest.fixture(scope='module')
def embedded():
    from spacer import config
    from workers.app import make_app
    from workers.client import Client
    from workers.settings import load
    assert not config.BROKER_URL, "these tests need the embedded default"
    return Client(make_app(load()))


@pytest.mark.parametrize('task, message', [
    ('extract_features', extract_json(job_token='dl5', extractor=BAD_EXTRACTOR)),
    ('process_job', {'task_name': 'extract_features', 'tasks': [{'job_token': 5}]}),
])
def test_malformed_nested_data_fails_as_input_without_a_dead_letter(embedded, task, message):
    from workers.job_state_store import store_for
    from workers import dead_letters
    store = store_for(embedded.app)
    before = dead_letters.count(store)
    outcome = embedded.wait_result(embedded.submit(task, message), 30)
    # Named after the exact class (a missing key: MissingKeyError, pyspacer's KeyError).
    assert outcome.state == 'FAILURE', outcome
    assert issubclass(getattr(spacer.exceptions, outcome.error_type), MessageError), outcome
    assert dead_letters.count(store) == before
