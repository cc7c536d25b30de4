"""The translation of old forms into the current classes, edge by edge."""
from __future__ import annotations

import json
import warnings

import pytest

from spacer import data_classes, extractors, messages
from spacer.data_classes import DataLocation, ImageLabels
from spacer.exceptions import ClassPathError, MessageError
from spacer.legacy import split_legacy_train
from spacer.messages import TrainClassifierMsg


def _labels(count: int, order=None, points: int = 2) -> ImageLabels:
    """Images f00..f<count>, each holding classes 1 and 2 (and 3 for odd images)."""
    order = order if order is not None else range(count)
    return ImageLabels({
        DataLocation('filesystem', f'f{i:02d}'):
            [(r, r, 1 + (r % (3 if i % 2 else 2))) for r in range(points)]
        for i in order})


def _06_args(**overrides) -> dict:
    args = dict(job_token='t', trainer_name='minibatch', nbr_epochs=1, clf_type='LR',
                train_labels=ImageLabels(data={f'feats/{i}.fv': [(1, 1, 1), (2, 2, 2)]
                                               for i in range(12)}),
                val_labels=ImageLabels(data={'feats/v.fv': [(1, 1, 1)]}),
                features_loc=DataLocation('s3', '', 'my-bucket'),
                previous_model_locs=[DataLocation('memory', 'old.pkl')],
                model_loc=DataLocation('memory', 'model.pkl'),
                valresult_loc=DataLocation('memory', 'valresult.json'))
    args.update(overrides)
    return args


@pytest.fixture(autouse=True)
def _quiet(fresh_legacy_warnings):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        yield


# --- 0.6's reference set --------------------------------------------------------------------

def test_ref_is_every_tenth_image_in_the_labels_own_order():
    order = [7, 3, 21, 0, 14, 9, 1, 2, 4, 5, 6, 8, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 22]
    labels = _labels(23, order)
    train, ref = split_legacy_train(labels)
    want = {DataLocation('filesystem', f'f{order[i]:02d}') for i in (0, 10, 20)}
    assert set(ref.keys()) == want
    assert list(train.keys()) == [k for k in labels.keys() if k not in want]
    assert split_legacy_train(labels)[1].keys() == ref.keys()  # seeded: the same twice


def test_ref_is_capped_by_label_count():
    labels = _labels(100, points=4)  # every 10th: 10 images of 4 labels
    train, ref = split_legacy_train(labels, batch_label_count=12)
    assert len(ref) == 3 and len(train) == 97


def test_too_few_images_train_doubles_as_ref():
    labels = ImageLabels({DataLocation('filesystem', 'a'): [(1, 1, 1), (2, 2, 2)],
                          DataLocation('filesystem', 'b'): [(1, 1, 3), (2, 2, 4)]})
    train, ref = split_legacy_train(labels)
    assert train == labels and ref == labels


# --- TrainClassifierMsg's 0.6 constructor forms ---------------------------------------------

def test_06_keywords_relocate_plain_keys_to_features_loc_storage():
    msg = TrainClassifierMsg(**_06_args())
    keys = [*msg.labels.train.keys(), *msg.labels.ref.keys(), *msg.labels.val.keys()]
    assert len(keys) == 13
    assert all(k.storage_type == 's3' and k.bucket_name == 'my-bucket' for k in keys)
    assert sorted(k.key for k in msg.labels.ref.keys()) == ['feats/0.fv', 'feats/10.fv']
    assert msg.trainer == TrainClassifierMsg.example().trainer  # 'minibatch'


def test_06_positional_form_equals_keyword_form():
    args = _06_args()
    assert TrainClassifierMsg(*args.values()) == TrainClassifierMsg(**args)
    current = TrainClassifierMsg(**args).serialize()
    assert TrainClassifierMsg.deserialize(json.loads(json.dumps(current))).serialize() == current


def test_06_positional_form_needs_all_ten():
    with pytest.raises(MessageError, match='ten arguments'):
        TrainClassifierMsg(*list(_06_args().values())[:9])
    with pytest.raises(TypeError, match='at most 10 positional'):
        TrainClassifierMsg(*TrainClassifierMsg.example().serialize().values(), 'extra', 'more')


def test_train_labels_without_val_labels_is_refused():
    with pytest.raises(MessageError, match='go together'):
        TrainClassifierMsg(**_06_args(val_labels=None))


def test_unknown_trainer_name_is_refused():
    with pytest.raises(ClassPathError):
        TrainClassifierMsg(**_06_args(trainer_name='bogus'))


def test_06_json_becomes_current_json():
    stored = {k: v.serialize() if hasattr(v, 'serialize') else v for k, v in _06_args().items()}
    stored['previous_model_locs'] = [loc.serialize() for loc in _06_args()['previous_model_locs']]
    for name in ('train_labels', 'val_labels'):  # 0.6 wrote {"data": {key: [...]}}
        stored[name] = {'data': {loc.key: [list(a) for a in anns]
                                 for loc, anns in _06_args()[name].items()}}
    msg = TrainClassifierMsg.deserialize(json.loads(json.dumps(stored)))
    assert msg == TrainClassifierMsg(**_06_args())
    assert 'labels' in msg.serialize() and 'train_labels' not in msg.serialize()


# --- names that moved ------------------------------------------------------------------------

def test_moved_names_are_the_current_classes():
    import spacer.extract_features as old_module
    for name in ('FeatureExtractor', 'EfficientNetExtractor', 'VGG16CaffeExtractor',
                 'DummyExtractor'):
        assert getattr(old_module, name) is getattr(extractors, name)
    assert messages.DataLocation is data_classes.DataLocation
    with pytest.raises(AttributeError, match='no attribute'):
        old_module.NoSuchExtractor  # noqa: B018
    with pytest.raises(AttributeError, match='no attribute'):
        messages.NoSuchName  # noqa: B018


@pytest.mark.parametrize('name', ['EfficientNetExtractor', 'VGG16CaffeExtractor',
                                  'DummyExtractor'])
def test_06_extractor_class_paths_in_stored_messages(name):
    current = messages.ExtractFeaturesMsg.example().serialize()
    stored = json.loads(json.dumps(current))
    cls = getattr(extractors, name)
    stored['extractor'] = {'class_path': f'spacer.extract_features.{name}',
                           'data_locations': {}, 'data_hashes': {}}
    if name != 'DummyExtractor':
        stored['extractor']['data_locations'] = {
            key: DataLocation('filesystem', f'/x/{key}').serialize()
            for key in cls.DATA_LOCATION_KEYS}
    msg = messages.ExtractFeaturesMsg.deserialize(stored)
    assert type(msg.extractor) is cls


def test_image_labels_json_forms():
    loc = DataLocation('filesystem', '/f/1.fv')
    current = ImageLabels({loc: [(1, 2, 3)]})
    assert ImageLabels.deserialize({'data': {'/f/1.fv': [[1, 2, 3]]}}) == current  # 0.6
    assert ImageLabels.deserialize({'/f/1.fv': [[1, 2, 3]]}) == current  # 0.7-0.12
    assert ImageLabels.deserialize(current.serialize()) == current  # 0.13 on
    with pytest.raises(MessageError, match='not a DataLocation'):
        ImageLabels.deserialize({'{"storage_type": "filesystem"': [[1, 2, 3]]})


def test_07_to_012_json_takes_storage_from_features_loc():
    """Before 0.13 a label key was a plain path; features_loc held the storage."""
    stored = TrainClassifierMsg.example().serialize()
    stored.pop('trainer')
    stored['trainer_name'] = 'minibatch'
    stored['features_loc'] = {'storage_type': 's3', 'key': '', 'bucket_name': 'bkt'}
    stored['labels'] = {s: {f'feats/{s}.fv': [[1, 1, 1], [2, 2, 2]]}
                        for s in ('train', 'ref', 'val')}
    msg = TrainClassifierMsg.deserialize(json.loads(json.dumps(stored)))
    for s in ('train', 'ref', 'val'):
        assert list(msg.labels[s].keys()) == [DataLocation('s3', f'feats/{s}.fv', 'bkt')]
    assert 'features_loc' not in msg.serialize()
