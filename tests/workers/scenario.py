"""
A small survey to push through the tasks: images in some storage, messages
for all five tasks, and checks of what they leave behind. Features come
from the DummyExtractor (small feature_dim), so everything is quick.
"""
from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels
from spacer.extractors.dummy import DummyExtractor
from spacer.messages import (ClassifyFeaturesMsg, ClassifyImageMsg, ExtractFeaturesMsg,
                             JobMsg, TrainClassifierMsg, TrainingTaskLabels)
from spacer.storage import storage_factory

FEATURE_DIM = 16
LABELS = (1, 2, 3)


def png_bytes(seed: int, height: int = 120, width: int = 160) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format='PNG')
    return out.getvalue()


def rowcols(n: int = 12) -> list[tuple[int, int]]:
    return [(10 + 8 * (i % 12), 10 + 11 * (i // 12 + i % 5)) for i in range(n)]


@dataclass
class Scenario:
    storage_type: str  # 'filesystem', 's3' or 'memory'
    root: str  # folder (filesystem) or key prefix (s3, memory)
    bucket: str | None = None
    n_images: int = 6
    points: int = 12
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    extractor: object = field(default_factory=lambda: DummyExtractor(feature_dim=FEATURE_DIM))

    def loc(self, name: str) -> DataLocation:
        sep = '/' if self.root and not self.root.endswith('/') else ''
        return DataLocation(self.storage_type, f"{self.root}{sep}{self.token}-{name}",
                            self.bucket)

    def put_images(self) -> None:
        storage = storage_factory(self.storage_type, self.bucket)
        for i in range(self.n_images):
            storage.store(self.loc(f'img{i}.png').key, io.BytesIO(png_bytes(i)))

    def image_loc(self, i: int) -> DataLocation:
        return self.loc(f'img{i}.png')

    def feature_loc(self, i: int) -> DataLocation:
        return self.loc(f'img{i}.featurevector')

    def extract_msg(self, i: int) -> ExtractFeaturesMsg:
        return ExtractFeaturesMsg(
            job_token=f'{self.token}-extract-{i}', extractor=self.extractor,
            rowcols=rowcols(self.points), image_loc=self.image_loc(i),
            feature_loc=self.feature_loc(i))

    def labels(self, images: range) -> ImageLabels:
        return ImageLabels({
            self.feature_loc(i): [(r, c, LABELS[j % len(LABELS)])
                                  for j, (r, c) in enumerate(rowcols(self.points))]
            for i in images})

    @property
    def model_loc(self) -> DataLocation:
        return self.loc('model.pkl')

    @property
    def valresult_loc(self) -> DataLocation:
        return self.loc('valresult.json')

    def train_msg(self, epochs: int = 3) -> TrainClassifierMsg:
        n = self.n_images
        labels = TrainingTaskLabels(train=self.labels(range(0, n - 2)),
                                    ref=self.labels(range(n - 2, n - 1)),
                                    val=self.labels(range(n - 1, n)))
        return TrainClassifierMsg(
            job_token=f'{self.token}-train', trainer='minibatch', nbr_epochs=epochs,
            clf_type='LR', labels=labels, previous_model_locs=[],
            model_loc=self.model_loc, valresult_loc=self.valresult_loc)

    def classify_features_msg(self, i: int) -> ClassifyFeaturesMsg:
        return ClassifyFeaturesMsg(job_token=f'{self.token}-cf-{i}',
                                   feature_loc=self.feature_loc(i),
                                   classifier_loc=self.model_loc)

    def classify_image_msg(self, i: int) -> ClassifyImageMsg:
        return ClassifyImageMsg(job_token=f'{self.token}-ci-{i}', extractor=self.extractor,
                                rowcols=rowcols(self.points)[:4], image_loc=self.image_loc(i),
                                classifier_loc=self.model_loc)

    def job_msg(self) -> JobMsg:
        return JobMsg('classify_features', [self.classify_features_msg(0),
                                            self.classify_features_msg(1)])

    def check_features(self, i: int) -> ImageFeatures:
        features = ImageFeatures.load(self.feature_loc(i))
        assert features.feat.shape == (self.points, FEATURE_DIM)
        assert sorted(zip(features.rows.tolist(), features.cols.tolist())) == \
            sorted(rowcols(self.points))
        return features


def run_all_five(client, scenario: Scenario, timeout: float = 60) -> dict:
    """Every task through ``client``; checks each result and artifact."""
    scenario.put_images()
    ids = [client.submit('extract_features', scenario.extract_msg(i))
           for i in range(scenario.n_images)]
    for task_id in ids:
        assert set(client.wait(task_id, timeout)) >= {'runtime', 'extractor_loaded_remotely'}
    for i in range(scenario.n_images):
        scenario.check_features(i)

    train = client.wait(client.submit('train_classifier', scenario.train_msg()), timeout)
    assert 0 <= train['acc'] <= 1 and len(train['ref_accs']) == 3

    from spacer.storage import load_classifier
    clf = load_classifier(scenario.model_loc)
    assert sorted(clf.classes_.tolist()) == list(LABELS)

    scores = client.wait(client.submit('classify_features',
                                       scenario.classify_features_msg(0)), timeout)
    assert sorted(scores['classes']) == list(LABELS)
    assert len(scores['scores']) == scenario.points
    for row, col, probs in scores['scores']:
        assert len(probs) == len(LABELS) and abs(sum(probs) - 1) < 1e-6

    image_scores = client.wait(client.submit('classify_image',
                                             scenario.classify_image_msg(1)), timeout)
    assert [tuple(s[:2]) for s in image_scores['scores']] == rowcols(scenario.points)[:4]

    job = client.wait(client.submit(None, scenario.job_msg()), timeout)
    assert job['ok'] is True and len(job['results']) == 2
    return {'train': train, 'scores': scores, 'job': job}
