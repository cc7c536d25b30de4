"""Options the survey commands (``run``, ``classify``, ``demo``) share, and
the value checks argparse applies to them (a bad value: usage and one line)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable


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


def _threshold(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be between 0 and 1 (0.8 accepts confidences of 80% and "
            f"more), got {value}")
    return value


# argparse names a value's type function when the value is not even a number
# ("invalid _positive_int value: 'abc'"): the functions keep the names that
# message always had, and are used through these names.
positive_int, non_negative_int, ratio, threshold = (
    _positive_int, _non_negative_int, _ratio, _threshold)


def add_training_options(parser: argparse.ArgumentParser, epochs: int = 10) -> None:
    group = parser.add_argument_group('training')
    group.add_argument('--classifier', choices=('MLP', 'LR'), default='MLP',
                       help='MLP (multi-layer perceptron, CoralNet today) or '
                            'LR (logistic regression); default: %(default)s')
    group.add_argument('--epochs', type=positive_int, default=epochs,
                       help='training epochs (default: %(default)s)')


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--accept-threshold', type=threshold, metavar='T',
                        help="CoralNet's alleviate: accept machine labels "
                             "whose confidence reaches T (0-1); the rest are "
                             "marked 'needs review' in predictions.csv and "
                             "left unlabelled in coralnet_upload.csv")
    parser.add_argument('--report-images', type=non_negative_int, default=4,
                        metavar='N',
                        help='photos with predicted points drawn in the '
                             'report (default: %(default)s)')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='no progress bars')


def add_extractor_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--weights', type=Path, metavar='FILE',
                        help="EfficientNet-B0 weights (a torch file holding "
                             "{'net': state_dict}, e.g. CoralNet's "
                             "efficientnet_b0_ver1.pt); default: the built-in "
                             "random-init network")
    source.add_argument('--extractor', type=Path, metavar='JSON',
                        help='a serialized extractor (pyspacer JSON with '
                             'class_path, data_locations, data_hashes)')


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--storage', metavar='s3://BUCKET/PREFIX',
                        help='keep the photos, features, classifier and '
                             'valresult on S3 under PREFIX (photos are '
                             'uploaded once), so workers on other hosts '
                             'share nothing but the bucket; the CSVs and '
                             'the report still go to the output folder. '
                             'Uses the S3 settings (S3_ENDPOINT_URL, '
                             'AWS_*). Default: the local filesystem')


def choose_extractor(args: argparse.Namespace, say: Callable[[str], None]) -> Any:
    """The extractor the options name (``--weights``, ``--extractor``), else
    the built-in default one."""
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from spacer_survey import extractor_choice
    if getattr(args, 'weights', None):
        return extractor_choice.from_weights(args.weights)
    if getattr(args, 'extractor', None):
        return extractor_choice.from_json(args.extractor)
    return extractor_choice.default(say=say)


def job_spec_fields(args: argparse.Namespace, choice: Any, storage: Any) -> dict[str, Any]:
    """The JobSpec fields that `spacer run` and `spacer classify` both take
    from their shared options (photos, points, output, extractor, storage)."""
    return dict(images_dir=args.images, points_csv=args.points, output_dir=args.output,
                extractor=choice.extractor, extractor_note=choice.note,
                skip_invalid=args.skip_invalid, images_in_report=args.report_images,
                accept_threshold=args.accept_threshold, keep_predictions=False,
                show_progress=not args.quiet, storage=storage)
