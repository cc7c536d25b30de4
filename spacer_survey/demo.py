"""`spacer demo`: a generated survey through the whole main job.

The survey's unannotated photos come with their true labels, so besides the
validation accuracy the demo reports how well the predictions for new photos
match the truth: an honest figure for a classifier built from nothing but
the default extractor.
"""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from spacer_survey import extractor_choice as choices
from spacer_survey.pipeline import JobOutcome, JobSpec, run_job
from spacer_survey.synthetic_survey import SurveyDataset, SurveySpec, generate_survey


@dataclass
class DemoResult:
    dataset: SurveyDataset
    outcome: JobOutcome
    accuracy_on_new: float | None


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _survey(folder: Path, spec: SurveySpec, say) -> SurveyDataset:
    """Generate the survey unless the same one is already there."""
    marker = folder / 'spec.json'
    wanted = json.dumps(asdict(spec), sort_keys=True)
    if marker.is_file() and marker.read_text() == wanted:
        has_new = spec.unannotated_images > 0
        return SurveyDataset(
            folder, folder / 'images', folder / 'annotations.csv',
            folder / 'points.csv' if has_new else None,
            folder / 'truth.csv' if has_new else None, spec.labels)
    say(f"Generating a synthetic survey in {folder}: "
        f"{spec.annotated_images} annotated and {spec.unannotated_images} "
        f"new photos of {spec.width} x {spec.height} pixels, "
        f"{spec.points_per_image} points each, labels "
        f"{', '.join(spec.labels)}.")
    dataset = generate_survey(folder, spec)
    marker.write_text(wanted)
    return dataset


def accuracy_against_truth(outcome: JobOutcome, truth_csv: Path) -> float | None:
    """Share of predicted points whose top label is the true one."""
    with truth_csv.open(newline='', encoding='utf-8') as handle:
        truth = {(r['Name'], int(r['Row']), int(r['Column'])): r['Label']
                 for r in csv.DictReader(handle)}
    judged = [p.label == truth[(p.name, p.row, p.col)]
              for p in outcome.predictions if (p.name, p.row, p.col) in truth]
    return sum(judged) / len(judged) if judged else None


def run_demo(folder: Path | str, annotated_images: int = 16,
             new_images: int = 4, points_per_image: int = 25,
             size: tuple[int, int] = (640, 480), seed: int = 0,
             clf_type: str = 'MLP', epochs: int = 30,
             images_in_report: int = 4, show_progress: bool = True,
             accept_threshold: float | None = None, extractor_choice=None,
             dispatcher=None, say=None) -> DemoResult:
    """Generate (or reuse) the survey under `folder`/survey and run the main
    job into `folder`/output with the default extractor."""
    folder = Path(folder)
    spec = SurveySpec(annotated_images=annotated_images,
                      unannotated_images=new_images,
                      width=size[0], height=size[1],
                      points_per_image=points_per_image, seed=seed)
    say = say or _stderr
    dataset = _survey(folder / 'survey', spec, say)
    choice = extractor_choice or choices.default(say=say)
    job = JobSpec(
        images_dir=dataset.images_dir, annotations_csv=dataset.annotations_csv,
        points_csv=dataset.points_csv, output_dir=folder / 'output',
        extractor=choice.extractor, extractor_note=choice.note,
        clf_type=clf_type, epochs=epochs,
        # Few photos: hold out points stratified by label, so that every
        # label is in every set; the new photos give the per-image figure.
        split='points', ref_ratio=0.1, val_ratio=0.2,
        images_in_report=images_in_report, show_progress=show_progress,
        accept_threshold=accept_threshold)
    job.say = say
    outcome = run_job(job, dispatcher)
    accuracy = (accuracy_against_truth(outcome, dataset.truth_csv)
                if dataset.truth_csv else None)
    return DemoResult(dataset, outcome, accuracy)
