"""``spacer demo``: a generated survey through the whole main job."""
from __future__ import annotations

import argparse
from pathlib import Path

from spacer_cli import job_options
from spacer_cli.job_outcome import EXIT_OK, guarded, print_outcome


def run(args: argparse.Namespace) -> int:
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from spacer_survey.demo import run_demo

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
        print_outcome(result.outcome)
        if result.accuracy_on_new is not None:
            print(f"Accuracy on the {len(result.outcome.predictions)} points "
                  f"of the unannotated photos (against the generated truth): "
                  f"{100 * result.accuracy_on_new:.1f}%")
        print(f"Open the report: {result.outcome.report}")
        return EXIT_OK
    return guarded(action)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'demo', help='generate a small synthetic survey and run the main job on it',
        description=(
            'Generate a synthetic survey (photos with a distinct texture per '
            'label, CoralNet-style annotations, points to classify with their '
            'true labels), run the main job on it with the built-in default '
            'extractor, and print where the report is. Needs no weights, no '
            'broker and no network; takes a few minutes on 2 CPU cores.'))
    parser.add_argument('-d', '--folder', type=Path, default=Path('spacer-demo'),
                        help='where the survey and the results go '
                             '(default: %(default)s)')
    parser.add_argument('--images', type=job_options.positive_int, default=16,
                        help='annotated photos to generate (default: %(default)s)')
    parser.add_argument('--new-images', type=job_options.non_negative_int, default=4,
                        help='unannotated photos to classify (default: %(default)s)')
    parser.add_argument('--points-per-image', type=job_options.positive_int, default=25,
                        help='points per photo (default: %(default)s)')
    parser.add_argument('--size', default='640x480', metavar='WxH',
                        help='photo size in pixels (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='dataset seed (default: %(default)s)')
    # A small survey makes one training batch per epoch: give it more.
    job_options.add_training_options(parser, epochs=30)
    job_options.add_output_options(parser)
    parser.set_defaults(func=run)
