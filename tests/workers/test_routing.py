"""Task names, queue kinds, queue declarations, and the Celery settings built from them."""
from __future__ import annotations

import pytest

from spacer.exceptions import ConfigError, MessageError
from workers import routing
from workers.app import celery_config, make_app
from workers.settings import load


@pytest.fixture
def settings(monkeypatch):
    for name in ('BROKER_URL', 'RESULT_BACKEND'):
        monkeypatch.delenv('SPACER_' + name, raising=False)
    return load()


@pytest.mark.parametrize('task, kind', [
    ('extract_features', 'extract'), ('spacer.classify_image', 'extract'),
    ('train_classifier', 'train'), ('classify_features', 'classify'),
])
def test_kind_of_each_task(task, kind):
    assert routing.kind_for(task) == kind


def test_process_job_goes_where_its_task_goes():
    assert routing.kind_for('process_job', {'task_name': 'train_classifier', 'tasks': []}) \
        == 'train'
    assert routing.kind_for('process_job', {'task_name': 'classify_image', 'tasks': []}) \
        == 'extract'
    with pytest.raises(MessageError, match='task_name'):
        routing.kind_for('process_job', {'task_name': 'nap', 'tasks': []})
    with pytest.raises(MessageError):
        routing.kind_for('process_job', {'tasks': []})


def test_unknown_task_name():
    with pytest.raises(ValueError, match="Unknown task 'extract'"):
        routing.full_name('extract')


def test_task_names_of_the_wrong_type_are_named():
    with pytest.raises(TypeError, match='must be a string, not int'):
        routing.full_name(7)
    with pytest.raises(MessageError, match=r"task_name \['x'\] is not one of"):
        routing.kind_for('process_job', {'task_name': ['x'], 'tasks': []})


def test_task_name_from_message_shape():
    loc = {'storage_type': 'memory', 'key': 'k'}
    assert routing.task_name_for({'task_name': 'extract_features', 'tasks': []}) \
        == 'spacer.process_job'
    assert routing.task_name_for({'extractor': {}, 'image_loc': loc, 'feature_loc': loc,
                                  'rowcols': [], 'job_token': 't'}) \
        == 'spacer.extract_features'
    assert routing.task_name_for({'extractor': {}, 'image_loc': loc, 'classifier_loc': loc,
                                  'rowcols': [], 'job_token': 't'}) == 'spacer.classify_image'
    assert routing.task_name_for({'feature_loc': loc, 'classifier_loc': loc,
                                  'job_token': 't'}) == 'spacer.classify_features'
    assert routing.task_name_for({'labels': {}, 'model_loc': loc, 'job_token': 't'}) \
        == 'spacer.train_classifier'
    with pytest.raises(MessageError, match='match no spacer message'):
        routing.task_name_for({'hello': 1})


def test_each_queue_has_its_own_exchange(settings):
    queues = routing.declare_queues(settings)
    assert [(q.name, q.exchange.name, q.routing_key) for q in queues] == [
        ('extract', 'extract', 'extract'), ('train', 'train', 'train'),
        ('classify', 'classify', 'classify')]


def test_router_routes_raw_send_task(settings):
    router = routing.Router(settings)
    assert router('spacer.train_classifier', [{}], {}, {})['queue'] == 'train'
    assert router('spacer.process_job', [{'task_name': 'classify_features', 'tasks': []}],
                  {}, {})['queue'] == 'classify'
    assert router('celery.ping', [], {}, {}) is None


def test_delivery_guarantees_and_json_only(settings, monkeypatch):
    monkeypatch.setattr('spacer.config.BROKER_URL', 'redis://127.0.0.1:6379/5')
    conf = celery_config(load())
    assert conf['accept_content'] == ['json'] and conf['task_serializer'] == 'json'
    assert conf['result_accept_content'] == ['json']
    assert conf['task_acks_late'] and conf['task_reject_on_worker_lost']
    assert conf['worker_prefetch_multiplier'] == 1
    assert conf['result_backend'] == 'redis://127.0.0.1:6379/5'
    # The visibility timeout outlasts the longest hard limit (train's).
    longest_hard = load().hard_limit('train')
    assert conf['broker_transport_options']['visibility_timeout'] > longest_hard


def test_embedded_when_no_broker(settings):
    assert settings.embedded
    app = make_app(settings)
    assert app.conf.broker_url == 'memory://localhost/'
    assert app.conf.result_backend == 'cache+memory://'
    assert app.conf.broker_transport_options['polling_interval'] < 0.1


def test_time_limits_per_queue(monkeypatch):
    monkeypatch.setenv('SPACER_CLASSIFY_TIME_LIMIT', '30')
    monkeypatch.setenv('SPACER_TIME_LIMIT_GRACE', '5')
    settings = load()
    assert settings.limits('classify') == (30, 35)
    assert settings.limits('train') == (10800, 10805)
    assert settings.visibility_timeout == 10805 + 3600


def test_visibility_timeout_shorter_than_a_hard_limit_is_refused(monkeypatch):
    monkeypatch.setenv('SPACER_VISIBILITY_TIMEOUT', '600')
    with pytest.raises(ConfigError, match='VISIBILITY_TIMEOUT'):
        load()


def test_queue_names_must_differ(monkeypatch):
    from spacer import config
    monkeypatch.setattr(config, 'QUEUE_TRAIN', 'classify')
    with pytest.raises(ConfigError, match='must differ'):
        load()


def test_worker_defaults_are_the_documented_ones(monkeypatch):
    """The worker layer takes its defaults from its one table
    (workers.settings.WORKER_SETTING_TABLE, the README's), so changing a
    documented default changes the worker."""
    from spacer import config
    from workers import settings as worker_settings
    documented = dict(worker_settings.WORKER_SETTINGS_BY_NAME)
    documented['RETRY_MAX'] = config.Setting(
        'RETRY_MAX', int, 7, documented['RETRY_MAX'].help)
    monkeypatch.setattr(worker_settings, 'WORKER_SETTINGS_BY_NAME', documented)
    monkeypatch.delenv('SPACER_RETRY_MAX', raising=False)
    assert load().retry_max == 7
    assert load().dedup_ttl == documented['DEDUP_TTL'].default


def test_every_task_of_the_table_is_a_celery_task_routed_to_its_queue(settings):
    """Routing and the Celery tasks derive from the one task table: an entry
    there is enough for a task to be registered and routed."""
    from spacer.messages import task_message_class
    from spacer.task_table import TASKS
    from workers import celery_tasks

    for name, spec in TASKS.items():
        full = routing.PREFIX + name
        assert full in celery_tasks.app.tasks
        assert routing.queue_for(full, None, settings) == settings.queues[spec.queue_kind]
        example = task_message_class(name).example()
        assert routing.task_name_for(example) == full
        assert routing.task_name_for(example.serialize()) == full
    assert set(routing.TASK_NAMES) == {routing.PREFIX + n for n in TASKS} | {routing.PROCESS_JOB}
