"""Messages and data classes against the JSON that pyspacer 0.14.0 wrote."""
import json

import pytest

from spacer import data_classes, messages
from spacer.exceptions import ClassPathError, MessageError
from tests.conftest import PYSPACER_FIXTURES

CLASSES = [
    data_classes.DataLocation, data_classes.ImageLabels, data_classes.ValResults,
    messages.ExtractFeaturesMsg, messages.ExtractFeaturesReturnMsg,
    messages.TrainClassifierMsg, messages.TrainClassifierReturnMsg,
    messages.ClassifyFeaturesMsg, messages.ClassifyImageMsg, messages.ClassifyReturnMsg,
    messages.JobMsg, messages.JobReturnMsg,
]


def as_json(obj) -> object:
    return json.loads(json.dumps(obj))


@pytest.mark.parametrize('cls', CLASSES, ids=lambda c: c.__name__)
def test_pyspacer_json_round_trips(cls):
    fixture = json.loads((PYSPACER_FIXTURES / 'messages' / f'{cls.__name__}.json').read_text())
    ours = cls.deserialize(fixture)
    assert as_json(ours.serialize()) == fixture
    assert ours == cls.example()
    assert as_json(cls.example().serialize()) == fixture


@pytest.mark.parametrize('cls', CLASSES, ids=lambda c: c.__name__)
def test_store_and_load(cls):
    loc = data_classes.DataLocation('memory', f'{cls.__name__}.json')
    cls.example().store(loc)
    assert cls.load(loc) == cls.example()


def test_training_task_labels_round_trip():
    labels = messages.TrainingTaskLabels.example()
    assert messages.TrainingTaskLabels.deserialize(as_json(labels.serialize())) == labels
    assert labels['train'] is labels.train
    with pytest.raises(KeyError):
        labels['test']


def test_data_location_properties():
    url = data_classes.DataLocation('url', 'https://h/a/b/img.png?x=1')
    assert url.filename == 'img.png' and url.is_remote and not url.is_writable
    s3 = data_classes.DataLocation('s3', 'a/b.jpg', 'bucket')
    assert s3.is_remote and s3.is_writable and s3.filename == 'b.jpg'
    assert {s3: 1}[data_classes.DataLocation('s3', 'a/b.jpg', 'bucket')] == 1


def test_classify_return_lookup():
    msg = messages.ClassifyReturnMsg.example()
    assert msg[(20, 40)] == [0.9, 0.06, 0.04]
    with pytest.raises(KeyError):
        msg[(1, 1)]


def test_legacy_trainer_name_key():
    data = messages.TrainClassifierMsg.example().serialize()
    data['trainer_name'] = data.pop('trainer')['class_path'] and 'minibatch'
    msg = messages.TrainClassifierMsg.deserialize(as_json(data))
    assert msg == messages.TrainClassifierMsg.example()


def test_legacy_image_labels_forms():
    loc = data_classes.DataLocation('s3', 'feats/1.fv', 'bkt')
    old = {'data': {'feats/1.fv': [[1, 2, 'a']]}}
    labels = data_classes.ImageLabels.deserialize(old, features_loc=loc)
    assert list(labels.keys()) == [loc] and labels[loc] == [(1, 2, 'a')]
    plain = data_classes.ImageLabels.deserialize({'/tmp/x.fv': [[1, 2, 3]]})
    assert list(plain.keys()) == [data_classes.DataLocation('filesystem', '/tmp/x.fv')]


@pytest.mark.parametrize('bad, fragment', [
    ({'storage_type': 'ftp', 'key': 'k'}, "'ftp'"),
    ({'storage_type': 's3', 'key': 'k'}, 'bucket_name'),
    ({'storage_type': 'memory'}, "'key'"),
    ({'storage_type': 'memory', 'key': 5}, 'string'),
    (['memory', 'k'], 'JSON object'),
])
def test_bad_locations(bad, fragment):
    with pytest.raises(MessageError, match=fragment):
        data_classes.DataLocation.deserialize(bad)


def test_bad_messages_name_the_cause():
    good = messages.ExtractFeaturesMsg.example().serialize()
    missing = dict(good)
    del missing['image_loc']
    with pytest.raises(MessageError, match="ExtractFeaturesMsg: missing key 'image_loc'"):
        messages.ExtractFeaturesMsg.deserialize(missing)
    with pytest.raises(MessageError, match='rowcols entry is empty'):
        messages.ExtractFeaturesMsg.deserialize({**good, 'rowcols': []})
    with pytest.raises(MessageError, match=r'\[row, col\] pair'):
        messages.ExtractFeaturesMsg.deserialize({**good, 'rowcols': [[1, 2, 3]]})
    with pytest.raises(MessageError, match='Write not supported'):
        messages.ExtractFeaturesMsg.deserialize(
            {**good, 'feature_loc': {'storage_type': 'url', 'key': 'http://x/y'}})
    with pytest.raises(MessageError, match="Unknown task_name 'paint'"):
        messages.JobMsg.deserialize({'task_name': 'paint', 'tasks': []})
    with pytest.raises(MessageError, match='JSON object'):
        messages.ClassifyFeaturesMsg.deserialize('not a dict')


def test_unknown_class_path_is_refused():
    data = messages.ExtractFeaturesMsg.example().serialize()
    data['extractor']['class_path'] = 'os.system'
    with pytest.raises(ClassPathError, match="'os.system' is not allowed"):
        messages.ExtractFeaturesMsg.deserialize(data)
    train = messages.TrainClassifierMsg.example().serialize()
    train['trainer'] = {'class_path': 'subprocess.Popen'}
    with pytest.raises(ClassPathError, match='subprocess.Popen'):
        messages.TrainClassifierMsg.deserialize(train)


def test_malformed_json_in_storage():
    from io import BytesIO

    from spacer.storage import storage_factory
    storage_factory('memory').store('bad.json', BytesIO(b'{"job_token": '))
    with pytest.raises(MessageError, match='not valid JSON'):
        messages.ClassifyFeaturesMsg.load(data_classes.DataLocation('memory', 'bad.json'))
