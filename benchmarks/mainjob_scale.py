"""Does `spacer run` stay within the memory of the classifier and one batch
on a large survey? Peak memory (ru_maxrss) and wall time of the main job,
each survey size in a fresh process, so the peaks do not mix.

A survey of N photos to classify with P points each (small generated photos,
as cost is per point, not per pixel) plus a fixed annotated part to train
on, through the embedded queue worker. By default features come from
pyspacer's DummyExtractor at EfficientNet-B0's 1280 dimensions: what is
measured is the job's own bookkeeping (CSVs, feature files, queue, training,
classification, outputs, report), not the network, which a 2-core CPU
would need over 20 minutes for 100,000 patches. `--extractor default` uses
the built-in EfficientNet-B0 instead.

    .venv/bin/python benchmarks/mainjob_scale.py                 # 200 and 2000 photos
    .venv/bin/python benchmarks/mainjob_scale.py --photos 2000 --points 50
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _one_run(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT))
    from spacer.extractors import DummyExtractor
    from spacer_survey.pipeline import JobSpec, run_job
    from spacer_survey.synthetic_survey import SurveySpec, generate_survey

    folder = Path(args.folder)
    photos = args.photos[0]
    started = time.perf_counter()
    survey = generate_survey(folder / 'survey', SurveySpec(
        annotated_images=args.annotated, unannotated_images=photos,
        width=args.size, height=args.size * 3 // 4,
        points_per_image=args.points, seed=1))
    generated = time.perf_counter() - started
    after_generation = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.extractor == 'dummy':
        extractor = DummyExtractor(feature_dim=1280)
    else:
        from spacer_survey.extractor_choice import default
        extractor = default(folder / 'weights').extractor
    started = time.perf_counter()
    outcome = run_job(JobSpec(
        images_dir=survey.images_dir, annotations_csv=survey.annotations_csv,
        points_csv=survey.points_csv, output_dir=folder / 'out',
        extractor=extractor, epochs=args.epochs, accept_threshold=0.8,
        keep_predictions=False, show_progress=False, say=lambda text: None))
    wall = time.perf_counter() - started
    return {'photos_to_classify': photos, 'points_per_photo': args.points,
            'annotated_photos': args.annotated,
            'points_classified': outcome.points_classified,
            'extractor': args.extractor, 'job_wall_s': round(wall, 1),
            'generation_s': round(generated, 1),
            'peak_rss_mib': round(resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            'peak_rss_after_generation_mib': round(after_generation / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--photos', type=int, nargs='+', default=[200, 2000])
    parser.add_argument('--points', type=int, default=50)
    parser.add_argument('--annotated', type=int, default=100)
    parser.add_argument('--size', type=int, default=96,
                        help='photo width in pixels (height 3/4 of it)')
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--extractor', choices=('dummy', 'default'),
                        default='dummy')
    parser.add_argument('--one', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--folder', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one_run(args)))
        return
    for photos in args.photos:
        with tempfile.TemporaryDirectory() as folder:
            command = [sys.executable, __file__, '--one', '--folder', folder,
                       '--photos', str(photos), '--points', str(args.points),
                       '--annotated', str(args.annotated), '--size',
                       str(args.size), '--epochs', str(args.epochs),
                       '--extractor', args.extractor]
            done = subprocess.run(command, capture_output=True, text=True,
                                  cwd=ROOT)
            if done.returncode:
                sys.exit(f"run with {photos} photos failed:\n{done.stderr}")
            print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == '__main__':
    main()
