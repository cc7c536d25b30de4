"""Errors about a file never quote its content: not in their text, not in
the causes a traceback prints (results, logs and dead letters carry those)."""
from __future__ import annotations

import io
import json
import pickle
import traceback
import zipfile

import numpy as np
import pytest

from spacer.data_classes import DataLocation, ImageFeatures, ValResults
from spacer.exceptions import pyspacer_class_path

SECRET = 'TOPSECRET-456'


def failure_text(call) -> tuple[BaseException, str]:
    with pytest.raises(Exception) as caught:
        call()
    text = ''.join(traceback.format_exception(caught.value))
    assert SECRET not in text, text
    assert SECRET.encode().hex() not in text
    return caught.value, text


def write(tmp_path, name: str, data: bytes) -> DataLocation:
    path = tmp_path / name
    path.write_bytes(data)
    return DataLocation('filesystem', str(path))


@pytest.mark.parametrize('content', [
    [[1.0, SECRET]], [[1.0], [SECRET, 2.0]], [[1.0, 2.0], [3.0]],
])
def test_json_feature_file_with_a_string(tmp_path, content):
    loc = write(tmp_path, 'f.json', json.dumps(content).encode())
    error, text = failure_text(lambda: ImageFeatures.load(loc))
    assert 'Legacy features' in str(error)
    assert pyspacer_class_path(error) == 'ValueError'  # the class pyspacer raised


def test_feature_file_that_is_not_utf8_text(tmp_path):
    loc = write(tmp_path, 'f.json', b'\xff' + SECRET.encode())
    failure_text(lambda: ImageFeatures.load(loc))


def test_npz_whose_header_quotes_a_secret(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array([1, 1, 2]), rows=np.array([1]), cols=np.array([1]),
             feat=np.zeros((1, 2)))
    raw = buffer.getvalue()
    # Rewrite feat.npy's header so numpy's parser quotes it.
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    header = f"{{'descr': '{SECRET}', 'fortran_order': False, 'shape': (1, 2), }}"
    header = header.ljust(118) + '\n'
    members['feat.npy'] = b'\x93NUMPY\x01\x00' + len(header).to_bytes(2, 'little') \
        + header.encode() + bytes(16)
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    loc = write(tmp_path, 'f.npz', out.getvalue())
    error, _ = failure_text(lambda: ImageFeatures.load(loc))
    assert 'corrupt feature file' in str(error)


def test_json_data_class_file_with_secret_fields(tmp_path):
    loc = write(tmp_path, 'v.json', json.dumps({SECRET: 1}).encode())
    failure_text(lambda: ValResults.load(loc))
    loc = write(tmp_path, 'v.json', SECRET.encode())
    failure_text(lambda: ValResults.load(loc))


@pytest.mark.parametrize('data', [
    f'c{SECRET}\nname\n.'.encode(),          # a GLOBAL naming a module that is content
    f'cos\n{SECRET}\n.'.encode(),            # a known module, a name that is content
    SECRET.encode(),                          # not a pickle at all
    pickle.dumps({'activation': SECRET}),    # a pickle of something else
])
def test_classifier_files(tmp_path, data):
    from spacer.storage import load_classifier
    loc = write(tmp_path, 'clf.pkl', data)
    error, _ = failure_text(lambda: load_classifier(loc))
    assert type(error).__name__ == 'ClassifierLoadError'


def test_image_files(tmp_path):
    from spacer.storage.images import load_image
    for name, data in (('a.jpg', SECRET.encode()),
                       ('b.png', b'\x89PNG\r\n\x1a\n' + SECRET.encode() * 4),
                       ('c.tif', b'II*\x00' + SECRET.encode() * 4)):
        loc = write(tmp_path, name, data)
        failure_text(lambda: load_image(loc))


def test_weights_and_prototxt(tmp_path):
    from spacer.extractors.caffe_proto import parse_definition, parse_weights
    failure_text(lambda: parse_definition(f'layer {{ name: "x" {SECRET}: 1 }}'))
    failure_text(lambda: parse_definition(b'\xff' + SECRET.encode()))
    failure_text(lambda: parse_weights(SECRET.encode() * 3))
    import torch
    from spacer.extractors.torch_extractors import read_checkpoint
    failure_text(lambda: read_checkpoint(io.BytesIO(b'c' + SECRET.encode() + b'\nx\n.')))
    failure_text(lambda: read_checkpoint(io.BytesIO(SECRET.encode())))
    from spacer.extractors.efficientnet_net import load_b0
    failure_text(lambda: load_b0({SECRET: 1}))
    failure_text(lambda: load_b0({'net': {SECRET: torch.zeros(1)}}))
