"""
End to end against the real pyspacer 0.14.0 (the side environment built by
benchmarks/pyspacer_env.sh): the same message, weights and image give the
same stored features within 1e-4. Skipped where that environment is absent.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spacer import config
from spacer.data_classes import DataLocation
from spacer.extractors import EfficientNetExtractor
from spacer.messages import ExtractFeaturesMsg
from spacer.tasks import extract_features
from tests.extractors.conftest import border_points
from tests.extractors.test_crop import image_of_mode

PYSPACER_PY = Path(__file__).resolve().parents[2] / '.venv-pyspacer' / \
    'bin' / 'python'
pytestmark = pytest.mark.skipif(not PYSPACER_PY.exists(),
                                reason='no .venv-pyspacer side environment')

PYSPACER_RUN = '''
import json, sys
from spacer.extractors import EfficientNetExtractor
from spacer.messages import ExtractFeaturesMsg
from spacer.tasks import extract_features
import spacer
assert '/.venv-pyspacer/' in spacer.__file__, spacer.__file__
for job in json.load(open(sys.argv[1])):
    msg = ExtractFeaturesMsg.deserialize(job)
    extract_features(msg)
'''


def test_same_features_as_pyspacer(tmp_path, b0_weights_file, monkeypatch):
    from sklearn.datasets import load_sample_images
    monkeypatch.setattr(config, 'DEVICE', 'cpu')
    path, digest = b0_weights_file
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': digest})
    images = {
        'photo.jpg': Image.fromarray(load_sample_images().images[1]),
        'palette.png': image_of_mode('P', 120, 90, seed=4),
        'tiny.png': image_of_mode('RGBA', 3, 4, seed=5),
        'grey16.png': image_of_mode('I;16', 80, 60, seed=6),
    }
    messages = {}
    for name, im in images.items():
        image_path = tmp_path / name
        im.save(image_path)
        points = border_points(im.height, im.width)
        messages[name] = {
            impl: ExtractFeaturesMsg(
                job_token=name, extractor=extractor, rowcols=points,
                image_loc=DataLocation('filesystem', str(image_path)),
                feature_loc=DataLocation(
                    'filesystem', str(tmp_path / f'{name}.{impl}.npz')))
            for impl in ('ours', 'pyspacer')}

    jobs = tmp_path / 'jobs.json'
    jobs.write_text(json.dumps(
        [m['pyspacer'].serialize() for m in messages.values()]))
    subprocess.run([str(PYSPACER_PY), '-P', '-c', PYSPACER_RUN, str(jobs)],
                   cwd=tmp_path, check=True, capture_output=True, timeout=600)
    for name, pair in messages.items():
        extract_features(pair['ours'])
        ours = np.load(pair['ours'].feature_loc.key)
        theirs = np.load(pair['pyspacer'].feature_loc.key)
        for array in ('meta', 'rows', 'cols'):
            np.testing.assert_array_equal(ours[array], theirs[array])
        assert ours['feat'].dtype == theirs['feat'].dtype
        assert np.abs(ours['feat'] - theirs['feat']).max() <= 1e-4, name
