"""The main job: check the CSVs, extract features, train, classify, report.

Every piece of work goes through the task queue (`spacer_survey.dispatch`),
so the same run uses the embedded in-process worker or a fleet. Each
finished artifact is written atomically where a re-run looks for it first:
feature files per extractor (`featurestore.py`), the classifier with the
fingerprint of the training message that made it (`training.json`), in the
output folder or on S3 (`job_storage.py`). A killed run therefore loses
only the work in flight.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from spacer.data_classes import DataLocation, ImageLabels, ValResults
from spacer.extractors.data_files import file_sha256
from spacer.messages import (ClassifyFeaturesMsg, ExtractFeaturesMsg,
                             TrainClassifierMsg)
from spacer.task_utils import SplitMode, preprocess_labels
from spacer_survey import existing_classifier, validation_metrics
from spacer_survey.acceptance import Acceptance
from spacer_survey.acceptance import from_validation as acceptance_from_validation
from spacer_survey.csv_input import (CsvInputError, CsvIssue, PointRow,
                                     format_issues, read_annotations,
                                     read_points)
from spacer_survey.dispatch import Dispatcher, QueueDispatcher
from spacer_survey.featurestore import FeatureStore
from spacer_survey.image_split import split_images_stratified
from spacer_survey.job_storage import LocalFiles, S3Objects, record_of
from spacer_survey.label_coverage import Coverage, coverage, describe_left_out
from spacer_survey.photo_catalog import ImageCatalog
from spacer_survey.predictions import Prediction, rank
from spacer_survey.progress import bar, epoch_follower
from spacer_survey.report import ReportContent, write_report
from spacer_survey.results import ResultPaths, ResultSink
from workers.errors import RemoteError

# What training leaves beside the features, and a re-run reuses.
ARTIFACTS = {'classifier': 'classifier.pkl', 'valresult': 'valresult.json',
             'training': 'training.json'}

SPLIT_MODES = {'images': SplitMode.VECTORS,
               'points': SplitMode.POINTS_STRATIFIED}


class JobError(RuntimeError):
    """The job could not go on; the message says why and what to do."""


class OutputDirError(ValueError):
    """The output folder cannot be created or written (bad input: exit 2)."""


# Errors of the extractor itself (its files or network), not of one image:
# every image would fail the same way, so they stop the job.
EXTRACTOR_ERRORS = frozenset({'WeightsFormatError', 'HashMismatchError',
                              'CaffeFormatError', 'ClassPathError'})


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class JobSpec:
    """Everything `spacer run` was asked to do."""
    images_dir: Path
    annotations_csv: Path | None           # None: classify only
    output_dir: Path
    extractor: object                      # a spacer FeatureExtractor
    points_csv: Path | None = None
    classifier_file: Path | None = None    # classify with it, no training
    accept_threshold: float | None = None  # CoralNet's alleviate, 0-1
    keep_predictions: bool = True          # JobOutcome.predictions (memory!)
    extractor_note: str | None = None      # stated in the output and report
    clf_type: str = 'MLP'
    epochs: int = 10
    ref_ratio: float = 0.1
    val_ratio: float = 0.1
    split: str = 'images'
    skip_invalid: bool = False
    images_in_report: int = 4
    show_progress: bool = True
    say: Callable[[str], None] = _stderr
    # Where photos, features and the classifier go (`--storage`); None:
    # the output folder, photos read where they lie.
    storage: S3Objects | None = None


@dataclass
class JobOutcome:
    """Where the results are and what the run did."""
    output_dir: Path
    report: Path
    predictions_csv: Path
    classifier: Path | str                 # str: an s3:// URL (--storage)
    valresult: Path | str | None
    images_extracted: int
    images_reused: int
    trained: bool
    accuracy: float | None
    skipped_rows: list[CsvIssue] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    cover_csv: Path | None = None
    upload_csv: Path | None = None
    coverage: Coverage | None = None
    acceptance: Acceptance | None = None
    points_classified: int = 0


@dataclass
class _Image:
    """A photo the job touches: its file, canonical name and points."""
    name: str
    path: Path
    annotations: list[PointRow] = field(default_factory=list)
    to_classify: list[PointRow] = field(default_factory=list)

    @property
    def rowcols(self) -> list[tuple[int, int]]:
        seen: dict[tuple[int, int], None] = {}
        for point in self.annotations + self.to_classify:
            seen.setdefault((point.row, point.col))
        return list(seen)


@dataclass
class CheckedInputs:
    """The valid rows of the input CSVs, and the invalid ones left out."""
    annotations: list[PointRow]
    to_classify: list[PointRow]
    skipped: list[CsvIssue]


def check_inputs(images_dir: Path, annotations_csv: Path | None,
                 points_csv: Path | None, skip_invalid: bool,
                 say: Callable[[str], None] = _stderr) -> CheckedInputs:
    """Read and check both CSVs against the photos, before any work starts.
    Raises CsvInputError listing every problem by line, unless
    `skip_invalid` (problems that leave nothing to read always raise).
    No annotations CSV (classifying only): the points CSV is required."""
    catalog = ImageCatalog(images_dir)
    annotations = (read_annotations(annotations_csv, catalog)
                   if annotations_csv is not None else None)
    points = read_points(points_csv, catalog) if points_csv is not None else None
    tables = [table for table in (annotations, points) if table is not None]
    issues = [issue for table in tables for issue in table.issues]
    if any(issue.fatal for issue in issues):
        raise CsvInputError(issues)
    if issues and not skip_invalid:
        raise CsvInputError(
            issues, hint="Nothing was run. Fix these rows, or pass "
                         "--skip-invalid to leave them out.")
    if issues:
        say(f"Leaving out {len(issues)} invalid rows:\n"
            + format_issues(issues, limit=10))
    if annotations is not None and not annotations.rows:
        raise JobError("No valid annotation rows are left to train on.")
    if annotations is None and (points is None or not points.rows):
        raise JobError("No valid points are left to classify.")
    return CheckedInputs(annotations.rows if annotations else [],
                         points.rows if points else [], issues)


def _group(images_dir: Path, annotations: list[PointRow],
           to_classify: list[PointRow]) -> dict[str, _Image]:
    images: dict[str, _Image] = {}
    for kind, rows in (('annotations', annotations),
                       ('to_classify', to_classify)):
        for point in rows:
            name = point.path.relative_to(images_dir).as_posix()
            image = images.setdefault(name, _Image(name, point.path))
            getattr(image, kind).append(point)
    return images


def _short_hash(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]


def check_output_dir(path: Path | str) -> None:
    """Raise OutputDirError unless `path` is a folder, or can be made one,
    that this process may write to. Creates nothing, so it can run before
    any other check."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        kind = 'a file' if path.is_file() else 'not a folder'
        raise OutputDirError(f"output folder {path} is {kind}")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputDirError(f"output folder {path} cannot be created: "
                             f"{existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = 'written' if existing == path else 'created'
        raise OutputDirError(f"output folder {path} cannot be {verb}: no "
                             f"write permission in {existing}")


def _make_output_dir(path: Path) -> None:
    """Create the output folder and prove it writable (permission bits do
    not tell about read-only mounts, nor bind a root user)."""
    check_output_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise OutputDirError(f"output folder {path} cannot be written: "
                             f"{err.strerror or err}") from err


def _error_type(error: BaseException) -> str:
    """The original class name of a task's error (RemoteError keeps it)."""
    return error.error_type if isinstance(error, RemoteError) else type(error).__name__


def _data_files(extractor) -> str:
    """The extractor's data files, for messages."""
    locations = getattr(extractor, 'data_locations', {}) or {}
    return ', '.join(f"{key} file {loc.key}" for key, loc in locations.items())


def _not_usable(extractor, reason: str) -> JobError:
    files = _data_files(extractor)
    what = (f"The feature extractor ({type(extractor).__name__}, {files})"
            if files else f"The feature extractor {type(extractor).__name__}")
    reason = reason.rstrip(' :.')   # torch may leave the detail empty
    return JobError(f"{what} is not usable: {reason}. No image was "
                    "extracted with it; check the weights file (--weights) or "
                    "the extractor JSON (--extractor).")


def check_extractor(extractor) -> None:
    """Load the extractor's files, build its network and run it on one
    patch, here and once, before any image is sent: broken weights would
    otherwise fail (or, worse, yield NaN features) on every image, and be
    blamed on the images. The model stays warm for an embedded worker."""
    size = int(getattr(extractor, 'CROP_SIZE', 224))
    photo = Image.fromarray(np.random.default_rng(0).integers(
        0, 256, size=(size, size, 3), dtype=np.uint8))
    try:
        # The call every extractor has (pyspacer's API), as a worker makes it.
        features, _ = extractor(photo, [(size // 2, size // 2)])
        values = np.asarray(features.feat, dtype=float)
    except Exception as err:    # whatever the files or network fail with
        raise _not_usable(extractor, f"{type(err).__name__}: {err}") from err
    if values.size == 0 or not np.isfinite(values).all():
        raise _not_usable(extractor, "it computes NaN or infinite features "
                                     "(its weights hold NaN or infinity)")


def _image_digests(images: dict[str, _Image]
                   ) -> tuple[dict[str, str], dict[str, str]]:
    """sha256 of each photo's content, and the photos that can't be read."""
    digests, failures = {}, {}
    for image in images.values():
        try:
            digests[image.name] = file_sha256(image.path)
        except (OSError, ValueError) as err:  # ValueError: not a regular file
            failures[image.name] = f"cannot be read ({getattr(err, 'strerror', None) or err})"
    return digests, failures


def _extract(spec: JobSpec, images: dict[str, _Image], store: FeatureStore,
             dispatcher: Dispatcher, run_key: str
             ) -> tuple[int, int, dict[str, str]]:
    """Extract what is missing or stale. Returns (extracted, reused,
    failures). Raises JobError when the extractor itself is at fault."""
    digests, failures = _image_digests(images)
    todo = [image for image in images.values() if image.name in digests
            and not store.has_points(image.name, image.rowcols,
                                     digests[image.name])]
    reused = len(digests) - len(todo)
    if reused:
        spec.say(f"Reusing features of {reused} images from an earlier run "
                 f"({store.folder}).")
    changed = [image.name for image in todo
               if store.recorded_source(image.name) not in
               (None, digests[image.name])]
    if changed:
        more = ' ...' if len(changed) > 10 else ''
        spec.say(f"{len(changed)} photos changed since their features were "
                 f"extracted; extracting them again: "
                 f"{', '.join(changed[:10])}{more}")
    if not todo:
        return 0, reused, failures
    if getattr(dispatcher, 'runs_here', True):
        # A fleet reports unusable weights from its first task instead: the
        # network is not built in this (producer) process.
        check_extractor(spec.extractor)
    files = store.files
    photo_locs = files.photo_locations(
        ((image.name, image.path) for image in todo), spec.say)
    # Workers elsewhere load the extractor's local files from the job's
    # storage (S3); the embedded worker reads them where they lie.
    extractor = (spec.extractor if getattr(dispatcher, 'runs_here', True)
                 else files.published_extractor(spec.extractor))
    for image in todo:
        store.begin(image.name, digests[image.name])
    # Job tokens name the output folder, image content and points: the
    # queue runs one task per token at a time, and a task left in flight by
    # a killed run is waited for instead of being run twice.
    messages = [ExtractFeaturesMsg(
        job_token=(f"{run_key}:extract:{image.name}:{digests[image.name][:12]}"
                   f":{_short_hash(image.rowcols)}"),
        extractor=extractor,
        rowcols=image.rowcols,
        image_loc=photo_locs[image.name],
        feature_loc=store.location(image.name)) for image in todo]
    with bar(len(images), 'Extracting features', 'image', spec.show_progress,
             initial=reused) as progress:
        for image, outcome in zip(
                todo, dispatcher.run_all('extract_features', messages)):
            if isinstance(outcome, Exception):
                if _error_type(outcome) in EXTRACTOR_ERRORS:
                    raise _not_usable(spec.extractor, f"extracting "
                                      f"{image.name} failed with {outcome}")
                failures[image.name] = str(outcome)
            progress.update(1)
    extracted = sum(1 for image in todo if image.name not in failures)
    return extracted, reused, failures


def _fingerprint(message: TrainClassifierMsg) -> str:
    """What determines the classifier: everything but the job token."""
    content = {k: v for k, v in message.serialize().items() if k != 'job_token'}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str)
                          .encode('utf-8')).hexdigest()


def _train(spec: JobSpec, images: dict[str, _Image], store: FeatureStore,
           dispatcher: Dispatcher, run_key: str
           ) -> tuple[bool, dict, Coverage]:
    """Train unless the same training already finished. Returns (trained,
    what training reported, where each label's annotations went). The
    classifier, valresult and the training record lie beside the features
    (`ARTIFACTS`)."""
    files = store.files
    labels = ImageLabels({
        store.location(image.name): [(p.row, p.col, p.label)
                                     for p in image.annotations]
        for image in images.values() if image.annotations})
    try:
        if spec.split == 'images':
            split = preprocess_labels(split_images_stratified(
                labels, (spec.ref_ratio, spec.val_ratio)))
        else:
            split = preprocess_labels(
                labels, split_ratios=(spec.ref_ratio, spec.val_ratio),
                split_mode=SPLIT_MODES[spec.split])
    except Exception as err:
        hint = (" With few images, holding out whole images can leave a "
                "label out of a set: try --split points."
                if spec.split == 'images' else '')
        raise JobError(f"Cannot train on these annotations: {err}{hint}") from err
    message = TrainClassifierMsg(
        job_token='spacer-run', trainer='minibatch', nbr_epochs=spec.epochs,
        clf_type=spec.clf_type, labels=split, previous_model_locs=[],
        model_loc=files.location(ARTIFACTS['classifier']),
        valresult_loc=files.location(ARTIFACTS['valresult']),
        feature_cache_dir=TrainClassifierMsg.FeatureCache.DISABLED)
    label_use = coverage(labels, split, spec.split)
    explained = describe_left_out(label_use)
    if explained:
        spec.say(explained)
    fingerprint = _fingerprint(message)
    message.job_token = f"{run_key}:train:{fingerprint[:12]}"
    record_key = ARTIFACTS['training']
    if all(files.exists(key) for key in ARTIFACTS.values()):
        # An unreadable record counts as none: training runs again.
        record = record_of(files, record_key)
        if record.get('message_sha256') == fingerprint:
            spec.say("Reusing the classifier trained by an earlier run on the "
                     "same features and labels.")
            return False, record, label_use
    # From here until the new record is written, no record vouches for
    # whatever classifier file lies there (a crash mid-training).
    files.delete(record_key)
    spec.say(f"Training a {spec.clf_type} classifier: "
             f"{split.train.label_count} training, {split.ref.label_count} "
             f"reference and {split.val.label_count} validation points, "
             f"{spec.epochs} epochs.")
    started = time.time()
    with bar(spec.epochs, 'Training', 'epoch', spec.show_progress) as progress:
        # The worker reports each epoch it finishes (polled every
        # WAIT_TICK); the count is made whole when the return message comes.
        try:
            returned = dispatcher.run_one('train_classifier', message,
                                          on_wait=epoch_follower(progress))
        except Exception as err:    # RemoteError, TimeoutError, broker down
            raise JobError(f"training failed: {err}") from err
        progress.update(max(0, (len(returned.ref_accs) or spec.epochs) - progress.n))
    record = {'message_sha256': fingerprint, 'acc': returned.acc,
              'ref_accs': list(returned.ref_accs), 'runtime': returned.runtime,
              'wall_time': time.time() - started,
              'train_points': split.train.label_count,
              'ref_points': split.ref.label_count,
              'val_points': split.val.label_count}
    files.write_text(record_key, json.dumps(record, indent=2))
    return True, record, label_use


def _classify(spec: JobSpec, images: dict[str, _Image], store: FeatureStore,
              dispatcher: Dispatcher, classifier: DataLocation, run_key: str,
              classifier_id: str, sink: ResultSink) -> None:
    """Classify image by image into `sink`: images in the order of their
    first point in the points file, points in the file's order."""
    wanted = sorted((image for image in images.values() if image.to_classify),
                    key=lambda image: min(p.line for p in image.to_classify))
    messages = (ClassifyFeaturesMsg(
        job_token=f"{run_key}:classify:{classifier_id[:12]}:{image.name}",
        feature_loc=store.location(image.name),
        classifier_loc=classifier)
        for image in wanted)
    with bar(len(wanted), 'Classifying', 'image', spec.show_progress) as progress:
        for image, returned in zip(
                wanted, dispatcher.run_all('classify_features', messages)):
            if isinstance(returned, Exception):
                raise JobError(f"Classifying {image.name} failed: {returned}")
            points = sorted(image.to_classify, key=lambda p: p.line)
            sink.add(image.name, [
                Prediction(point.name, point.row, point.col,
                           rank(returned[(point.row, point.col)],
                                returned.classes))
                for point in points])
            progress.update(1)


def _epochs_summary(record: dict) -> str:
    accs = record.get('ref_accs') or []
    if not accs:
        return 'n/a'
    return (f"{accs[0]:.3f} after epoch 1, {accs[-1]:.3f} after epoch "
            f"{len(accs)} (best {max(accs):.3f})")


def _describe_extractor(spec: JobSpec, store: FeatureStore) -> str:
    name = type(spec.extractor).__name__
    files = ', '.join(Path(loc.key).name for loc in
                      getattr(spec.extractor, 'data_locations', {}).values())
    return f"{name} ({files or 'no data files'}), id {store.identity}"


def _summary(spec: JobSpec, images: dict[str, _Image], images_dir: Path,
             sink: ResultSink, skipped: list[CsvIssue], store: FeatureStore,
             extracted: int, reused: int, record: dict | None,
             label_use: Coverage | None, seconds: float
             ) -> list[tuple[str, str]]:
    """The report's table of what this run did."""
    annotated = [image for image in images.values() if image.annotations]
    rows = [('Images folder', str(images_dir))]
    if label_use is not None:
        totals = label_use.totals()
        rows.append(('Annotations', (
            f"{totals['annotations']} points on {len(annotated)} images: "
            f"{totals['train']} train + {totals['ref']} reference + "
            f"{totals['val']} validation + {totals['left_out']} left out "
            f"({len(label_use.left_out)} label(s) that cannot be learned)")))
    rows += [
        ('Points classified', f"{sink.points} on {len(sink.cover.counts)} images"),
        ('Invalid rows left out', str(len(skipped))),
        ('Feature extractor', _describe_extractor(spec, store)),
        ('Features', f"{extracted} images extracted, {reused} reused"),
    ]
    if record is not None:
        rows += [
            ('Classifier', f"{spec.clf_type}, {spec.epochs} epochs, split by "
                           f"{spec.split} (stratified by label)"),
            ('Reference accuracy by epoch', _epochs_summary(record))]
    else:
        rows.append(('Classifier', f"{spec.classifier_file} (trained "
                                   "earlier; no validation in this run)"))
    rows.append(('Run time', f"{seconds:.1f} s"))
    return rows


def _prepare(spec: JobSpec, inputs: CheckedInputs | None, dispatcher):
    """Check inputs and output folder, extract features. Returns what the
    rest of the job needs."""
    if spec.split not in SPLIT_MODES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_MODES)}")
    check_output_dir(spec.output_dir)
    if inputs is None:
        inputs = check_inputs(spec.images_dir, spec.annotations_csv,
                              spec.points_csv, spec.skip_invalid, spec.say)
    images_dir = Path(spec.images_dir).resolve()
    images = _group(images_dir, inputs.annotations, inputs.to_classify)
    output = Path(spec.output_dir).resolve()
    _make_output_dir(output)
    if spec.extractor_note:
        spec.say(spec.extractor_note)
    store = FeatureStore(spec.storage or LocalFiles(output), spec.extractor)
    # Job tokens name where the artifacts go: the output folder, or S3.
    place = str(output) if spec.storage is None else spec.storage.place('')
    run_key = 'spacer-run:' + _short_hash([place, store.identity])
    extracted, reused, failures = _extract(spec, images, store, dispatcher,
                                           run_key)
    if failures:
        listing = '\n'.join(f"  {name}: {error}"
                            for name, error in list(failures.items())[:20])
        if not spec.skip_invalid:
            raise JobError(
                f"Feature extraction failed for {len(failures)} images (the "
                f"others are saved and a re-run reuses them):\n{listing}\n"
                "Fix or remove these images, or pass --skip-invalid to leave "
                "them out.")
        spec.say(f"Leaving out {len(failures)} images whose extraction "
                 f"failed:\n{listing}")
        images = {n: i for n, i in images.items() if n not in failures}
        if (spec.classifier_file is None
                and not any(image.annotations for image in images.values())):
            raise JobError(
                "Feature extraction failed for every annotated image (see "
                "the list above): no annotations are left to train on.")
    return inputs, images_dir, images, output, store, run_key, extracted, reused


def _say_acceptance(spec: JobSpec, acceptance: Acceptance | None) -> None:
    if acceptance is None:
        return
    share = acceptance.share_accepted
    expected = acceptance.expected_accuracy
    spec.say(
        f"Accept threshold {acceptance.threshold:.2f}: {acceptance.accepted} of "
        f"{acceptance.points} points accepted"
        + (f" ({100 * share:.1f}%)" if share is not None else '')
        + (f"; expected accuracy on them {100 * expected:.1f}% "
           f"({acceptance.validation_correct} of "
           f"{acceptance.validation_accepted} validation points at or above "
           "it were right)" if expected is not None else
           "; no validation point reaches it, so no accuracy can be expected"
           if acceptance.validation_points else
           "; no validation results to estimate their accuracy"))


def run_job(spec: JobSpec, dispatcher: Dispatcher | None = None,
            inputs: CheckedInputs | None = None) -> JobOutcome:
    """Run the whole main job; raise CsvInputError or JobError with a
    message for the user when it cannot. `inputs`: the CSVs as
    `check_inputs` already read them for this spec. With
    `spec.classifier_file`, no training: that classifier classifies."""
    started = time.time()
    loaded = None
    if spec.classifier_file is not None:
        loaded = existing_classifier.load(spec.classifier_file, spec.extractor)
    dispatcher = dispatcher or QueueDispatcher()
    (inputs, images_dir, images, output, store, run_key, extracted,
     reused) = _prepare(spec, inputs, dispatcher)
    files = store.files
    report_path = output / 'report.html'
    result_paths = ResultPaths(output / 'predictions.csv',
                               output / 'coralnet_upload.csv',
                               output / 'cover.csv')
    if loaded is None:
        trained, record, label_use = _train(spec, images, store, dispatcher,
                                            run_key)
        valresults = ValResults.load(files.location(ARTIFACTS['valresult']))
        classifier_loc = files.location(ARTIFACTS['classifier'])
        classifier = files.place(ARTIFACTS['classifier'])
        classifier_id = record['message_sha256']
        labels = [str(c) for c in valresults.classes]
    else:
        trained, record, label_use, valresults = False, None, None, None
        classifier = loaded.path
        classifier_id = file_sha256(loaded.path)
        classifier_loc = files.classifier_location(loaded.path, classifier_id)
        labels = loaded.classes

    sink = ResultSink(result_paths, labels, spec.accept_threshold,
                      spec.images_in_report, keep_all=spec.keep_predictions)
    try:
        _classify(spec, images, store, dispatcher, classifier_loc, run_key,
                  classifier_id, sink)
    except BaseException:
        sink.abandon()
        raise
    sink.close()
    acceptance = None
    if spec.accept_threshold is not None:
        acceptance = replace(
            acceptance_from_validation(spec.accept_threshold, valresults),
            points=sink.points, accepted=sink.accepted)
    _say_acceptance(spec, acceptance)

    accuracy = (validation_metrics.overall_accuracy(valresults)
                if valresults is not None else None)
    summary = _summary(spec, images, images_dir, sink, inputs.skipped, store,
                       extracted, reused, record, label_use,
                       time.time() - started)
    notices = [spec.extractor_note] if spec.extractor_note else []
    write_report(report_path, ReportContent(
        valresults=valresults, summary=summary, notices=notices,
        predictions=[p for drawn in sink.drawn.values() for p in drawn],
        image_paths={image.name: image.path for image in images.values()
                     if image.name in sink.drawn},
        images_to_draw=spec.images_in_report, coverage=label_use,
        cover=sink.cover, acceptance=acceptance, points_classified=sink.points))
    valresult = files.place(ARTIFACTS['valresult']) if loaded is None else None
    return JobOutcome(output, report_path, result_paths.predictions,
                      classifier, valresult,
                      extracted, reused, trained, accuracy, inputs.skipped,
                      sink.kept, cover_csv=result_paths.cover,
                      upload_csv=result_paths.upload, coverage=label_use,
                      acceptance=acceptance, points_classified=sink.points)
