"""``spacer classify``: classify points with a classifier trained earlier."""
from __future__ import annotations

import argparse
from pathlib import Path

from spacer_cli import job_options
from spacer_cli.job_outcome import (EXIT_BAD_INPUT, EXIT_OK, fail, guarded,
                                    print_outcome, say)


def run(args: argparse.Namespace) -> int:
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from spacer_survey import existing_classifier
    from spacer_survey.job_storage import storage_for
    from spacer_survey.pipeline import (JobSpec, check_inputs,
                                        check_output_dir, run_job)

    def action() -> int:
        storage = storage_for(args.storage, say=say)
        inputs = check_inputs(args.images, None, args.points,
                              args.skip_invalid)
        check_output_dir(args.output)
        choice = job_options.choose_extractor(args, say)
        try:
            existing_classifier.load(args.classifier, choice.extractor)
        except existing_classifier.ClassifierMismatchError as err:
            return fail(str(err), EXIT_BAD_INPUT)
        outcome = run_job(JobSpec(
            annotations_csv=None, classifier_file=args.classifier,
            **job_options.job_spec_fields(args, choice, storage)), inputs=inputs)
        print_outcome(outcome)
        return EXIT_OK
    return guarded(action)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'classify', help='classify points with a classifier trained earlier',
        description=(
            'Extract features for the points to classify and classify them '
            'with an existing classifier (spacer\'s classifier.pkl, '
            'pyspacer 0.14\'s or a legacy CoralNet one): no annotations, no '
            'training. Give the extractor the classifier was trained with '
            '(--weights or --extractor); a classifier expecting another '
            'feature length is refused. Writes predictions.csv, cover.csv, '
            'coralnet_upload.csv and report.html.'))
    parser.add_argument('images', type=Path, help='folder of survey photos')
    parser.add_argument('--classifier', type=Path, required=True,
                        metavar='FILE', help='classifier pickle')
    parser.add_argument('--points', type=Path, required=True, metavar='CSV',
                        help='points to classify (columns Name, Row, Column)')
    parser.add_argument('-o', '--output', type=Path,
                        default=Path('spacer-output'),
                        help='output folder (default: %(default)s)')
    job_options.add_storage_option(parser)
    job_options.add_extractor_options(parser)
    parser.add_argument('--skip-invalid', action='store_true',
                        help='leave out invalid CSV rows and images that '
                             'fail extraction instead of stopping')
    job_options.add_output_options(parser)
    parser.set_defaults(func=run, needs_broker=True)
