"""The interfaces of what a message names by ``class_path``: feature
extractors and classifier trainers.

They live at the bottom of the package so that messages can check and build
these parts through ``spacer.class_registry`` without importing the concrete
extractors (torch) or trainers (scikit-learn): ``FeatureExtractor`` and
``ClassifierTrainer``, pyspacer's base classes, implement them.
"""
from __future__ import annotations

import abc

from spacer.class_registry import resolve
from spacer.exceptions import MessageArgumentError, MissingKeyError

# Trainer names a message may give instead of a class path.
BUILTIN_TRAINERS = {'minibatch': 'spacer.train_classifier.MiniBatchTrainer'}


class FeatureExtractorInterface(abc.ABC):
    """Turns an image's points into features; serializes as
    ``{"class_path": ..., "data_locations": ..., "data_hashes": ...}``."""

    # The name errors give this kind of class (pyspacer's base class).
    registry_name = 'FeatureExtractor'

    @abc.abstractmethod
    def serialize(self) -> dict:
        """The JSON form, class_path first."""

    @staticmethod
    def deserialize(data: dict) -> FeatureExtractorInterface:
        """An extractor from its serialized form; class_path must name an
        allow-listed class (spacer.class_registry)."""
        if not isinstance(data, dict) or 'class_path' not in data:
            got = 'an object without one' if isinstance(data, dict) \
                else type(data).__name__
            # pyspacer's callers saw a KeyError, or a TypeError for a non-object.
            error = MissingKeyError if isinstance(data, dict) else MessageArgumentError
            raise error(
                f"A serialized extractor must be a JSON object with a"
                f" 'class_path', got {got}.")
        working = dict(data)
        extractor_class = resolve(working.pop('class_path'), FeatureExtractorInterface)
        if working.get('data_locations') is None:
            working['data_locations'] = {}
        try:
            return extractor_class(**working)
        except TypeError as e:
            # A registered class without **kwargs refusing a field.
            raise MessageArgumentError(f"{extractor_class.__name__}: {e}") from e


class ClassifierTrainerInterface(abc.ABC):
    """Trains a classifier; serializes as ``{"class_path": ..., <parameters>}``."""

    registry_name = 'ClassifierTrainer'

    @abc.abstractmethod
    def serialize(self) -> dict:
        """The JSON form, class_path first."""

    @staticmethod
    def deserialize(data: dict) -> ClassifierTrainerInterface:
        if not isinstance(data, dict) or 'class_path' not in data:
            # pyspacer's callers saw a KeyError, or a TypeError for a non-object.
            error = MissingKeyError if isinstance(data, dict) else MessageArgumentError
            raise error(
                f"A trainer must be a JSON object with a class_path,"
                f" got {data!r}.")
        params = dict(data)
        trainer_class = resolve(params.pop('class_path'), ClassifierTrainerInterface)
        try:
            return trainer_class(**params)
        except TypeError as e:
            raise MessageArgumentError(
                f"{trainer_class.__name__}: bad parameters {params!r}: {e}"
            ) from e


def trainer_factory(trainer_name: str) -> ClassifierTrainerInterface:
    """A trainer from a built-in name ('minibatch') or an allowed class path."""
    class_path = BUILTIN_TRAINERS.get(trainer_name, trainer_name)
    return ClassifierTrainerInterface.deserialize({'class_path': class_path})
