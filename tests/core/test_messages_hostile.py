"""Malformed messages are refused when built, naming the field, before any work."""
from __future__ import annotations

import json
import warnings

import pytest

from spacer import tasks
from spacer.data_classes import DataLocation, ImageLabels
from spacer.exceptions import MessageError
from spacer.extractors import DummyExtractor
from spacer.messages import (
    ClassifyFeaturesMsg, ClassifyImageMsg, ExtractFeaturesMsg, JobMsg, JobReturnMsg,
    TrainClassifierMsg, TrainingTaskLabels)

URL = DataLocation('url', 'http://x/y')
MEM = DataLocation('memory', 'a')


def as_json(obj) -> object:
    return json.loads(json.dumps(obj))


def extract_msg(**overrides) -> ExtractFeaturesMsg:
    args = dict(job_token='t', extractor=DummyExtractor(feature_dim=4), rowcols=[(1, 1)],
                image_loc=DataLocation('memory', 'img.jpg'),
                feature_loc=DataLocation('memory', 'img.npz'))
    args.update(overrides)
    return ExtractFeaturesMsg(**args)


def train_args(**overrides) -> dict:
    args = dict(job_token='t', trainer='minibatch', nbr_epochs=1, clf_type='LR',
                labels=TrainingTaskLabels.example(), previous_model_locs=[],
                model_loc=DataLocation('memory', 'model.pkl'),
                valresult_loc=DataLocation('memory', 'valresult.json'))
    args.update(overrides)
    return args


def train_06_json(**overrides) -> dict:
    """TrainClassifierMsg JSON as pyspacer 0.6 wrote it."""
    data = {'job_token': 't', 'trainer_name': 'minibatch', 'nbr_epochs': 1, 'clf_type': 'LR',
            'train_labels': {'data': {f'f{i}.fv': [[1, 1, 1], [2, 2, 2]] for i in range(4)}},
            'val_labels': {'data': {'v.fv': [[1, 1, 1]]}},
            'features_loc': {'storage_type': 'filesystem', 'key': '', 'bucket_name': None},
            'previous_model_locs': [],
            'model_loc': {'storage_type': 'memory', 'key': 'm.pkl', 'bucket_name': None},
            'valresult_loc': {'storage_type': 'memory', 'key': 'v.json', 'bucket_name': None}}
    data.update(overrides)
    return data


@pytest.fixture(autouse=True)
def _quiet_legacy():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        yield


# --- A: outputs must be writable ------------------------------------------------------------

@pytest.mark.parametrize('field', ['model_loc', 'valresult_loc'])
def test_train_url_output_is_refused_before_training(field, tmp_path):
    precious = tmp_path / 'precious.pkl'
    precious.write_bytes(b'precious')
    args = train_args(model_loc=DataLocation('filesystem', str(precious)))
    args[field] = URL
    with pytest.raises(MessageError, match=f'{field}: Write not supported'):
        TrainClassifierMsg(**args)
    data = TrainClassifierMsg(**train_args()).serialize()
    data[field] = URL.serialize()
    with pytest.raises(MessageError, match=field):
        TrainClassifierMsg.deserialize(as_json(data))
    assert precious.read_bytes() == b'precious'


def test_train_outputs_must_not_overwrite_each_other_or_features():
    same = DataLocation('memory', 'out')
    with pytest.raises(MessageError, match='valresult_loc and model_loc'):
        TrainClassifierMsg(**train_args(model_loc=same, valresult_loc=same))
    feature_file = next(iter(TrainingTaskLabels.example().val.keys()))
    with pytest.raises(MessageError, match="model_loc .* feature file of the train labels"):
        TrainClassifierMsg(**train_args(model_loc=feature_file))


def test_a_model_over_a_feature_file_is_refused_however_its_path_is_spelt(tmp_path):
    features = DataLocation('filesystem', str(tmp_path / 'a.featurevector'))
    labels = TrainingTaskLabels.example()
    labels.train.add_image(features, [(1, 1, 1)])
    spelt_otherwise = DataLocation('filesystem', f'{tmp_path}/./a.featurevector')
    with pytest.raises(MessageError, match='feature file of the train labels'):
        TrainClassifierMsg(**train_args(labels=labels, model_loc=spelt_otherwise))


def test_extract_url_output_names_the_field():
    with pytest.raises(MessageError, match='feature_loc: Write not supported'):
        extract_msg(feature_loc=URL)


# --- B: features must not replace the image ---------------------------------------------------

def test_feature_loc_equal_to_image_loc_is_refused(tmp_path):
    image = tmp_path / 'img.jpg'
    with pytest.raises(MessageError, match='feature_loc and image_loc'):
        extract_msg(image_loc=DataLocation('filesystem', str(image)),
                    feature_loc=DataLocation('filesystem', str(image)))
    # The same file spelt another way.
    with pytest.raises(MessageError, match='feature_loc and image_loc'):
        extract_msg(image_loc=DataLocation('filesystem', str(image)),
                    feature_loc=DataLocation('filesystem', f'{tmp_path}//./img.jpg'))


def test_feature_loc_equal_to_extractor_weights_is_refused():
    from spacer.extractors import EfficientNetExtractor
    weights = DataLocation('filesystem', '/models/weights.pt')
    extractor = EfficientNetExtractor(data_locations={'weights': weights})
    with pytest.raises(MessageError,
                       match=r"feature_loc and extractor data_locations\['weights'\]"):
        extract_msg(extractor=extractor, feature_loc=weights)


# --- C: types of the task arguments and message fields -----------------------------------------

@pytest.mark.parametrize('function, message', [
    (tasks.extract_features, 'ExtractFeaturesMsg'),
    (tasks.train_classifier, 'TrainClassifierMsg'),
    (tasks.classify_features, 'ClassifyFeaturesMsg'),
    (tasks.classify_image, 'ClassifyImageMsg'),
])
@pytest.mark.parametrize('bad', [None, {'job_token': 't'}], ids=['None', 'dict'])
def test_task_functions_refuse_what_is_not_their_message(function, message, bad):
    with pytest.raises(TypeError, match=f'{function.__name__} takes an? {message}, not'):
        function(bad)


def test_task_function_refuses_serialized_message():
    with pytest.raises(TypeError, match='extract_features takes an ExtractFeaturesMsg, not dict'):
        tasks.extract_features(extract_msg().serialize())


@pytest.mark.parametrize('build, field', [
    (lambda: extract_msg(image_loc='/path/img.jpg'), 'image_loc'),
    (lambda: extract_msg(feature_loc='/path/img.npz'), 'feature_loc'),
    (lambda: ClassifyFeaturesMsg('t', '/f.npz', MEM), 'feature_loc'),
    (lambda: ClassifyFeaturesMsg('t', MEM, {'storage_type': 'memory', 'key': 'c'}),
     'classifier_loc'),
    (lambda: ClassifyImageMsg('t', DummyExtractor(), [(1, 1)], 'img', MEM), 'image_loc'),
    (lambda: ClassifyImageMsg('t', DummyExtractor(), [(1, 1)], MEM, None), 'classifier_loc'),
    (lambda: TrainClassifierMsg(**train_args(model_loc='x')), 'model_loc'),
    (lambda: TrainClassifierMsg(**train_args(valresult_loc='y')), 'valresult_loc'),
    (lambda: TrainClassifierMsg(**train_args(previous_model_locs=[MEM, 'old.pkl'])),
     r'previous_model_locs\[1\]'),
    (lambda: TrainClassifierMsg(**train_args(previous_model_locs=MEM)), 'previous_model_locs'),
])
def test_locations_must_be_data_locations(build, field):
    with pytest.raises(MessageError, match=f'{field} must be a'):
        build()


@pytest.mark.parametrize('extractor', [None, 'efficientnet', DummyExtractor().serialize()],
                         ids=['None', 'str', 'dict'])
def test_extractor_must_be_a_feature_extractor(extractor):
    with pytest.raises(MessageError, match='ExtractFeaturesMsg: extractor must be a Feature'):
        extract_msg(extractor=extractor)
    with pytest.raises(MessageError, match='ClassifyImageMsg: extractor must be a Feature'):
        ClassifyImageMsg('t', extractor, [(1, 1)], MEM, MEM)


def test_feature_cache_dir_must_be_a_path():
    with pytest.raises(MessageError, match='feature_cache_dir'):
        TrainClassifierMsg(**train_args(feature_cache_dir=5))


def test_job_msg_checks_its_tasks():
    classify = ClassifyFeaturesMsg('c', MEM, MEM)
    with pytest.raises(MessageError, match='tasks must be a list'):
        JobMsg('extract_features', None)
    with pytest.raises(MessageError,
                       match=r"tasks\[1\] is a ClassifyFeaturesMsg.*'extract_features'"):
        JobMsg('extract_features', [extract_msg(), classify])
    with pytest.raises(MessageError, match=r'tasks\[0\] is a dict'):
        JobMsg('extract_features', [extract_msg().serialize()])
    with pytest.raises(MessageError, match='Unknown task_name'):
        JobMsg('process_job', [])
    with pytest.raises(MessageError, match='Unknown task_name'):
        JobMsg({}, [])
    good = extract_msg().serialize()
    with pytest.raises(MessageError, match=r'JobMsg.tasks\[1\]: .*JSON object'):
        JobMsg.deserialize({'task_name': 'extract_features', 'tasks': [good, None]})


@pytest.mark.parametrize('token', [None, True, ['t'], {'t': 1}, b't'],
                         ids=['None', 'bool', 'list', 'dict', 'bytes'])
@pytest.mark.parametrize('build', [
    lambda token: extract_msg(job_token=token),
    lambda token: ClassifyFeaturesMsg(token, MEM, MEM),
    lambda token: ClassifyImageMsg(token, DummyExtractor(), [(1, 1)], MEM, MEM),
    lambda token: TrainClassifierMsg(**train_args(job_token=token)),
], ids=['extract', 'classify_features', 'classify_image', 'train'])
def test_job_token_must_be_a_string_or_an_integer(build, token):
    with pytest.raises(MessageError, match='job_token must be a string or an integer'):
        build(token)


@pytest.mark.parametrize('token', ['', 'image-7', 7])
def test_job_tokens_pyspacer_callers_use_are_kept(token):
    msg = ClassifyFeaturesMsg(token, MEM, MEM)
    assert ClassifyFeaturesMsg.deserialize(msg.serialize()).job_token == token


def test_a_job_may_be_given_a_tuple_of_tasks():
    msg = extract_msg()
    assert JobMsg('extract_features', (msg,)).tasks == [msg]


# --- D: the trainer and the 0.6 training JSON ----------------------------------------------------

@pytest.mark.parametrize('trainer', [5, {'class_path': 'os.system'}, ['minibatch']],
                         ids=['int', 'dict', 'list'])
def test_trainer_must_be_a_name_or_a_trainer(trainer):
    with pytest.raises(MessageError, match='trainer must be a ClassifierTrainer or a trainer name'):
        TrainClassifierMsg(**train_args(trainer=trainer))
    with pytest.raises(MessageError, match='trainer must be a ClassifierTrainer or a trainer name'):
        TrainClassifierMsg.deserialize(train_06_json(trainer_name=trainer))


def test_06_json_still_loads():
    msg = TrainClassifierMsg.deserialize(train_06_json())
    trainer = msg.serialize()['trainer']
    assert trainer == {'class_path': 'spacer.train_classifier.MiniBatchTrainer'}
    assert TrainClassifierMsg.deserialize(as_json(msg.serialize())) == msg


@pytest.mark.parametrize('previous', [None, 5, 'm.pkl', [{'key': 'x'}]])
def test_06_previous_model_locs_must_be_a_list_of_locations(previous):
    with pytest.raises(MessageError, match='previous_model_locs'):
        TrainClassifierMsg.deserialize(train_06_json(previous_model_locs=previous))


def test_06_constructor_form_checks_label_types():
    with pytest.raises(MessageError, match='train_labels must be an ImageLabels'):
        TrainClassifierMsg(job_token='t', trainer_name='minibatch', nbr_epochs=1,
                           clf_type='LR', train_labels={'f.fv': [[1, 1, 1]]},
                           val_labels=ImageLabels(), features_loc=MEM,
                           previous_model_locs=[], model_loc=DataLocation('memory', 'm'),
                           valresult_loc=DataLocation('memory', 'v'))


# --- E: JobReturnMsg results ------------------------------------------------------------------

def test_job_return_results_must_be_a_list():
    job = JobMsg('extract_features', [extract_msg()]).serialize()
    with pytest.raises(MessageError, match="results must be a list"):
        JobReturnMsg.deserialize({'original_job': job, 'ok': True, 'results': 5})
    with pytest.raises(MessageError, match=r'JobReturnMsg.results\[0\]'):
        JobReturnMsg.deserialize({'original_job': job, 'ok': True, 'results': [None]})
    failed = {'original_job': job, 'ok': False, 'results': None, 'error_message': 'boom'}
    assert JobReturnMsg.deserialize(failed).serialize() == failed
