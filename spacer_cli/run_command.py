"""``spacer run``: the main job on a folder of photos and a CoralNet export."""
from __future__ import annotations

import argparse
from pathlib import Path

from spacer_cli import job_options
from spacer_cli.job_outcome import EXIT_OK, guarded, print_outcome, say


def run(args: argparse.Namespace) -> int:
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from spacer_survey.job_storage import storage_for
    from spacer_survey.pipeline import (JobSpec, check_inputs,
                                        check_output_dir, run_job)

    def action() -> int:
        # The storage URL, the CSVs and the output folder first: a bad value,
        # row or an unwritable folder stops the run before any work, even
        # before the default extractor's weights are made.
        storage = storage_for(args.storage, say=say)
        inputs = check_inputs(args.images, args.annotations, args.points,
                              args.skip_invalid)
        check_output_dir(args.output)
        choice = job_options.choose_extractor(args, say)
        outcome = run_job(JobSpec(
            annotations_csv=args.annotations, clf_type=args.classifier,
            epochs=args.epochs, split=args.split, ref_ratio=args.ref_ratio,
            val_ratio=args.val_ratio, **job_options.job_spec_fields(args, choice, storage)),
            inputs=inputs)
        print_outcome(outcome)
        return EXIT_OK
    return guarded(action)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'run', help='the main job: features, classifier, predictions, report',
        description=(
            'Extract features for every photo named in the CSVs, train a '
            'classifier on the annotated points, evaluate it on held-out '
            'ones, classify the points to classify, and write predictions.csv '
            'and a report.html. Work goes through the task queue: the '
            'embedded in-process worker by default, a fleet when '
            'SPACER_BROKER_URL is set (the output folder and images must '
            'then be on storage the workers share, or use --storage). '
            'Re-running resumes: features and a classifier that are already '
            'done are reused.'))
    parser.add_argument('images', type=Path, help='folder of survey photos')
    parser.add_argument('annotations', type=Path,
                        help='CoralNet annotation CSV (columns Name, Row, Column, '
                             'Label; others ignored)')
    parser.add_argument('--points', type=Path, metavar='CSV',
                        help='points to classify (columns Name, Row, Column)')
    parser.add_argument('-o', '--output', type=Path, default=Path('spacer-output'),
                        help='output folder (default: %(default)s)')
    job_options.add_storage_option(parser)
    job_options.add_extractor_options(parser)
    job_options.add_training_options(parser)
    split = parser.add_argument_group('evaluation')
    split.add_argument('--split', choices=('images', 'points'), default='images',
                       help='hold out whole images (honest for new photos) or '
                            'points stratified by label (default: %(default)s)')
    split.add_argument('--val-ratio', type=job_options.ratio, default=0.1,
                       help='share of annotations held out for validation '
                            '(default: %(default)s)')
    split.add_argument('--ref-ratio', type=job_options.ratio, default=0.1,
                       help='share held out as the reference set (per-epoch '
                            'accuracy and score calibration; default: %(default)s)')
    parser.add_argument('--skip-invalid', action='store_true',
                        help='leave out invalid CSV rows and images that fail '
                             'extraction instead of stopping')
    job_options.add_output_options(parser)
    parser.set_defaults(func=run, needs_broker=True)
