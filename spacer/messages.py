"""Task messages and their return messages, in pyspacer's JSON forms."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spacer.data_classes import DataClass, ImageLabels, LabelId, require
from spacer.data_classes import DataLocation as _DataLocation
from spacer.exceptions import InvalidMessageError, MessageError, MissingKeyError, with_context

TASK_NAMES = ('extract_features', 'train_classifier', 'classify_features', 'classify_image')


def _rowcols(value: Any, owner: str) -> list[tuple[int, int]]:
    # InvalidMessageError: pyspacer asserted these (an AssertionError).
    if not isinstance(value, (list, tuple)):
        raise InvalidMessageError(
            f"{owner}: rowcols must be a list of [row, col], got {value!r}.")
    if len(value) == 0:
        raise InvalidMessageError(f"{owner}: Invalid message, rowcols entry is empty.")
    out = []
    for entry in value:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise InvalidMessageError(
                f"{owner}: each rowcol must be a [row, col] pair, got {entry!r}.")
        out.append(tuple(entry))
    return out


def _short(value: Any, limit: int = 80) -> str:
    """repr for an error text, cut so a huge bad value can't flood a log."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def _job_token(value: Any, owner: str) -> str | int:
    """job_token names a task in logs, errors and the worker's deduplication.
    pyspacer takes any value; callers use strings (CoralNet) or ids, so those
    two pass and anything else (None, lists, objects) is refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MessageError(
            f"{owner}: job_token must be a string or an integer, got {_short(value)}.")
    return value


def _check_location(value: Any, field: str, owner: str) -> _DataLocation:
    if not isinstance(value, _DataLocation):
        raise MessageError(
            f"{owner}: {field} must be a DataLocation, got {type(value).__name__}"
            f" {_short(value)}.")
    return value


def _check_output(value: Any, field: str, owner: str) -> _DataLocation:
    """An output location, checked before any work: a task that can't store
    its result would fail only after the work (and after other outputs were
    written)."""
    loc = _check_location(value, field, owner)
    if not loc.is_writable:
        raise InvalidMessageError(
            f"{owner}: {field}: Write not supported for '{loc.storage_type}' storage type"
            f" (key {loc.key!r}).")
    return loc


def _place(loc: _DataLocation) -> tuple:
    """Where a location points, with filesystem paths normalized so that
    'a/b' and './a//b' count as the same file."""
    key = loc.key
    if loc.storage_type == 'filesystem':
        key = os.path.normpath(os.path.abspath(key))
    return loc.storage_type, loc.bucket_name, key


def _refuse_overwrite(output: _DataLocation, field: str, inputs: dict[str, _DataLocation],
                      owner: str) -> None:
    """Storing an output over one of the task's own inputs would lose that data."""
    for name, loc in inputs.items():
        if _place(loc) == _place(output):
            raise MessageError(
                f"{owner}: {field} and {name} are the same location ({output.key!r});"
                f" the output would overwrite it.")


def _check_extractor(value: Any, owner: str):
    from spacer.extractors.base import FeatureExtractor
    if not isinstance(value, FeatureExtractor):
        raise MessageError(
            f"{owner}: extractor must be a FeatureExtractor, got {type(value).__name__}"
            f" {_short(value)}.")
    return value


def _location(data: dict, key: str, owner: str) -> _DataLocation:
    serialized = require(data, key, owner)
    try:
        return _DataLocation.deserialize(serialized)
    except MessageError as e:
        raise with_context(e, f"{owner}.{key}") from e


def _extractor(data: dict, owner: str):
    from spacer.extractors import FeatureExtractor
    serialized = require(data, 'extractor', owner)
    class_path = serialized.get('class_path') if isinstance(serialized, dict) else None
    if isinstance(serialized, dict) and 'class_path' not in serialized:
        raise MissingKeyError(f"{owner}.extractor: missing key 'class_path'.")
    if isinstance(class_path, str) and class_path.startswith('spacer.extract_features.'):
        from spacer.legacy import warn_once
        warn_once("Extractor class_path 'spacer.extract_features.*' in stored messages",
                  "the spacer.extractors path that serialize() now writes",
                  origin='pyspacer 0.6-0.10 JSON')
    return FeatureExtractor.deserialize(serialized)


class ExtractFeaturesMsg(DataClass):
    """Extract features at rowcols (row = y) of the image at image_loc."""

    def __init__(self, job_token: str, extractor, rowcols: list[tuple[int, int]],
                 image_loc: _DataLocation, feature_loc: _DataLocation):
        owner = 'ExtractFeaturesMsg'
        self.job_token = _job_token(job_token, owner)
        self.extractor = _check_extractor(extractor, owner)
        self.rowcols = _rowcols(rowcols, owner)
        self.image_loc = _check_location(image_loc, 'image_loc', owner)
        self.feature_loc = _check_output(feature_loc, 'feature_loc', owner)
        # Features stored over the image (or the extractor's weights) would
        # replace it silently.
        inputs = {'image_loc': image_loc}
        weights = getattr(extractor, 'data_locations', None)
        if isinstance(weights, dict):
            inputs.update((f'extractor data_locations[{name!r}]', loc)
                          for name, loc in weights.items() if isinstance(loc, _DataLocation))
        _refuse_overwrite(feature_loc, 'feature_loc', inputs, owner)

    @classmethod
    def example(cls) -> ExtractFeaturesMsg:
        from spacer.extractors import EfficientNetExtractor
        return cls(
            job_token='123abc',
            extractor=EfficientNetExtractor(data_locations=dict(
                weights=_DataLocation('filesystem', '/path/to/weights.pt'))),
            rowcols=[(100, 100)],
            image_loc=_DataLocation('memory', 'my_image.jpg'),
            feature_loc=_DataLocation('memory', 'my_feats.json'))

    def serialize(self) -> dict:
        return {'job_token': self.job_token, 'extractor': self.extractor.serialize(),
                'rowcols': [list(rc) for rc in self.rowcols],
                'image_loc': self.image_loc.serialize(),
                'feature_loc': self.feature_loc.serialize()}

    @classmethod
    def deserialize(cls, data: dict) -> ExtractFeaturesMsg:
        owner = cls.__name__
        return cls(job_token=require(data, 'job_token', owner),
                   extractor=_extractor(data, owner),
                   rowcols=require(data, 'rowcols', owner),
                   image_loc=_location(data, 'image_loc', owner),
                   feature_loc=_location(data, 'feature_loc', owner))


class ExtractFeaturesReturnMsg(DataClass):
    def __init__(self, extractor_loaded_remotely: bool, runtime: float):
        self.extractor_loaded_remotely = extractor_loaded_remotely
        self.runtime = runtime

    @classmethod
    def example(cls) -> ExtractFeaturesReturnMsg:
        return cls(extractor_loaded_remotely=True, runtime=2.1)


class TrainingTaskLabels:
    """The train, ref and val sets of a training task.

    train is learnt from; ref (at most TRAINING_BATCH_LABEL_COUNT labels) gives
    the per-epoch accuracy and calibrates the scores; val measures the result.
    """

    SETS = ('train', 'ref', 'val')

    def __init__(self, train: ImageLabels, ref: ImageLabels, val: ImageLabels):
        self.train = train
        self.ref = ref
        self.val = val

    def __getitem__(self, item: str) -> ImageLabels:
        if item not in self.SETS:
            raise KeyError(item)
        return getattr(self, item)

    def __setitem__(self, item: str, value: ImageLabels) -> None:
        if item not in self.SETS:
            raise KeyError(item)
        setattr(self, item, value)

    def __eq__(self, other) -> bool:
        return isinstance(other, TrainingTaskLabels) and all(
            self[s] == other[s] for s in self.SETS)

    def __repr__(self) -> str:
        return f"TrainingTaskLabels(train={self.train!r}, ref={self.ref!r}, val={self.val!r})"

    @property
    def label_count(self) -> int:
        return sum(self[s].label_count for s in self.SETS)

    @property
    def has_remote_data(self) -> bool:
        return any(self[s].has_remote_data for s in self.SETS)

    def set_filesystem_cache(self, dir_path: str | None) -> None:
        for s in self.SETS:
            self[s].set_filesystem_cache(dir_path)

    def serialize(self) -> dict:
        return {s: self[s].serialize() for s in self.SETS}

    @classmethod
    def deserialize(cls, data: dict,
                    features_loc: _DataLocation | None = None) -> TrainingTaskLabels:
        """features_loc: storage of plain feature keys (messages before 0.13)."""
        return cls(**{s: ImageLabels.deserialize(require(data, s, cls.__name__), features_loc)
                      for s in cls.SETS})

    @classmethod
    def example(cls) -> TrainingTaskLabels:
        return cls(ImageLabels.example(), ImageLabels.example(), ImageLabels.example())


class TrainClassifierMsg(DataClass):
    """Train a classifier on labelled feature files."""

    class FeatureCache:
        AUTO = 'auto'
        DISABLED = 'disabled'

    def __init__(self, job_token: str, trainer=None, nbr_epochs: int | None = None,
                 clf_type: str | None = None, labels: TrainingTaskLabels | None = None,
                 previous_model_locs: list[_DataLocation] | None = None,
                 model_loc: _DataLocation | None = None,
                 valresult_loc: _DataLocation | None = None,
                 feature_cache_dir: str | Path = FeatureCache.AUTO, *legacy_args,
                 trainer_name: str | None = None, train_labels: ImageLabels | None = None,
                 val_labels: ImageLabels | None = None,
                 features_loc: _DataLocation | None = None):
        from spacer.legacy import warn_once
        if isinstance(labels, ImageLabels):
            # pyspacer 0.6 positional order: (job_token, trainer_name, nbr_epochs,
            # clf_type, train_labels, val_labels, features_loc, previous_model_locs,
            # model_loc, valresult_loc).
            if len(legacy_args) != 1:
                raise MessageError(
                    "TrainClassifierMsg: the pyspacer 0.6 positional form takes ten"
                    " arguments (job_token, trainer_name, nbr_epochs, clf_type,"
                    " train_labels, val_labels, features_loc, previous_model_locs,"
                    " model_loc, valresult_loc).")
            train_labels, val_labels, features_loc, previous_model_locs, model_loc, \
                valresult_loc = (labels, previous_model_locs, model_loc, valresult_loc,
                                 feature_cache_dir, legacy_args[0])
            labels, feature_cache_dir = None, self.FeatureCache.AUTO
        elif legacy_args:
            raise TypeError(f"TrainClassifierMsg takes at most 10 positional arguments"
                            f" ({10 + len(legacy_args)} given).")
        if trainer_name is not None:
            warn_once("TrainClassifierMsg(trainer_name=...)", "trainer=...")
            trainer = trainer if trainer is not None else trainer_name
        if train_labels is not None or val_labels is not None:
            warn_once("TrainClassifierMsg(train_labels=..., val_labels=..., features_loc=...)",
                      "labels=TrainingTaskLabels(train, ref, val) or preprocess_labels()")
            labels = _legacy_labels(train_labels, val_labels, features_loc)
        missing = [name for name, value in (
            ('trainer', trainer), ('nbr_epochs', nbr_epochs), ('clf_type', clf_type),
            ('labels', labels), ('model_loc', model_loc),
            ('valresult_loc', valresult_loc)) if value is None]
        if missing:
            raise MessageError(f"TrainClassifierMsg: missing {', '.join(missing)}.")
        owner = 'TrainClassifierMsg'
        self.job_token = _job_token(job_token, owner)
        self.trainer = _trainer(trainer, owner)
        if clf_type not in ('MLP', 'LR'):
            raise MessageError(
                f"{owner}: clf_type must be 'MLP' or 'LR', not {_short(clf_type)}.")
        if isinstance(nbr_epochs, bool) or not isinstance(nbr_epochs, int) or nbr_epochs < 1:
            raise MessageError(
                f"{owner}: nbr_epochs must be a positive integer, not {_short(nbr_epochs)}.")
        if not isinstance(labels, TrainingTaskLabels):
            raise MessageError(
                f"{owner}: labels must be a TrainingTaskLabels, not {type(labels).__name__}.")
        self.nbr_epochs = nbr_epochs
        self.clf_type = clf_type
        self.labels = labels
        self.previous_model_locs = _previous_model_locs(previous_model_locs, owner)
        self.model_loc = _check_output(model_loc, 'model_loc', owner)
        self.valresult_loc = _check_output(valresult_loc, 'valresult_loc', owner)
        _refuse_overwrite(valresult_loc, 'valresult_loc', {'model_loc': model_loc}, owner)
        for field, loc in (('model_loc', model_loc), ('valresult_loc', valresult_loc)):
            _refuse_feature_overwrite(loc, field, labels, owner)
        self.feature_cache_dir = _feature_cache_dir(feature_cache_dir, owner)

    @classmethod
    def example(cls) -> TrainClassifierMsg:
        return cls(job_token='123_abc', trainer='minibatch', nbr_epochs=2, clf_type='MLP',
                   labels=TrainingTaskLabels.example(),
                   previous_model_locs=[_DataLocation('memory', 'previous_model1.pkl'),
                                        _DataLocation('memory', 'previous_model2.pkl')],
                   model_loc=_DataLocation('memory', 'my_new_model.pkl'),
                   valresult_loc=_DataLocation('memory', 'my_valresult.json'))

    def serialize(self) -> dict:
        return {'job_token': self.job_token, 'trainer': self.trainer.serialize(),
                'nbr_epochs': self.nbr_epochs, 'clf_type': self.clf_type,
                'labels': self.labels.serialize(),
                'previous_model_locs': [loc.serialize() for loc in self.previous_model_locs],
                'model_loc': self.model_loc.serialize(),
                'valresult_loc': self.valresult_loc.serialize(),
                'feature_cache_dir': str(self.feature_cache_dir)}

    @classmethod
    def deserialize(cls, data: dict) -> TrainClassifierMsg:
        from spacer.train_classifier import ClassifierTrainer
        owner = cls.__name__
        if isinstance(data, dict) and 'train_labels' in data:
            return cls._deserialize_06(data)
        if isinstance(data, dict) and 'features_loc' in data:
            from spacer.legacy import warn_once
            warn_once("TrainClassifierMsg JSON with features_loc and plain label keys",
                      "the current JSON (labels keyed by serialized DataLocations; load"
                      " and store msg.serialize())", origin='pyspacer 0.7-0.12 JSON')
        if isinstance(data, dict) and 'trainer_name' in data:
            trainer = data['trainer_name']  # the constructor takes only a name
        else:
            serialized = require(data, 'trainer', owner)
            if isinstance(serialized, dict) and 'class_path' not in serialized:
                raise MissingKeyError(f"{owner}.trainer: missing key 'class_path'.")
            trainer = ClassifierTrainer.deserialize(serialized)
        return cls(job_token=require(data, 'job_token', owner), trainer=trainer,
                   nbr_epochs=require(data, 'nbr_epochs', owner),
                   clf_type=require(data, 'clf_type', owner),
                   labels=TrainingTaskLabels.deserialize(
                       require(data, 'labels', owner),
                       _location(data, 'features_loc', owner)
                       if data.get('features_loc') else None),
                   previous_model_locs=_location_list(data, 'previous_model_locs', owner),
                   model_loc=_location(data, 'model_loc', owner),
                   valresult_loc=_location(data, 'valresult_loc', owner),
                   feature_cache_dir=data.get('feature_cache_dir', cls.FeatureCache.AUTO))


    @classmethod
    def _deserialize_06(cls, data: dict) -> TrainClassifierMsg:
        """The JSON pyspacer 0.6-0.12 stored: train/val labels and features_loc."""
        from spacer.legacy import warn_once
        warn_once("TrainClassifierMsg JSON with train_labels/val_labels/features_loc",
                  "the current JSON (labels: train/ref/val; load and store"
                  " msg.serialize())", origin='pyspacer 0.6 JSON')
        owner = cls.__name__
        features_loc = _location(data, 'features_loc', owner)
        train = ImageLabels.deserialize(require(data, 'train_labels', owner), features_loc)
        val = ImageLabels.deserialize(require(data, 'val_labels', owner), features_loc)
        return cls(job_token=require(data, 'job_token', owner),
                   trainer=_legacy_trainer(data),
                   nbr_epochs=require(data, 'nbr_epochs', owner),
                   clf_type=require(data, 'clf_type', owner),
                   labels=_legacy_labels(train, val, None),
                   previous_model_locs=_location_list(data, 'previous_model_locs', owner),
                   model_loc=_location(data, 'model_loc', owner),
                   valresult_loc=_location(data, 'valresult_loc', owner))


def _location_list(data: dict, key: str, owner: str) -> list[_DataLocation]:
    """data[key] as a list of DataLocations, errors naming the key and index."""
    value = require(data, key, owner)
    if not isinstance(value, list):
        raise MessageError(f"{owner}: {key} must be a list of locations,"
                           f" got {type(value).__name__} {_short(value)}.")
    locations = []
    for i, entry in enumerate(value):
        try:
            locations.append(_DataLocation.deserialize(entry))
        except MessageError as e:
            raise with_context(e, f"{owner}.{key}[{i}]") from e
    return locations


def _legacy_trainer(data: dict):
    """0.6 JSON names its trainer in trainer_name (a string, checked by the
    constructor); a 'trainer' object is the current form."""
    from spacer.train_classifier import ClassifierTrainer
    if data.get('trainer_name') is not None:
        return data['trainer_name']
    trainer = data.get('trainer')
    if isinstance(trainer, dict):
        return ClassifierTrainer.deserialize(trainer)
    return trainer if trainer is not None else 'minibatch'


def _trainer(value: Any, owner: str):
    """A ClassifierTrainer, or a name/class path that trainer_factory turns
    into one; anything else would fail only when training starts."""
    from spacer.train_classifier import ClassifierTrainer, trainer_factory
    if isinstance(value, str):
        return trainer_factory(value)
    if not isinstance(value, ClassifierTrainer):
        raise MessageError(
            f"{owner}: trainer must be a ClassifierTrainer or a trainer name,"
            f" got {type(value).__name__} {_short(value)}.")
    return value


def _previous_model_locs(value: Any, owner: str) -> list[_DataLocation]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise MessageError(f"{owner}: previous_model_locs must be a list of DataLocations,"
                           f" got {type(value).__name__} {_short(value)}.")
    return [_check_location(loc, f'previous_model_locs[{i}]', owner)
            for i, loc in enumerate(value)]


def _refuse_feature_overwrite(output: _DataLocation, field: str,
                              labels: TrainingTaskLabels, owner: str) -> None:
    """The classifier or val results stored over a training feature file
    would destroy it."""
    place = _place(output)
    for name in TrainingTaskLabels.SETS:
        if any(_place(loc) == place for loc in labels[name].keys()):
            raise MessageError(
                f"{owner}: {field} ({output.key!r}) is a feature file of the {name} labels;"
                f" the output would overwrite it.")


def _feature_cache_dir(value: Any, owner: str) -> str | Path:
    if value is None:  # as in pyspacer: the automatic choice
        return TrainClassifierMsg.FeatureCache.AUTO
    if isinstance(value, os.PathLike):
        return value
    if not isinstance(value, str) or not value:
        raise MessageError(
            f"{owner}: feature_cache_dir must be a folder path, 'auto' or 'disabled',"
            f" got {_short(value)}.")
    return value


def _legacy_labels(train_labels, val_labels, features_loc) -> TrainingTaskLabels:
    """0.6's train/val pair becomes train/ref/val, ref carved from train."""
    from spacer import config
    from spacer.legacy import relocate_labels, split_legacy_train
    if train_labels is None or val_labels is None:
        raise MessageError("TrainClassifierMsg: train_labels and val_labels go together.")
    for field, value in (('train_labels', train_labels), ('val_labels', val_labels)):
        if not isinstance(value, ImageLabels):
            raise MessageError(f"TrainClassifierMsg: {field} must be an ImageLabels,"
                               f" got {type(value).__name__} {_short(value)}.")
    if features_loc is not None:
        _check_location(features_loc, 'features_loc', 'TrainClassifierMsg')
    train = relocate_labels(train_labels, features_loc)
    val = relocate_labels(val_labels, features_loc)
    train, ref = split_legacy_train(train, config.get('TRAINING_BATCH_LABEL_COUNT'))
    return TrainingTaskLabels(train=train, ref=ref, val=val)


class TrainClassifierReturnMsg(DataClass):
    def __init__(self, acc: float, pc_accs: list[float], ref_accs: list[float], runtime: float):
        self.acc = acc
        self.pc_accs = pc_accs
        self.ref_accs = ref_accs
        self.runtime = runtime

    @classmethod
    def example(cls) -> TrainClassifierReturnMsg:
        return cls(acc=0.7, pc_accs=[0.4, 0.5, 0.6],
                   ref_accs=[0.55, 0.65, 0.64, 0.67, 0.70], runtime=123.4)


class ClassifyFeaturesMsg(DataClass):
    """Score every point of a feature file with a classifier."""

    def __init__(self, job_token: str, feature_loc: _DataLocation, classifier_loc: _DataLocation):
        owner = 'ClassifyFeaturesMsg'
        self.job_token = _job_token(job_token, owner)
        self.feature_loc = _check_location(feature_loc, 'feature_loc', owner)
        self.classifier_loc = _check_location(classifier_loc, 'classifier_loc', owner)

    @classmethod
    def example(cls) -> ClassifyFeaturesMsg:
        base = 'https://my-bucket.s3-my-region.amazonaws.com/'
        return cls(job_token='my_job',
                   feature_loc=_DataLocation('url', base + '01234aeiou.png.featurevector'),
                   classifier_loc=_DataLocation('url', base + 'my_model_id.model'))

    def serialize(self) -> dict:
        return {'job_token': self.job_token, 'feature_loc': self.feature_loc.serialize(),
                'classifier_loc': self.classifier_loc.serialize()}

    @classmethod
    def deserialize(cls, data: dict) -> ClassifyFeaturesMsg:
        owner = cls.__name__
        return cls(job_token=require(data, 'job_token', owner),
                   feature_loc=_location(data, 'feature_loc', owner),
                   classifier_loc=_location(data, 'classifier_loc', owner))


class ClassifyImageMsg(DataClass):
    """Extract features at rowcols of an image and score them."""

    def __init__(self, job_token: str, extractor, rowcols: list[tuple[int, int]],
                 image_loc: _DataLocation, classifier_loc: _DataLocation):
        owner = 'ClassifyImageMsg'
        self.job_token = _job_token(job_token, owner)
        self.extractor = _check_extractor(extractor, owner)
        self.rowcols = _rowcols(rowcols, owner)
        self.image_loc = _check_location(image_loc, 'image_loc', owner)
        self.classifier_loc = _check_location(classifier_loc, 'classifier_loc', owner)

    @classmethod
    def example(cls) -> ClassifyImageMsg:
        from spacer.extractors import EfficientNetExtractor
        base = 'https://my-bucket.s3-my-region.amazonaws.com/'
        return cls(job_token='my_job',
                   extractor=EfficientNetExtractor(data_locations=dict(
                       weights=_DataLocation('filesystem', '/path/to/weights.pt'))),
                   rowcols=[(1, 1), (2, 2)],
                   image_loc=_DataLocation('url', base + '01234aeiou.png'),
                   classifier_loc=_DataLocation('url', base + 'my_model_id.model'))

    def serialize(self) -> dict:
        return {'job_token': self.job_token, 'extractor': self.extractor.serialize(),
                'rowcols': [list(rc) for rc in self.rowcols],
                'image_loc': self.image_loc.serialize(),
                'classifier_loc': self.classifier_loc.serialize()}

    @classmethod
    def deserialize(cls, data: dict) -> ClassifyImageMsg:
        owner = cls.__name__
        return cls(job_token=require(data, 'job_token', owner),
                   extractor=_extractor(data, owner),
                   rowcols=require(data, 'rowcols', owner),
                   image_loc=_location(data, 'image_loc', owner),
                   classifier_loc=_location(data, 'classifier_loc', owner))


class ClassifyReturnMsg(DataClass):
    """Scores per point, in the order of classes."""

    def __init__(self, runtime: float, scores: list[tuple[int, int, list[float]]],
                 classes: list[LabelId], valid_rowcol: bool):
        self.runtime = runtime
        self.scores = scores
        self.classes = classes
        self.valid_rowcol = valid_rowcol

    def __getitem__(self, rowcol: tuple[int, int]) -> list[float]:
        if not self.valid_rowcol:
            raise ValueError('Method requires valid rows and columns')
        for row, col, scores in self.scores:
            if (row, col) == tuple(rowcol):
                return scores
        raise KeyError(rowcol)

    @classmethod
    def example(cls) -> ClassifyReturnMsg:
        return cls(runtime=1.1,
                   scores=[(10, 20, [0.1, 0.2, 0.7]), (20, 40, [0.9, 0.06, 0.04])],
                   classes=[100, 12, 44], valid_rowcol=True)

    def serialize(self) -> dict:
        return {'runtime': self.runtime,
                'scores': [[row, col, list(s)] for row, col, s in self.scores],
                'classes': list(self.classes), 'valid_rowcol': self.valid_rowcol}

    @classmethod
    def deserialize(cls, data: dict) -> ClassifyReturnMsg:
        owner = cls.__name__
        scores = require(data, 'scores', owner)
        if not isinstance(scores, list) or any(
                not isinstance(s, (list, tuple)) or len(s) != 3 for s in scores):
            raise MessageError(f"{owner}: scores must be a list of [row, col, scores].")
        return cls(runtime=require(data, 'runtime', owner),
                   scores=[(row, col, s) for row, col, s in scores],
                   classes=require(data, 'classes', owner),
                   valid_rowcol=require(data, 'valid_rowcol', owner))


def _indexed(deserialize, data: Any, where: str):
    """deserialize(data), its MessageError prefixed with where it happened
    (keeping the class, so a ClassPathError stays one)."""
    try:
        return deserialize(data)
    except MessageError as e:
        raise with_context(e, where) from e


def task_message_class(task_name: str) -> type[DataClass]:
    classes = {'extract_features': ExtractFeaturesMsg, 'train_classifier': TrainClassifierMsg,
               'classify_features': ClassifyFeaturesMsg, 'classify_image': ClassifyImageMsg}
    try:
        return classes[task_name]
    except (KeyError, TypeError):
        raise InvalidMessageError(  # pyspacer asserted it
            f"Unknown task_name {task_name!r}; expected one of {', '.join(TASK_NAMES)}.") from None


def return_message_class(task_name: str) -> type[DataClass]:
    task_message_class(task_name)
    return {'extract_features': ExtractFeaturesReturnMsg,
            'train_classifier': TrainClassifierReturnMsg}.get(task_name, ClassifyReturnMsg)


class JobMsg(DataClass):
    """Several tasks of one kind."""

    def __init__(self, task_name: str, tasks: list):
        # A task of the wrong class would fail only when its turn comes.
        message_class = task_message_class(task_name)
        if isinstance(tasks, tuple):
            tasks = list(tasks)
        if not isinstance(tasks, list):
            raise MessageError(f"JobMsg: tasks must be a list, got {type(tasks).__name__}"
                               f" {_short(tasks)}.")
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
                               f" got {type(results).__name__} {_short(results)}.")
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
                                   f" got {type(results).__name__} {_short(results)}.")
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
        from spacer.legacy import warn_once
        warn_once('spacer.messages.DataLocation', 'spacer.data_classes.DataLocation')
        return _DataLocation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
