"""Shared data for the main job's tests: the default extractor's weights and
small generated surveys (made once per session, copied per test)."""
from __future__ import annotations

import shutil

import pytest

from spacer_survey.synthetic_survey import SurveySpec, generate_survey

TINY = SurveySpec(annotated_images=6, unannotated_images=2, width=256,
                  height=192, points_per_image=8, labels=('Sand', 'CCA', 'Turf'),
                  seed=3)


@pytest.fixture(scope='session')
def default_choice(tmp_path_factory):
    """The weights-free default extractor, its weights made once."""
    from spacer_survey.extractor_choice import default
    return default(tmp_path_factory.mktemp('default-weights'))


@pytest.fixture(scope='session')
def _tiny_survey_master(tmp_path_factory):
    return generate_survey(tmp_path_factory.mktemp('tiny-survey'), TINY)


@pytest.fixture
def tiny_survey(_tiny_survey_master, tmp_path):
    """A private copy of a tiny survey (tests may edit its files)."""
    from spacer_survey.synthetic_survey import SurveyDataset
    master = _tiny_survey_master
    folder = tmp_path / 'survey'
    shutil.copytree(master.folder, folder)
    return SurveyDataset(folder, folder / 'images', folder / 'annotations.csv',
                         folder / 'points.csv', folder / 'truth.csv',
                         master.labels)
