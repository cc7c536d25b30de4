"""
The names spacer added for pyspacer 0.14's surface behave as pyspacer's:
each compared with what the real pyspacer gave on the same input
(``names_behaviour.json``, made by ``tests/fixtures/pyspacer/record_names.py``).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from spacer import config
from spacer.data_classes import DataLocation
from spacer.extractors.dummy import DummyExtractor
from spacer.exceptions import ConfigError, HashMismatchError
from tests.conftest import FIXTURES, PYSPACER_FIXTURES

ROOT = FIXTURES.parent.parent

RECORDED = json.loads((PYSPACER_FIXTURES / 'names_behaviour.json').read_text())


def run_fresh(code: str, **env: str) -> str:
    """stdout of ``code`` in a fresh interpreter, with only ``env`` for
    spacer's and AWS's settings (no secrets, no Django, no AWS files)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(('SPACER_', 'AWS_'))}
    clean.update(env, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    done = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_config_values_and_detection_result():
    out = json.loads(run_fresh(
        "import json; from spacer import config; print(json.dumps(dict("
        "detection_result=config.get_config_detection_result(), HAS_CAFFE=config.HAS_CAFFE,"
        " CN_FIXTURES_BUCKET=config.CN_FIXTURES_BUCKET,"
        " CN_TEST_EXTRACTORS_BUCKET=config.CN_TEST_EXTRACTORS_BUCKET,"
        " SECRETS=config.SECRETS, SETTINGS_FROM_DJANGO=config.SETTINGS_FROM_DJANGO)))"))
    assert out == RECORDED['config']


def test_config_buckets_are_settings():
    out = run_fresh("from spacer import config; print(config.CN_FIXTURES_BUCKET,"
                    " 'CN_FIXTURES_BUCKET' in config.CONFIGURABLE_VARS)",
                    SPACER_CN_FIXTURES_BUCKET='cn-fixtures')
    assert out.split() == ['cn-fixtures', 'True']


def test_filter_warnings_adds_pyspacers_filters():
    with warnings.catch_warnings():
        before = list(warnings.filters)
        config.filter_warnings()
        added = [[f[0], f[1].pattern if f[1] else None, f[2].__name__]
                 for f in warnings.filters if f not in before]
    assert sorted(added) == sorted(RECORDED['filter_warnings'])


def test_aws_session_and_resources_take_their_settings_from_config():
    code = ("import json; from spacer import aws\n"
            "c = aws.create_aws_session().get_credentials()\n"
            "print(json.dumps(dict(access_key=c.access_key, secret_key=c.secret_key,"
            " token=c.token,"
            " s3_region=aws.create_aws_resource('s3').meta.client.meta.region_name,"
            " other_region=aws.create_aws_resource('s3', 'ap-south-1').meta.client.meta.region_name,"
            " same_resource=aws.get_s3_resource() is aws.get_s3_resource())))")
    out = json.loads(run_fresh(code, **RECORDED['_about']['aws_env']))
    assert out == RECORDED['aws']


def test_aws_check_prints_which_settings_are_set_never_their_values():
    out = run_fresh("from spacer import aws; aws.aws_check()",
                    SPACER_AWS_ANONYMOUS='True')
    assert 'without credentials' in out
    env = dict(RECORDED['_about']['aws_env'], AWS_DEFAULT_REGION='eu-west-3',
               AWS_ENDPOINT_URL_STS='http://127.0.0.1:9')  # nothing listens there
    code = ("from spacer import aws\ntry:\n    aws.aws_check()\nexcept Exception as e:\n"
            "    print('raised', type(e).__name__)")
    out = run_fresh(code, **env)
    assert 'Spacer config - AWS_ACCESS_KEY_ID: Yes' in out
    assert 'Spacer config - AWS_PROFILE_NAME (highest priority if specified): No' in out
    assert 'raised EndpointConnectionError' in out  # AWS's own error, as it comes
    assert 'sekrit' not in out and 'AKIDEXAMPLE' not in out


@pytest.mark.parametrize('case', sorted(RECORDED['crop_simple']))
def test_crop_simple(case):
    from spacer.extractors.utils import crop_simple
    row, col, size = map(int, case.split(','))
    image = np.random.RandomState(0).randint(0, 256, (40, 50, 3)).astype(np.uint8)
    assert crop_simple(image, (row, col), size).tolist() == RECORDED['crop_simple'][case]


@pytest.mark.parametrize('mean', sorted(RECORDED['transformer']))
def test_vgg16_transformer(mean):
    from spacer.extractors.vgg16 import Transformer
    image = np.random.RandomState(0).randint(0, 256, (40, 50, 3)).astype(np.uint8)[:4, :5]
    expected = RECORDED['transformer'][mean]
    transformer = Transformer(tuple(json.loads(mean)))
    pre = transformer.preprocess(image.copy())
    assert str(pre.dtype) == expected['dtype']
    assert np.allclose(pre, expected['preprocess'], atol=1e-5)
    assert transformer.deprocess(pre.copy()).tolist() == expected['deprocess']


def test_vgg16_extractor_constants():
    from spacer.extractors.vgg16 import VGG16CaffeExtractor
    assert (VGG16CaffeExtractor.BATCH_SIZE, VGG16CaffeExtractor.START_LAYER,
            VGG16CaffeExtractor.SCORE_LAYER) == (10, 'conv1_1', 'fc7')


def test_classifier_unpickler_loads_pyspacers_classifier():
    from spacer.storage import ClassifierUnpickler
    with open(PYSPACER_FIXTURES / 'classifiers' / 'MLP.pkl', 'rb') as f:
        clf = ClassifierUnpickler(f, fix_imports=True, encoding='latin1').load()
    expected = RECORDED['unpickler']
    assert type(clf).__name__ == expected['type']
    assert clf.classes_.tolist() == expected['classes']
    assert ClassifierUnpickler.IMPORT_MAPPING == expected['IMPORT_MAPPING']


def test_classifier_unpickler_refuses_other_objects_as_a_value_error(tmp_path):
    import pickle

    from spacer.storage import ClassifierUnpickler
    with pytest.raises(ValueError, match='holds a dict'):
        ClassifierUnpickler(io.BytesIO(pickle.dumps({'a': 1}))).load()
    with pytest.raises(ValueError, match="names the global 'os.system'"):
        ClassifierUnpickler(io.BytesIO(b'cos\nsystem\n(S"true"\ntR.')).load()


def test_url_storage_timeout_is_the_setting_until_set(monkeypatch):
    from spacer.storage import URLStorage
    assert URLStorage.TIMEOUT == RECORDED['url_timeout']
    monkeypatch.setattr(config, 'URL_TIMEOUT', 7)
    assert URLStorage.TIMEOUT == 7 and URLStorage().timeout == 7
    monkeypatch.setattr(URLStorage, 'TIMEOUT', 3.5)
    assert URLStorage().timeout == 3.5


def test_label_id_is_exported_where_pyspacer_has_it():
    from spacer import task_utils, train_utils
    from spacer.data_classes import LabelId
    assert task_utils.LabelId is LabelId and train_utils.LabelId is LabelId


@pytest.fixture(scope='module')
def parity_split(tmp_path_factory):
    from spacer.task_utils import preprocess_labels
    from spacer.training.synthetic import make_source
    labels = make_source(tmp_path_factory.mktemp('train'), **RECORDED['_about']['train_data'])
    return preprocess_labels(labels)


@pytest.mark.parametrize('clf_type', ['MLP', 'LR'])
def test_minibatch_train_step_matches_pyspacers(parity_split, clf_type):
    from spacer.train_classifier import MiniBatchTrainer
    expected = RECORDED['_train'][clf_type]
    clf, ref_accs = MiniBatchTrainer()._train(
        parity_split.train, parity_split.ref, RECORDED['_about']['train_epochs'], clf_type)
    assert (type(clf).__name__, type(clf.estimator).__name__, clf.cv) == (
        expected['type'], expected['estimator'], expected['cv'])
    assert len(ref_accs) == len(expected['ref_accs'])
    assert abs(ref_accs[-1] - expected['ref_accs'][-1]) <= 0.01, (ref_accs, expected['ref_accs'])


def test_extractor_data_files_into_the_filesystem(tmp_path, monkeypatch):
    from spacer.storage import storage_factory
    monkeypatch.setattr(config, 'EXTRACTORS_CACHE_DIR', str(tmp_path / 'cache'))
    local = tmp_path / 'weights.bin'
    local.write_bytes(b'local weights')
    storage_factory('memory').store('weights.bin', io.BytesIO(b'memory weights'))
    digest = hashlib.sha256(b'memory weights').hexdigest()
    extractor = DummyExtractor(data_locations={
        'local': DataLocation('filesystem', str(local)),
        'memory': DataLocation('memory', 'weights.bin')}, data_hashes={'memory': digest})

    assert extractor.load_data_into_filesystem('local') == (str(local), False)
    path, downloaded = extractor.load_data_into_filesystem('memory')
    assert (open(path, 'rb').read(), downloaded) == (b'memory weights', False)
    assert str(extractor.data_filepath_for_cache('memory')) == path
    assert path.startswith(str(tmp_path / 'cache'))
    extractor._check_data_hash(b'memory weights', 'memory')
    extractor._check_data_hash(b'anything', 'local')  # no hash given: nothing to check
    with pytest.raises(HashMismatchError, match="'memory'"):
        extractor._check_data_hash(b'tampered', 'memory')
    extractor.decache_remote_loaded_file('memory')  # not remote: kept
    assert open(path, 'rb').read() == b'memory weights'

    monkeypatch.setattr(config, 'EXTRACTORS_CACHE_DIR', None)
    with pytest.raises(ConfigError, match='EXTRACTORS_CACHE_DIR'):
        extractor.data_filepath_for_cache('memory')
