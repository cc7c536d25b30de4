"""The files the stored release messages run on (see
tests/fixtures/pyspacer_releases/README.md, "The placeholder and the scenario").

Built with the current API only: an image, EfficientNet-B0 weights saved the
way CoralNet saved them (``module.``-prefixed keys), 1280-d feature files whose
vectors depend on their labels, and a previous classifier trained by spacer's
own trainer and stored with ``store_classifier``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

RELEASES_DIR = Path(__file__).parent.parent / 'fixtures' / 'pyspacer_releases'
RELEASES = ('0.6.0', '0.7.0', '0.9.0', '0.11.0', '0.13.0', '0.14.0')
CURRENT = '0.14.0'
PLACEHOLDER = '{FIXTURE_DIR}'
TASKS = ('extract_features', 'train_classifier', 'classify_features', 'classify_image')

ROWCOLS = [(20, 30), (60, 90), (100, 150), (140, 210), (180, 270)]
CLASSES = [1, 2, 3]
IMAGE_COUNT = 16
FEATURE_DIM = 1280


def label(image: int, point: int) -> int:
    """Image ``image`` (1-16), point ``point`` (0-4): every image holds all classes."""
    return CLASSES[(image + point) % 3]


def feature_path(directory: Path, image: int) -> Path:
    return directory / f'img_{image:02d}.featurevector'


def write_image(path: Path, height: int, width: int, seed: int = 0) -> None:
    """A smooth colourful RGB image (JPEG), so crops at different points differ."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(height // 16 + 1, width // 16 + 1, 3))
    smooth = np.kron(coarse, np.ones((16, 16, 1)))[:height, :width]
    noisy = smooth + rng.normal(scale=20, size=smooth.shape)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), 'RGB').save(path, quality=95)


def save_weights(path: Path, state_dict: dict, module_prefix: bool) -> None:
    """``{'net': state_dict}``, keys 'module.'-prefixed as DataParallel saved them."""
    import torch
    if module_prefix:
        state_dict = {'module.' + k: v for k, v in state_dict.items()}
    torch.save({'net': state_dict}, path)


def write_features(path: Path, rowcols: list[tuple[int, int]], labels: list, seed: int,
                   centres: dict) -> None:
    """A feature file: each point's vector is its class centre plus noise."""
    from spacer.data_classes import DataLocation, ImageFeatures
    rng = np.random.default_rng(seed)
    feat = np.stack([centres[lab] + 0.3 * rng.normal(size=FEATURE_DIM) for lab in labels])
    rows, cols = zip(*rowcols)
    ImageFeatures.from_arrays(list(rows), list(cols), feat).store(
        DataLocation('filesystem', str(path)))


def class_centres(classes, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    return {c: rng.normal(size=FEATURE_DIM) for c in classes}


def train_and_store_classifier(path: Path, labels_by_file: dict, clf_type: str = 'LR') -> None:
    """A classifier made by spacer's own trainer on the given feature files
    (train = ref = val: only its classes and calibration matter here)."""
    from spacer.data_classes import DataLocation, ImageLabels
    from spacer.messages import TrainingTaskLabels
    from spacer.storage import store_classifier
    from spacer.train_classifier import trainer_factory
    labels = ImageLabels({DataLocation('filesystem', str(p)): annotations
                          for p, annotations in labels_by_file.items()})
    clf, _, _ = trainer_factory('minibatch')(
        TrainingTaskLabels(labels, labels, labels), 2, [], clf_type)
    store_classifier(DataLocation('filesystem', str(path)), clf)


def build(directory: Path, weights_state: dict) -> None:
    """Every input file the release messages name, in ``directory``."""
    write_image(directory / 'image.jpg', 240, 320)
    save_weights(directory / 'efficientnet_b0.pt', weights_state, module_prefix=True)
    centres = class_centres(CLASSES)
    labels_by_file = {}
    for i in range(1, IMAGE_COUNT + 1):
        annotations = [(r, c, label(i, j)) for j, (r, c) in enumerate(ROWCOLS)]
        write_features(feature_path(directory, i), ROWCOLS,
                       [a[2] for a in annotations], seed=100 + i, centres=centres)
        labels_by_file[feature_path(directory, i)] = annotations
    train_and_store_classifier(directory / 'classifier.pkl', labels_by_file)


def fixture_text(release: str, name: str, directory: Path) -> str:
    """A stored message's raw text with the placeholder pointed at ``directory``."""
    text = (RELEASES_DIR / release / name).read_text()
    assert '"' not in str(directory) and '\\' not in str(directory)
    return text.replace(PLACEHOLDER, str(directory))


def fixture_json(release: str, name: str, directory: Path):
    return json.loads(fixture_text(release, name, directory))
