"""`spacer run` and `spacer demo`: the main job on the command line.

`workers/cli.py` builds the `spacer` command and calls `register` here to
add `run`, `classify` and `demo`. Exit status: 0 done, 1 the job failed, 2 bad
input (the CSV problems are listed with their line numbers).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError(
            f"must be between 0 and 0.5 (exclusive), got {value}")
    return value


def _add_training_options(parser: argparse.ArgumentParser,
                          epochs: int = 10) -> None:
    group = parser.add_argument_group('training')
    group.add_argument('--classifier', choices=('MLP', 'LR'), default='MLP',
                       help='MLP (multi-layer perceptron, CoralNet today) or '
                            'LR (logistic regression); default: %(default)s')
    group.add_argument('--epochs', type=_positive_int, default=epochs,
                       help='training epochs (default: %(default)s)')


def _threshold(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be between 0 and 1 (0.8 accepts confidences of 80% and "
            f"more), got {value}")
    return value


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--accept-threshold', type=_threshold, metavar='T',
                        help="CoralNet's alleviate: accept machine labels "
                             "whose confidence reaches T (0-1); the rest are "
                             "marked 'needs review' in predictions.csv and "
                             "left unlabelled in coralnet_upload.csv")
    parser.add_argument('--report-images', type=_non_negative_int, default=4,
                        metavar='N',
                        help='photos with predicted points drawn in the '
                             'report (default: %(default)s)')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='no progress bars')


def _add_extractor_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--weights', type=Path, metavar='FILE',
                        help="EfficientNet-B0 weights (a torch file holding "
                             "{'net': state_dict}, e.g. CoralNet's "
                             "efficientnet_b0_ver1.pt); default: the built-in "
                             "random-init network")
    source.add_argument('--extractor', type=Path, metavar='JSON',
                        help='a serialized extractor (pyspacer JSON with '
                             'class_path, data_locations, data_hashes)')


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `run` and `demo` to the `spacer` command."""
    run = subparsers.add_parser(
        'run', help='the main job: features, classifier, predictions, report',
        description=(
            'Extract features for every photo named in the CSVs, train a '
            'classifier on the annotated points, evaluate it on held-out '
            'ones, classify the points to classify, and write predictions.csv '
            'and a report.html. Work goes through the task queue: the '
            'embedded in-process worker by default, a fleet when '
            'SPACER_BROKER_URL is set (the output folder and images must '
            'then be on storage the workers share). Re-running resumes: '
            'features and a classifier that are already done are reused.'))
    run.add_argument('images', type=Path, help='folder of survey photos')
    run.add_argument('annotations', type=Path,
                     help='CoralNet annotation CSV (columns Name, Row, Column, '
                          'Label; others ignored)')
    run.add_argument('--points', type=Path, metavar='CSV',
                     help='points to classify (columns Name, Row, Column)')
    run.add_argument('-o', '--output', type=Path, default=Path('spacer-output'),
                     help='output folder (default: %(default)s)')
    _add_extractor_options(run)
    _add_training_options(run)
    split = run.add_argument_group('evaluation')
    split.add_argument('--split', choices=('images', 'points'), default='images',
                       help='hold out whole images (honest for new photos) or '
                            'points stratified by label (default: %(default)s)')
    split.add_argument('--val-ratio', type=_ratio, default=0.1,
                       help='share of annotations held out for validation '
                            '(default: %(default)s)')
    split.add_argument('--ref-ratio', type=_ratio, default=0.1,
                       help='share held out as the reference set (per-epoch '
                            'accuracy and score calibration; default: %(default)s)')
    run.add_argument('--skip-invalid', action='store_true',
                     help='leave out invalid CSV rows and images that fail '
                          'extraction instead of stopping')
    _add_output_options(run)
    run.set_defaults(func=run_command, needs_broker=True)

    classify = subparsers.add_parser(
        'classify', help='classify points with a classifier trained earlier',
        description=(
            'Extract features for the points to classify and classify them '
            'with an existing classifier (spacer\'s classifier.pkl, '
            'pyspacer 0.14\'s or a legacy CoralNet one): no annotations, no '
            'training. Give the extractor the classifier was trained with '
            '(--weights or --extractor); a classifier expecting another '
            'feature length is refused. Writes predictions.csv, cover.csv, '
            'coralnet_upload.csv and report.html.'))
    classify.add_argument('images', type=Path, help='folder of survey photos')
    classify.add_argument('--classifier', type=Path, required=True,
                          metavar='FILE', help='classifier pickle')
    classify.add_argument('--points', type=Path, required=True, metavar='CSV',
                          help='points to classify (columns Name, Row, Column)')
    classify.add_argument('-o', '--output', type=Path,
                          default=Path('spacer-output'),
                          help='output folder (default: %(default)s)')
    _add_extractor_options(classify)
    classify.add_argument('--skip-invalid', action='store_true',
                          help='leave out invalid CSV rows and images that '
                               'fail extraction instead of stopping')
    _add_output_options(classify)
    classify.set_defaults(func=classify_command, needs_broker=True)

    demo = subparsers.add_parser(
        'demo', help='generate a small synthetic survey and run the main job on it',
        description=(
            'Generate a synthetic survey (photos with a distinct texture per '
            'label, CoralNet-style annotations, points to classify with their '
            'true labels), run the main job on it with the built-in default '
            'extractor, and print where the report is. Needs no weights, no '
            'broker and no network; takes a few minutes on 2 CPU cores.'))
    demo.add_argument('-d', '--folder', type=Path, default=Path('spacer-demo'),
                      help='where the survey and the results go '
                           '(default: %(default)s)')
    demo.add_argument('--images', type=_positive_int, default=16,
                      help='annotated photos to generate (default: %(default)s)')
    demo.add_argument('--new-images', type=_non_negative_int, default=4,
                      help='unannotated photos to classify (default: %(default)s)')
    demo.add_argument('--points-per-image', type=_positive_int, default=25,
                      help='points per photo (default: %(default)s)')
    demo.add_argument('--size', default='640x480', metavar='WxH',
                      help='photo size in pixels (default: %(default)s)')
    demo.add_argument('--seed', type=int, default=0,
                      help='dataset seed (default: %(default)s)')
    # A small survey makes one training batch per epoch: give it more.
    _add_training_options(demo, epochs=30)
    _add_output_options(demo)
    demo.set_defaults(func=demo_command)


def _choose_extractor(args: argparse.Namespace):
    from workers.mainjob import extractor_choice
    if getattr(args, 'weights', None):
        return extractor_choice.from_weights(args.weights)
    if getattr(args, 'extractor', None):
        return extractor_choice.from_json(args.extractor)
    return extractor_choice.default(say=_say)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _fail(text: str, status: int) -> int:
    print(f"spacer: error: {text}", file=sys.stderr)
    return status


def _guarded(action) -> int:
    """Run `action`, turning the errors a user can fix into messages, and
    the failures of the job's files and tasks into one line each (no
    traceback: the message names the file or task and the cause)."""
    from spacer.exceptions import SpacerError
    from workers.errors import RemoteError
    from workers.mainjob.csv_input import CsvInputError
    from workers.mainjob.pipeline import JobError
    try:
        return action()
    except CsvInputError as err:
        return _fail(f"problems in the input CSVs:\n{err}", EXIT_BAD_INPUT)
    except (FileNotFoundError, ValueError) as err:
        return _fail(str(err), EXIT_BAD_INPUT)
    except JobError as err:
        return _fail(str(err), EXIT_FAILED)
    except RemoteError as err:
        return _fail(f"a task failed: {err}", EXIT_FAILED)
    except (SpacerError, OSError) as err:
        return _fail(f"{type(err).__name__}: {err}", EXIT_FAILED)


def run_command(args: argparse.Namespace) -> int:
    from workers.mainjob.pipeline import (JobSpec, check_inputs,
                                          check_output_dir, run_job)

    def action() -> int:
        # The CSVs and the output folder first: a bad row or an unwritable
        # folder stops the run before any work, even before the default
        # extractor's weights are made.
        inputs = check_inputs(args.images, args.annotations, args.points,
                              args.skip_invalid)
        check_output_dir(args.output)
        choice = _choose_extractor(args)
        outcome = run_job(JobSpec(
            images_dir=args.images, annotations_csv=args.annotations,
            points_csv=args.points, output_dir=args.output,
            extractor=choice.extractor, extractor_note=choice.note,
            clf_type=args.classifier, epochs=args.epochs, split=args.split,
            ref_ratio=args.ref_ratio, val_ratio=args.val_ratio,
            skip_invalid=args.skip_invalid,
            images_in_report=args.report_images,
            accept_threshold=args.accept_threshold, keep_predictions=False,
            show_progress=not args.quiet), inputs=inputs)
        _print_outcome(outcome)
        return EXIT_OK
    return _guarded(action)


def classify_command(args: argparse.Namespace) -> int:
    from workers.mainjob import existing_classifier
    from workers.mainjob.pipeline import (JobSpec, check_inputs,
                                          check_output_dir, run_job)

    def action() -> int:
        inputs = check_inputs(args.images, None, args.points,
                              args.skip_invalid)
        check_output_dir(args.output)
        choice = _choose_extractor(args)
        try:
            existing_classifier.load(args.classifier, choice.extractor)
        except existing_classifier.ClassifierMismatchError as err:
            return _fail(str(err), EXIT_BAD_INPUT)
        outcome = run_job(JobSpec(
            images_dir=args.images, annotations_csv=None,
            points_csv=args.points, output_dir=args.output,
            extractor=choice.extractor, extractor_note=choice.note,
            classifier_file=args.classifier, skip_invalid=args.skip_invalid,
            images_in_report=args.report_images,
            accept_threshold=args.accept_threshold, keep_predictions=False,
            show_progress=not args.quiet), inputs=inputs)
        _print_outcome(outcome)
        return EXIT_OK
    return _guarded(action)


def _print_outcome(outcome) -> None:
    accuracy = ('n/a' if outcome.accuracy is None
                else f"{100 * outcome.accuracy:.1f}%")
    print(f"Validation accuracy: {accuracy}")
    print(f"Predictions: {outcome.predictions_csv} "
          f"({outcome.points_classified} points)")
    print(f"Cover:       {outcome.cover_csv}")
    print(f"For CoralNet's annotation upload: {outcome.upload_csv}")
    print(f"Classifier:  {outcome.classifier}")
    print(f"Report:      {outcome.report}")


def demo_command(args: argparse.Namespace) -> int:
    from workers.mainjob.demo import run_demo

    def action() -> int:
        width, _, height = args.size.lower().partition('x')
        try:
            size = (int(width), int(height))
        except ValueError:
            raise ValueError(f"--size must look like 640x480, not {args.size!r}")
        result = run_demo(args.folder, annotated_images=args.images,
                          new_images=args.new_images,
                          points_per_image=args.points_per_image, size=size,
                          seed=args.seed, clf_type=args.classifier,
                          epochs=args.epochs,
                          images_in_report=args.report_images,
                          accept_threshold=args.accept_threshold,
                          show_progress=not args.quiet)
        _print_outcome(result.outcome)
        if result.accuracy_on_new is not None:
            print(f"Accuracy on the {len(result.outcome.predictions)} points "
                  f"of the unannotated photos (against the generated truth): "
                  f"{100 * result.accuracy_on_new:.1f}%")
        print(f"Open the report: {result.outcome.report}")
        return EXIT_OK
    return _guarded(action)
