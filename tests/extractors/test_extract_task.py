"""
spacer.tasks.extract_features and classify_image with the EfficientNet
extractor: features stored as pyspacer stores them, and every kind of bad
input refused with a clear error before any network work.
"""
from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from spacer import config
from spacer.data_classes import DataLocation, ImageFeatures
from spacer.exceptions import (
    DataLimitError, HashMismatchError, ImageDecodeError, MessageError,
    RowColumnInvalidError)
from spacer.extractors import EfficientNetExtractor
from spacer.extractors.data_files import WeightsFormatError
from spacer.extractors.utils import crop_patches
from spacer.messages import (
    ClassifyImageMsg, ExtractFeaturesMsg, JobMsg)
from spacer.storage import storage_factory
from spacer.tasks import (
    classify_features, classify_image, extract_features, process_job)


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(config, 'DEVICE', 'cpu')


@pytest.fixture
def extractor(b0_weights_file):
    path, digest = b0_weights_file
    return EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': digest})


def photo() -> Image.Image:
    from sklearn.datasets import load_sample_images
    return Image.fromarray(load_sample_images().images[1])  # 427 x 640


def store_bytes(key: str, data: bytes) -> DataLocation:
    storage_factory('memory').store(key, BytesIO(data))
    return DataLocation('memory', key)


def encoded(im: Image.Image, fmt: str) -> bytes:
    stream = BytesIO()
    im.save(stream, fmt)
    return stream.getvalue()


def message(extractor, image_loc, rowcols):
    return ExtractFeaturesMsg(
        job_token='job', extractor=extractor, rowcols=rowcols,
        image_loc=image_loc,
        feature_loc=DataLocation('memory', 'out.featurevector'))


def test_extract_features_stores_reference_features(extractor,
                                                    reference_features):
    image_loc = store_bytes('photo.png', encoded(photo(), 'PNG'))
    rowcols = [(0, 0), (426, 639), (200, 300), (200, 300)]
    return_msg = extract_features(message(extractor, image_loc, rowcols))
    assert return_msg.extractor_loaded_remotely is False
    assert return_msg.runtime > 0
    stored = ImageFeatures.load(DataLocation('memory', 'out.featurevector'))
    assert stored.valid_rowcol and stored.feature_dim == 1280
    assert [(p.row, p.col) for p in stored.point_features] == rowcols
    expected = reference_features(crop_patches(photo(), rowcols))
    assert np.abs(np.array(stored.feat) - expected).max() <= 1e-4


def test_classify_image_scores_equal_classify_features(extractor):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import SGDClassifier

    from spacer.messages import ClassifyFeaturesMsg
    from spacer.storage import store_classifier

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 1280)), np.arange(60) % 3
    clf = CalibratedClassifierCV(
        SGDClassifier(loss="log_loss", random_state=0), cv=3)
    clf.fit(x, y)
    clf_loc = DataLocation('memory', 'clf.pkl')
    store_classifier(clf_loc, clf)
    image_loc = store_bytes('photo.jpg', encoded(photo(), 'JPEG'))
    rowcols = [(10, 10), (300, 500)]

    extract_features(message(extractor, image_loc, rowcols))
    via_features = classify_features(ClassifyFeaturesMsg(
        job_token='a', feature_loc=DataLocation('memory', 'out.featurevector'),
        classifier_loc=clf_loc))
    via_image = classify_image(ClassifyImageMsg(
        job_token='b', extractor=extractor, rowcols=rowcols,
        image_loc=image_loc, classifier_loc=clf_loc))
    assert via_image.classes == via_features.classes == [0, 1, 2]
    for (r1, c1, s1), (r2, c2, s2) in zip(via_image.scores,
                                          via_features.scores):
        assert (r1, c1) == (r2, c2)
        np.testing.assert_allclose(s1, s2, atol=1e-6)


# ---- bad images ----------------------------------------------------------

def _jpeg_bytes():
    return encoded(photo(), 'JPEG')


@pytest.mark.parametrize('name,data', [
    ('truncated.jpg', lambda: _jpeg_bytes()[:len(_jpeg_bytes()) // 2]),
    ('corrupt.jpg', lambda: _jpeg_bytes()[:600] + b'\x00' * 5000
     + _jpeg_bytes()[5600:]),
    ('truncated.png', lambda: encoded(photo(), 'PNG')[:20000]),
    ('corrupt.png', lambda: encoded(photo(), 'PNG')[:100] + b'garbage' * 50),
    ('notes.txt', lambda: b'this is not an image at all\n' * 20),
    ('empty.jpg', lambda: b''),
])
def test_bad_image_bytes(extractor, name, data):
    loc = store_bytes(name, data())
    with pytest.raises(ImageDecodeError, match=name.split('.')[0]):
        extract_features(message(extractor, loc, [(1, 1)]))


def test_decompression_bomb(extractor, monkeypatch):
    monkeypatch.setattr(config, 'MAX_IMAGE_PIXELS', 50_000)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 50_000)
    loc = store_bytes('bomb.png', encoded(Image.new('L', (2000, 2000)),
                                          'PNG'))
    with pytest.raises(DataLimitError, match='bomb.png'):
        extract_features(message(extractor, loc, [(1, 1)]))


# ---- bad points ----------------------------------------------------------

@pytest.fixture
def small_png():
    return store_bytes('small.png', encoded(Image.new('RGB', (50, 40)),
                                            'PNG'))


@pytest.mark.parametrize('rowcols,match', [
    ([(40, 0)], "Row value 40 falls outside this image's valid range"
                " of 0-39"),
    ([(0, 50)], "Column value 50 falls outside"),
    ([(-1, 0)], 'Row values must be non-negative'),
    ([(0, -7)], 'Column values must be non-negative'),
    ([(1.5, 0)], 'Row values must be integers'),
    ([(0, 2.0)], 'Column values must be integers'),
])
def test_bad_points(extractor, small_png, rowcols, match):
    with pytest.raises(RowColumnInvalidError, match=match):
        extract_features(message(extractor, small_png, rowcols))


def test_too_many_points(extractor, small_png):
    with pytest.raises(DataLimitError, match='1001 point locations'):
        extract_features(message(extractor, small_png, [(1, 1)] * 1001))


def test_empty_point_list(extractor, small_png):
    with pytest.raises(MessageError, match='rowcols'):
        message(extractor, small_png, [])


# ---- bad extractor files -------------------------------------------------

def test_wrong_hash(b0_weights_file, small_png):
    path, _ = b0_weights_file
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': 'e' * 64})
    with pytest.raises(HashMismatchError):
        extract_features(message(extractor, small_png, [(1, 1)]))


def test_weights_with_wrong_keys(tmp_path, small_png):
    import torch
    path = tmp_path / 'resnet.pt'
    torch.save({'net': {'conv1.weight': torch.zeros(64, 3, 7, 7)}}, path)
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))})
    with pytest.raises(WeightsFormatError, match='EfficientNet-B0'):
        extract_features(message(extractor, small_png, [(1, 1)]))


def test_weights_that_give_nan_features_are_refused_before_storing(
        b0_weights_file, tmp_path, small_png):
    import torch
    path, _ = b0_weights_file
    state = torch.load(path, weights_only=True)
    state['net'] = {k: v * float('nan') if v.is_floating_point() else v
                    for k, v in state['net'].items()}
    torch.save(state, tmp_path / 'nan.pt')
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(tmp_path / 'nan.pt'))})
    msg = message(extractor, small_png, [(1, 1)])
    msg.feature_loc = DataLocation('memory', 'nan.featurevector')
    with pytest.raises(WeightsFormatError, match='NaN or infinite features'):
        extract_features(msg)
    assert not storage_factory('memory').exists('nan.featurevector')


def test_process_job_reports_bad_input_without_raising(extractor, small_png):
    job = JobMsg(task_name='extract_features', tasks=[
        message(extractor, small_png, [(0, 99)])])
    result = process_job(job)
    assert result.ok is False
    assert 'RowColumnInvalidError' in result.error_message
    assert 'Column value 99' in result.error_message
