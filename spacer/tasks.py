"""The four tasks and process_job: pyspacer's entry points, built for speed."""
from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import tempfile
import time
import traceback
from logging import getLogger
from typing import Callable

import numpy as np

from spacer import config
from spacer.data_classes import ImageFeatures
from spacer.exceptions import ending_with_error_line
from spacer.extras import EXTRA_OF_PACKAGE
from spacer.extract_inputs import check_extract_inputs
from spacer.extractors import device_images
from spacer.extractors.data_files import WeightsFormatError
from spacer.extractors.warm import resolve_device
from spacer.messages import (
    ClassifyFeaturesMsg, ClassifyImageMsg, ClassifyReturnMsg, ExtractFeaturesMsg,
    ExtractFeaturesReturnMsg, JobMsg, JobReturnMsg, TrainClassifierMsg,
    TrainClassifierReturnMsg, task_spec)
from spacer.storage import load_classifier, load_image, store_classifier
from spacer.storage.confinement import confine_message
from spacer.task_table import TASKS

logger = getLogger(__name__)


def _require_message(msg: object, expected: type, task: str) -> None:
    """A task given a dict (say, msg.serialize()) or None fails here, clearly,
    instead of with an AttributeError deep inside."""
    if not isinstance(msg, expected):
        article = 'an' if expected.__name__[0] in 'AEIOU' else 'a'
        raise TypeError(
            f"{task} takes {article} {expected.__name__}, not {type(msg).__name__}.")
    confine_message(msg)  # FILESYSTEM_ROOTS: refused before any I/O


def _extract(msg: ExtractFeaturesMsg | ClassifyImageMsg):
    img, header = _image_to_extract(msg.image_loc)
    check_extract_inputs(header, msg.rowcols, msg.image_loc.key)
    with config.log_entry_and_exit('actual extraction'):
        features, return_msg = msg.extractor(img, msg.rowcols)
    _check_extracted(features, msg)
    return features, return_msg


def _image_to_extract(loc):
    """(decoded image, Pillow image for its size): with JPEG_DECODER=nvjpeg
    on a GPU worker the first is a tensor nvJPEG decoded on the GPU."""
    if device_images.decoder_setting() == 'nvjpeg':
        return device_images.load_for_extraction(loc, resolve_device())
    img = load_image(loc)
    return img, img


def _check_extracted(features: ImageFeatures, msg) -> None:
    """NaN or infinite features come from the network, not the image (e.g.
    corrupt weights): refuse them here, rather than store them for a later
    training or scoring to trip over, blaming the feature file."""
    feat = np.asarray(features.feat)
    if feat.size and not np.isfinite(feat.sum()) and not np.isfinite(feat).all():
        raise WeightsFormatError(
            f"{type(msg.extractor).__name__} produced NaN or infinite features"
            f" for {msg.image_loc.key}; its network or weights file is not usable.")


def extract_features(msg: ExtractFeaturesMsg) -> ExtractFeaturesReturnMsg:
    _require_message(msg, ExtractFeaturesMsg, 'extract_features')
    features, return_msg = _extract(msg)
    with config.log_entry_and_exit('storing features'):
        features.store(msg.feature_loc)
    return return_msg


@contextlib.contextmanager
def _feature_cache(msg: TrainClassifierMsg, labels):
    """Remote feature files are fetched once into a temporary folder."""
    wanted = msg.feature_cache_dir != TrainClassifierMsg.FeatureCache.DISABLED
    if not (labels.has_remote_data and wanted):
        yield
        return
    parent = None if msg.feature_cache_dir == TrainClassifierMsg.FeatureCache.AUTO \
        else str(msg.feature_cache_dir)
    with tempfile.TemporaryDirectory(dir=parent) as local_dir:
        labels.set_filesystem_cache(local_dir)
        try:
            yield
        finally:
            labels.set_filesystem_cache(None)


def _takes_keyword(function: Callable, name: str) -> bool:
    """Whether ``function`` accepts the keyword argument ``name`` (a
    subclass may override ``__call__`` with pyspacer's four arguments)."""
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == name and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
               or p.kind == p.VAR_KEYWORD for p in parameters)


def train_classifier(msg: TrainClassifierMsg,
                     on_epoch: Callable[[int, int, float], None] | None = None) \
        -> TrainClassifierReturnMsg:
    """pyspacer's train_classifier. ``on_epoch(epoch, nbr_epochs, ref_acc)``,
    if given, hears of each finished epoch from trainers that accept it."""
    _require_message(msg, TrainClassifierMsg, 'train_classifier')
    from spacer.task_utils import preprocess_labels  # imports scikit-learn
    labels = preprocess_labels(msg.labels)
    previous = [load_classifier(loc) for loc in msg.previous_model_locs]
    # Extras go only to trainers that take them: a user's pyspacer-style
    # trainer takes just the four arguments.
    extra = {}
    if msg.feature_cache_dir not in (TrainClassifierMsg.FeatureCache.AUTO,
                                     TrainClassifierMsg.FeatureCache.DISABLED) \
            and _takes_keyword(msg.trainer, 'feature_cache_dir'):
        # Large sets are memory-mapped under the folder the message names.
        extra['feature_cache_dir'] = str(msg.feature_cache_dir)
    if on_epoch is not None and _takes_keyword(msg.trainer, 'on_epoch'):
        extra['on_epoch'] = on_epoch
    with _feature_cache(msg, labels), config.log_entry_and_exit('actual training'):
        clf, val_results, return_msg = msg.trainer(
            labels, msg.nbr_epochs, previous, msg.clf_type, **extra)
    with config.log_entry_and_exit('storing classifier and val res'):
        store_classifier(msg.model_loc, clf)
        val_results.store(msg.valresult_loc)
    return return_msg


def classify_features(msg: ClassifyFeaturesMsg) -> ClassifyReturnMsg:
    _require_message(msg, ClassifyFeaturesMsg, 'classify_features')
    from spacer.classify import score_features  # imports scikit-learn
    start = time.time()
    features = ImageFeatures.load(msg.feature_loc)
    clf = load_classifier(msg.classifier_loc)
    scores = score_features(clf, features)
    return ClassifyReturnMsg(runtime=time.time() - start, scores=scores,
                             classes=clf.classes_.tolist(),
                             valid_rowcol=features.valid_rowcol)


def classify_image(msg: ClassifyImageMsg) -> ClassifyReturnMsg:
    _require_message(msg, ClassifyImageMsg, 'classify_image')
    from spacer.classify import score_features  # imports scikit-learn
    start = time.time()
    features, _ = _extract(msg)
    clf = load_classifier(msg.classifier_loc)
    scores = score_features(clf, features, rowcols=msg.rowcols)
    return ClassifyReturnMsg(runtime=time.time() - start, scores=scores,
                             classes=clf.classes_.tolist(), valid_rowcol=True)


# The scoring and label code the tasks call (scikit-learn and scipy: about
# a second to import). Imported with the tasks, as pyspacer does, so that
# no first call pays for it (CoralNet classifies inline, in web requests;
# a worker imports the tasks before its pool forks). A producer install,
# without the worker extra, skips them: a task names the extra when called.
SCORING_MODULES = ('spacer.classify', 'spacer.task_utils')


def _import_scoring_modules() -> None:
    for module in SCORING_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if (e.name or '').split('.')[0] not in EXTRA_OF_PACKAGE:
                raise


# The function of each task of the task table: the one of the task's name.
TASK_FUNCTIONS: dict[str, Callable] = {name: globals()[name] for name in TASKS}


def process_job(job_msg: JobMsg) -> JobReturnMsg:
    """Run every task of the job; a failing task never hides the others.

    When all succeed, ``results`` holds the return messages (pyspacer's form).
    When any fails, ``ok`` is False, ``error_message`` names each failed task
    (job token, error class, traceback) and ``results`` keeps, per task, the
    serialized return message of those that succeeded and None for the others.
    """
    return run_job(job_msg)


def run_job(job_msg: JobMsg,
            on_failure: Callable[[object, Exception], None] | None = None,
            on_task_epoch: Callable[[int, int, int, float], None] | None = None) \
        -> JobReturnMsg:
    """process_job's loop. ``on_failure(task, exc)`` is called for each failed
    task while its exception is being handled; raising from it stops the job
    (the worker layer does so to retry a transient fault). In a training job,
    ``on_task_epoch(task_index, epoch, nbr_epochs, ref_acc)`` hears of each
    finished epoch (task_index counts from 0)."""
    _require_message(job_msg, JobMsg, 'process_job')
    run = TASK_FUNCTIONS[job_msg.task_name]
    results, errors, first_error = [], [], None
    for index, task in enumerate(job_msg.tasks):
        try:
            with config.log_entry_and_exit(f'{job_msg.task_name} [{task.job_token}]'):
                if task_spec(job_msg.task_name).reports_epochs and on_task_epoch is not None:
                    results.append(run(task, on_epoch=functools.partial(on_task_epoch, index)))
                else:
                    results.append(run(task))
        except Exception as e:
            if on_failure is not None:
                on_failure(task, e)
            logger.error('Error executing job %s: %s', task.job_token, traceback.format_exc())
            results.append(None)
            first_error = first_error or e
            errors.append(f"Task {task.job_token!r} failed with {type(e).__name__}: {e}\n"
                          f"{traceback.format_exc()}")
    if not errors:
        return JobReturnMsg(original_job=job_msg, ok=True, results=results, error_message=None)
    return JobReturnMsg(
        original_job=job_msg, ok=False,
        results=[r.serialize() if r is not None else None for r in results],
        # pyspacer stopped at the first failure: its traceback's last line,
        # which CoralNet reads, names that one.
        error_message=ending_with_error_line('\n'.join(errors), first_error))


_import_scoring_modules()
