"""Task messages and their return messages, in pyspacer's JSON forms.

Each task message declares its fields once (``spacer.serialization``); the
pieces they share are in ``spacer.message_fields``, the return messages in
``spacer.return_messages`` and the old API forms in ``spacer.legacy``. The
task table (``spacer.task_table``) names the classes here.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from spacer import legacy
from spacer import message_fields as fields
from spacer.class_registry import resolve
from spacer.data_location import DataLocation as _DataLocation
from spacer.exceptions import InvalidMessageError, MessageError, with_context
from spacer.image_labels import ImageLabels, TrainingTaskLabels
from spacer.interfaces import ClassifierTrainerInterface, FeatureExtractorInterface
from spacer.label_types import LabelId
from spacer.message_fields import short
from spacer.return_messages import (
    ClassifyReturnMsg, ExtractFeaturesReturnMsg, TrainClassifierReturnMsg)
from spacer.serialization import DataClass, json_field, require
from spacer.task_table import TASK_NAMES, TASKS, TaskSpec
from spacer.warnings_once import warn_once

__all__ = [
    'TASKS', 'TASK_NAMES', 'ClassifyFeaturesMsg', 'ClassifyImageMsg', 'ClassifyReturnMsg',
    'ExtractFeaturesMsg', 'ExtractFeaturesReturnMsg', 'JobMsg', 'JobReturnMsg', 'LabelId',
    'TaskSpec', 'TrainClassifierMsg', 'TrainClassifierReturnMsg', 'TrainingTaskLabels',
    'return_message_class', 'task_message_class', 'task_spec',
]


def _example_extractor() -> FeatureExtractorInterface:
    """The EfficientNet extractor of the examples, found through the class
    registry (messages import no concrete extractor)."""
    extractor_class = resolve('spacer.extractors.EfficientNetExtractor',
                              FeatureExtractorInterface)
    return extractor_class(data_locations=dict(
        weights=_DataLocation('filesystem', '/path/to/weights.pt')))


@dataclasses.dataclass(eq=False, repr=False)
class ExtractFeaturesMsg(DataClass):
    """Extract features at rowcols (row = y) of the image at image_loc."""
    job_token: str = json_field(check=fields.job_token)
    extractor: FeatureExtractorInterface = fields.extractor_field()
    rowcols: list[tuple[int, int]] = json_field(check=fields.rowcols,
                                                to_json=fields.rowcols_to_json)
    image_loc: _DataLocation = fields.location_field()
    feature_loc: _DataLocation = fields.location_field(output=True)

    def check_together(self) -> None:
        # Features stored over the image (or the extractor's weights) would
        # replace it silently.
        fields.refuse_overwrite(self.feature_loc, 'feature_loc',
                                fields.extractor_inputs(self.image_loc, self.extractor),
                                type(self).__name__)

    @classmethod
    def example(cls) -> ExtractFeaturesMsg:
        return cls(job_token='123abc', extractor=_example_extractor(), rowcols=[(100, 100)],
                   image_loc=_DataLocation('memory', 'my_image.jpg'),
                   feature_loc=_DataLocation('memory', 'my_feats.json'))


@dataclasses.dataclass(init=False, eq=False, repr=False)
class TrainClassifierMsg(DataClass):
    """Train a classifier on labelled feature files."""

    class FeatureCache:
        AUTO = fields.FEATURE_CACHE_AUTO
        DISABLED = 'disabled'

    CHECK_FIRST = ('job_token', 'trainer', 'clf_type')
    READ_FIRST = ('trainer',)

    job_token: str = json_field(check=fields.job_token)
    trainer: ClassifierTrainerInterface = json_field(
        check=fields.trainer, to_json=fields.serialized, from_json=fields.trainer_from_json)
    nbr_epochs: int = json_field(check=fields.nbr_epochs)
    clf_type: str = json_field(check=fields.clf_type)
    labels: TrainingTaskLabels = json_field(
        check=fields.training_labels, to_json=fields.serialized,
        from_json=fields.training_labels_from_json)
    previous_model_locs: list[_DataLocation] = json_field(
        check=fields.location_list, to_json=fields.serialized_list,
        from_json=fields.location_list_from_json)
    model_loc: _DataLocation = fields.location_field(output=True)
    valresult_loc: _DataLocation = fields.location_field(output=True)
    # Checked last, after the outputs (check_together).
    feature_cache_dir: str | Path = json_field(to_json=str, default=fields.FEATURE_CACHE_AUTO)

    def __init__(self, job_token: str, trainer=None, nbr_epochs: int | None = None,
                 clf_type: str | None = None, labels: TrainingTaskLabels | None = None,
                 previous_model_locs: list[_DataLocation] | None = None,
                 model_loc: _DataLocation | None = None,
                 valresult_loc: _DataLocation | None = None,
                 feature_cache_dir: str | Path = FeatureCache.AUTO, *legacy_args,
                 trainer_name: str | None = None, train_labels: ImageLabels | None = None,
                 val_labels: ImageLabels | None = None,
                 features_loc: _DataLocation | None = None):
        current = legacy.train_msg_args(
            labels, previous_model_locs, model_loc, valresult_loc, feature_cache_dir,
            legacy_args, trainer=trainer, trainer_name=trainer_name,
            train_labels=train_labels, val_labels=val_labels, features_loc=features_loc)
        current.update(job_token=job_token, nbr_epochs=nbr_epochs, clf_type=clf_type)
        missing = [name for name in ('trainer', 'nbr_epochs', 'clf_type', 'labels',
                                     'model_loc', 'valresult_loc') if current[name] is None]
        if missing:
            raise MessageError(f"TrainClassifierMsg: missing {', '.join(missing)}.")
        for name, value in current.items():
            setattr(self, name, value)
        self.__post_init__()

    def check_together(self) -> None:
        owner = type(self).__name__
        fields.refuse_overwrite(self.valresult_loc, 'valresult_loc',
                                {'model_loc': self.model_loc}, owner)
        for field, loc in (('model_loc', self.model_loc),
                           ('valresult_loc', self.valresult_loc)):
            fields.refuse_feature_overwrite(loc, field, self.labels, owner)
        self.feature_cache_dir = fields.feature_cache_dir(self.feature_cache_dir, owner)

    @classmethod
    def deserialize(cls, data: dict) -> TrainClassifierMsg:
        old_form = legacy.train_msg_from_old_json(data)
        if old_form is not None:
            return cls(**old_form)
        return super().deserialize(data)

    @classmethod
    def example(cls) -> TrainClassifierMsg:
        return cls(job_token='123_abc', trainer='minibatch', nbr_epochs=2, clf_type='MLP',
                   labels=TrainingTaskLabels.example(),
                   previous_model_locs=[_DataLocation('memory', 'previous_model1.pkl'),
                                        _DataLocation('memory', 'previous_model2.pkl')],
                   model_loc=_DataLocation('memory', 'my_new_model.pkl'),
                   valresult_loc=_DataLocation('memory', 'my_valresult.json'))


@dataclasses.dataclass(eq=False, repr=False)
class ClassifyFeaturesMsg(DataClass):
    """Score every point of a feature file with a classifier."""
    job_token: str = json_field(check=fields.job_token)
    feature_loc: _DataLocation = fields.location_field()
    classifier_loc: _DataLocation = fields.location_field()

    @classmethod
    def example(cls) -> ClassifyFeaturesMsg:
        base = 'https://my-bucket.s3-my-region.amazonaws.com/'
        return cls(job_token='my_job',
                   feature_loc=_DataLocation('url', base + '01234aeiou.png.featurevector'),
                   classifier_loc=_DataLocation('url', base + 'my_model_id.model'))


@dataclasses.dataclass(eq=False, repr=False)
class ClassifyImageMsg(DataClass):
    """Extract features at rowcols of an image and score them."""
    job_token: str = json_field(check=fields.job_token)
    extractor: FeatureExtractorInterface = fields.extractor_field()
    rowcols: list[tuple[int, int]] = json_field(check=fields.rowcols,
                                                to_json=fields.rowcols_to_json)
    image_loc: _DataLocation = fields.location_field()
    classifier_loc: _DataLocation = fields.location_field()

    @classmethod
    def example(cls) -> ClassifyImageMsg:
        base = 'https://my-bucket.s3-my-region.amazonaws.com/'
        return cls(job_token='my_job', extractor=_example_extractor(),
                   rowcols=[(1, 1), (2, 2)],
                   image_loc=_DataLocation('url', base + '01234aeiou.png'),
                   classifier_loc=_DataLocation('url', base + 'my_model_id.model'))


def _indexed(deserialize, data: Any, where: str):
    """deserialize(data), its MessageError prefixed with where it happened
    (keeping the class, so a ClassPathError stays one)."""
    try:
        return deserialize(data)
    except MessageError as e:
        raise with_context(e, where) from e


def task_spec(task_name: str) -> TaskSpec:
    try:
        return TASKS[task_name]
    except (KeyError, TypeError):
        raise InvalidMessageError(  # pyspacer asserted it
            f"Unknown task_name {task_name!r}; expected one of {', '.join(TASK_NAMES)}.") from None


def task_message_class(task_name: str) -> type[DataClass]:
    return globals()[task_spec(task_name).message_class]


def return_message_class(task_name: str) -> type[DataClass]:
    return globals()[task_spec(task_name).return_class]


class JobMsg(DataClass):
    """Several tasks of one kind."""

    def __init__(self, task_name: str, tasks: list):
        # A task of the wrong class would fail only when its turn comes.
        message_class = task_message_class(task_name)
        if isinstance(tasks, tuple):
            tasks = list(tasks)
        if not isinstance(tasks, list):
            raise MessageError(f"JobMsg: tasks must be a list, got {type(tasks).__name__}"
                               f" {short(tasks)}.")
        for i, task in enumerate(tasks):
            if not isinstance(task, message_class):
                raise MessageError(
                    f"JobMsg: tasks[{i}] is a {type(task).__name__}, but task_name"
                    f" {task_name!r} takes {message_class.__name__} tasks.")
        self.task_name = task_name
        self.tasks = tasks

    @classmethod
    def deserialize(cls, data: dict) -> JobMsg:
        task_name = require(data, 'task_name', cls.__name__)
        message_class = task_message_class(task_name)
        tasks = require(data, 'tasks', cls.__name__)
        if not isinstance(tasks, list):
            raise MessageError(f"JobMsg: tasks must be a list, got {type(tasks).__name__}.")
        return cls(task_name, [_indexed(message_class.deserialize, t, f'JobMsg.tasks[{i}]')
                               for i, t in enumerate(tasks)])

    def serialize(self) -> dict:
        return {'task_name': self.task_name, 'tasks': [t.serialize() for t in self.tasks]}

    @classmethod
    def example(cls) -> JobMsg:
        return cls(task_name='classify_image', tasks=[ClassifyImageMsg.example()])


class JobReturnMsg(DataClass):
    """What process_job returns. When ok is False, results is pyspacer's
    free-form value: None in pyspacer's own, here one entry per task (the
    serialized return message, or None for a task that failed)."""

    def __init__(self, original_job: JobMsg, ok: bool, results: list | None,
                 error_message: str | None):
        if not isinstance(original_job, JobMsg):
            raise MessageError(f"JobReturnMsg: original_job must be a JobMsg,"
                               f" got {type(original_job).__name__}.")
        if ok and not isinstance(results, list):
            raise MessageError(f"JobReturnMsg: results must be a list when ok is true,"
                               f" got {type(results).__name__} {short(results)}.")
        self.original_job = original_job
        self.ok = ok
        self.results = results
        self.error_message = error_message

    @classmethod
    def example(cls) -> JobReturnMsg:
        return cls(original_job=JobMsg.example(), ok=True,
                   results=[ClassifyReturnMsg.example()], error_message=None)

    @classmethod
    def deserialize(cls, data: dict) -> JobReturnMsg:
        owner = cls.__name__
        original_job = JobMsg.deserialize(require(data, 'original_job', owner))
        ok = require(data, 'ok', owner)
        results = require(data, 'results', owner)
        if ok:
            return_class = return_message_class(original_job.task_name)
            if results is None:
                results = []
            if not isinstance(results, list):
                raise MessageError(f"{owner}: results must be a list when ok is true,"
                                   f" got {type(results).__name__} {short(results)}.")
            results = [_indexed(return_class.deserialize, r, f'{owner}.results[{i}]')
                       for i, r in enumerate(results)]
        return cls(original_job=original_job, ok=ok, results=results,
                   error_message=require(data, 'error_message', owner))

    def serialize(self) -> dict:
        results = self.results
        if self.ok:
            results = [r.serialize() for r in self.results]
        return {'original_job': self.original_job.serialize(), 'ok': self.ok,
                'results': results, 'error_message': self.error_message}

    def __eq__(self, other) -> bool:
        return isinstance(other, JobReturnMsg) and self.serialize() == other.serialize()


def __getattr__(name: str):
    if name == 'DataLocation':
        warn_once('spacer.messages.DataLocation', 'spacer.data_classes.DataLocation')
        return _DataLocation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
