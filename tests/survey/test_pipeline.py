"""`spacer run` end to end through the embedded queue worker, on generated
surveys and the weights-free default extractor: outputs, report numbers,
bad input, and resuming (a re-run and a killed run)."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from spacer.data_classes import DataLocation, ValResults
from spacer.storage import load_classifier
from spacer_cli.spacer_command import main
from spacer_survey.pipeline import JobError, JobSpec, run_job
from spacer_survey.predictions import read_csv
from spacer_survey.synthetic_survey import SurveySpec, generate_survey
from tests.survey.report_parsing import parse_report

REPO = Path(__file__).resolve().parents[2]


def spec_for(survey, output, choice, **changes) -> JobSpec:
    settings = dict(images_dir=survey.images_dir,
                    annotations_csv=survey.annotations_csv,
                    points_csv=survey.points_csv, output_dir=output,
                    extractor=choice.extractor, extractor_note=choice.note,
                    split='points', val_ratio=0.2, epochs=5,
                    show_progress=False, say=lambda text: None)
    settings.update(changes)
    return JobSpec(**settings)


def read_rows(path: Path) -> list[dict]:
    with path.open(newline='', encoding='utf-8') as handle:
        return list(csv.DictReader(handle))


def feature_mtimes(output: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns
            for p in (output / 'features').rglob('*.featurevector')}


def test_run_from_the_command_line(tiny_survey, default_choice, tmp_path,
                                   capsys):
    output = tmp_path / 'out'
    with tiny_survey.annotations_csv.open('a', encoding='utf-8') as handle:
        handle.write('survey_001.jpg,2024,Site A,x,5000,3,Sand\n')
    weights = default_choice.extractor.data_locations['weights'].key
    code = main(['run', str(tiny_survey.images_dir),
                 str(tiny_survey.annotations_csv), '--points',
                 str(tiny_survey.points_csv), '-o', str(output), '--weights',
                 weights, '--split', 'points', '--val-ratio', '0.2',
                 '--epochs', '5', '--skip-invalid', '-q'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert 'Leaving out 1 invalid rows' in captured.err
    assert 'line 50: point (Row 5000, Column 3) is outside' in captured.err
    assert f"Report:      {output / 'report.html'}" in captured.out

    # One feature file per photo, in the extractor's own folder.
    names = sorted(p.name for p in (output / 'features').rglob('*.featurevector'))
    assert names == [f'survey_{i:03d}.jpg.featurevector' for i in range(1, 9)]

    # predictions.csv: every point to classify, in the points file's order,
    # top label first, scores falling.
    wanted = read_rows(tiny_survey.points_csv)
    predictions = read_csv(output / 'predictions.csv')
    assert [(p.name, p.row, p.col) for p in predictions] == [
        (r['Name'], int(r['Row']), int(r['Column'])) for r in wanted]
    for p in predictions:
        scores = [score for _, score in p.ranked]
        assert len(p.ranked) == 3 and scores == sorted(scores, reverse=True)
        assert {label for label, _ in p.ranked} <= {'Sand', 'CCA', 'Turf'}

    # The stored classifier is pyspacer's kind and knows the labels.
    classifier = load_classifier(DataLocation('filesystem',
                                              str(output / 'classifier.pkl')))
    assert sorted(classifier.classes_) == ['CCA', 'Sand', 'Turf']

    # The report's numbers are those of valresult.json, counted here by hand.
    valresults = ValResults.load(DataLocation('filesystem',
                                              str(output / 'valresult.json')))
    report = parse_report((output / 'report.html').read_text(encoding='utf-8'))
    right = sum(g == e for g, e in zip(valresults.gt, valresults.est))
    assert report.texts['overall-accuracy'] == f'{100 * right / len(valresults.gt):.1f}%'
    assert report.texts['validation-count'] == str(len(valresults.gt))
    truth_counts = Counter(valresults.classes[g] for g in valresults.gt)
    table = {row[0]: row for row in report.tables['per-label'][1:]}
    assert {label: int(row[1]) for label, row in table.items()} == truth_counts
    assert {'confusion-matrix', 'per-label-accuracy', 'threshold-curve',
            'prediction-image-1', 'prediction-image-2'} <= set(report.figures)
    assert all(figure.format == 'PNG' for figure in report.figures.values())
    assert report.texts['prediction-count'] == str(len(predictions))


def test_bad_csv_stops_before_any_work(tiny_survey, tmp_path, capsys):
    output = tmp_path / 'out'
    with tiny_survey.annotations_csv.open('a', encoding='utf-8') as handle:
        handle.write('missing.jpg,2024,Site A,x,1,1,Sand\n'
                     'survey_002.jpg,2024,Site A,x,one,1,Sand\n')
    code = main(['run', str(tiny_survey.images_dir),
                 str(tiny_survey.annotations_csv), '-o', str(output), '-q'])
    err = capsys.readouterr().err
    assert code == 2
    assert "annotations.csv, line 50: image 'missing.jpg' is not in" in err
    assert "annotations.csv, line 51: Row value 'one' is not a whole number" in err
    assert 'pass --skip-invalid' in err
    assert not output.exists()


def test_missing_images_folder_is_a_clear_error(tmp_path, capsys):
    code = main(['run', str(tmp_path / 'nope'), str(tmp_path / 'a.csv'), '-q'])
    assert code == 2
    assert 'Images folder not found' in capsys.readouterr().err


def test_rerun_reuses_features_and_classifier(tiny_survey, default_choice,
                                               tmp_path):
    output = tmp_path / 'out'
    first = run_job(spec_for(tiny_survey, output, default_choice))
    assert (first.images_extracted, first.images_reused, first.trained) == (8, 0, True)
    before = feature_mtimes(output)
    classifier_mtime = first.classifier.stat().st_mtime_ns

    second = run_job(spec_for(tiny_survey, output, default_choice))
    assert (second.images_extracted, second.images_reused, second.trained) == (0, 8, False)
    assert feature_mtimes(output) == before
    assert second.classifier.stat().st_mtime_ns == classifier_mtime
    assert second.predictions == first.predictions

    # A new point on one photo: only that photo is extracted again.
    with tiny_survey.points_csv.open('a', encoding='utf-8') as handle:
        handle.write('survey_008.jpg,100,100\n')
    third = run_job(spec_for(tiny_survey, output, default_choice))
    assert (third.images_extracted, third.images_reused) == (1, 7)
    changed = {name for name, mtime in feature_mtimes(output).items()
               if before[name] != mtime}
    assert changed == {'survey_008.jpg.featurevector'}
    newest = third.predictions[-1]
    assert (newest.name, newest.row, newest.col) == ('survey_008.jpg', 100, 100)

    # Different training settings retrain on the same features.
    fourth = run_job(spec_for(tiny_survey, output, default_choice, epochs=3))
    assert (fourth.images_extracted, fourth.trained) == (0, True)


def test_an_image_that_fails_extraction(tiny_survey, default_choice, tmp_path):
    photo = tiny_survey.images_dir / 'survey_008.jpg'
    data = photo.read_bytes()
    photo.write_bytes(data[:len(data) // 2])         # header intact, body cut
    output = tmp_path / 'out'
    with pytest.raises(JobError) as failure:
        run_job(spec_for(tiny_survey, output, default_choice))
    assert 'Feature extraction failed for 1 images' in str(failure.value)
    assert 'survey_008.jpg' in str(failure.value)
    assert len(feature_mtimes(output)) == 7          # the rest is kept

    outcome = run_job(spec_for(tiny_survey, output, default_choice,
                               skip_invalid=True))
    assert (outcome.images_extracted, outcome.images_reused) == (0, 7)
    assert {p.name for p in outcome.predictions} == {'survey_007.jpg'}


def test_killed_run_resumes_where_it_stopped(default_choice, tmp_path):
    survey = generate_survey(tmp_path / 'survey', SurveySpec(
        annotated_images=12, unannotated_images=2, width=256, height=192,
        points_per_image=6, labels=('Sand', 'CCA', 'Turf'), seed=5))
    output = tmp_path / 'out'
    weights = default_choice.extractor.data_locations['weights'].key
    command = [sys.executable, '-m', 'spacer_cli', 'run',
               str(survey.images_dir), str(survey.annotations_csv), '--points',
               str(survey.points_csv), '-o', str(output), '--weights', weights,
               '--split', 'points', '--epochs', '3', '-q']
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not feature_mtimes(output) and time.monotonic() < deadline:
            assert process.poll() is None, 'the run ended before it was killed'
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(30)
    finished = feature_mtimes(output)
    assert 1 <= len(finished) < 14, 'the kill should land mid-extraction'
    assert not (output / 'report.html').exists()

    outcome = run_job(spec_for(survey, output, default_choice, epochs=3))
    assert outcome.images_reused == len(finished)
    assert outcome.images_extracted == 14 - len(finished)
    after = feature_mtimes(output)
    assert {name: after[name] for name in finished} == finished
    assert len(after) == 14 and outcome.report.is_file()


def test_demo_on_a_tiny_survey(default_choice, tmp_path, capsys, monkeypatch):
    from spacer import config
    weights_dir = Path(default_choice.extractor.data_locations['weights'].key).parent
    monkeypatch.setattr(config, 'EXTRACTORS_CACHE_DIR', str(weights_dir))
    monkeypatch.chdir(tmp_path)
    folder = Path('demo')  # relative, as `make demo` runs it
    code = main(['demo', '-d', str(folder), '--images', '6', '--new-images',
                 '2', '--points-per-image', '10', '--size', '256x192',
                 '--epochs', '10', '-q'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert 'randomly initialized EfficientNet-B0' in captured.err
    assert str(weights_dir) in captured.err     # the existing weights were used
    report = folder / 'output' / 'report.html'
    assert f'Open the report: {report.resolve()}' in captured.out
    assert report.is_file() and (folder / 'output' / 'predictions.csv').is_file()
    assert (folder / 'survey' / 'truth.csv').is_file()
    line = next(l for l in captured.out.splitlines()
                if l.startswith('Accuracy on the 20 points'))
    accuracy = float(line.rsplit(' ', 1)[1].rstrip('%')) / 100
    assert accuracy >= 0.5          # 5 labels: chance is about 0.2
    assert 'NOT trained on reef photos' in report.read_text(encoding='utf-8')
