"""Every label learned or explained (the stratified image split), and the
CoralNet-compatible outputs: predictions' column names, percent cover, the
accept threshold and the annotation upload file."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from spacer.data_classes import DataLocation, ImageLabels, ValResults
from spacer.task_utils import preprocess_labels
from spacer_cli.spacer_command import main
from spacer_survey.image_split import split_images_stratified
from spacer_survey.label_coverage import coverage
from spacer_survey.pipeline import JobSpec, run_job
from spacer_survey.predictions import header
from tests.survey.report_parsing import parse_report


def read_rows(path: Path) -> list[dict]:
    with path.open(newline='', encoding='utf-8') as handle:
        return list(csv.DictReader(handle))


def _labels(spec: dict[str, list[str]]) -> ImageLabels:
    """{image: [label per point]} as ImageLabels."""
    return ImageLabels({
        DataLocation('memory', name): [(i, i, label)
                                       for i, label in enumerate(labels)]
        for name, labels in spec.items()})


def test_rare_labels_reach_train_and_ref_or_are_explained():
    # 20 images of common labels; 'Two' on 2 images, 'Three' on 3, 'One' on 1.
    images = {f'img{i:02d}': ['A', 'B', 'C', 'A', 'B'] for i in range(20)}
    images['img03'] += ['Two']
    images['img11'] += ['Two', 'Two']
    for name in ('img05', 'img09', 'img17'):
        images[name] += ['Three']
    images['img07'] += ['One'] * 4
    labels = _labels(images)
    split = preprocess_labels(split_images_stratified(labels, (0.1, 0.1)))
    cover = coverage(labels, split, 'images')
    uses = {u.label: u for u in cover.labels}
    assert uses['Two'].trained and uses['Two'].train and uses['Two'].ref
    assert uses['Three'].trained and uses['Three'].val   # 3 images: val too
    assert [u.label for u in cover.left_out] == ['One']
    assert 'one image' in uses['One'].reason
    assert '--split points' in uses['One'].fix
    totals = cover.totals()
    assert totals['annotations'] == labels.label_count == (
        totals['train'] + totals['ref'] + totals['val'] + totals['left_out'])
    assert totals['left_out'] == 4


def test_points_split_explains_labels_with_fewer_than_3(tmp_path):
    images = {f'img{i}': ['A', 'B'] * 5 for i in range(6)}
    images['img0'] += ['Rare', 'Rare']
    labels = _labels(images)
    from spacer.task_utils import SplitMode
    split = preprocess_labels(labels, split_ratios=(0.1, 0.1),
                              split_mode=SplitMode.POINTS_STRATIFIED)
    cover = coverage(labels, split, 'points')
    (left,) = cover.left_out
    assert left.label == 'Rare' and 'only 2 annotation' in left.reason


def _make_rare(survey) -> dict[str, int]:
    """Relabel one image's first label 'Rare' and two images' points of
    another 'Few': a label on one image and one on two."""
    rows = read_rows(survey.annotations_csv)
    first = rows[0]['Name']
    target = next(r['Label'] for r in rows if r['Name'] == first)
    few_images = sorted({r['Name'] for r in rows})[2:4]
    counts = {'Rare': 0, 'Few': 0}
    for row in rows:
        if row['Name'] == first and row['Label'] == target:
            row['Label'] = 'Rare'
            counts['Rare'] += 1
        elif row['Name'] in few_images and row['Row'] and int(row['Row']) % 3 == 0:
            row['Label'] = 'Few'
            counts['Few'] += 1
    with survey.annotations_csv.open('w', newline='', encoding='utf-8') as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return counts


def test_run_lists_a_label_it_cannot_learn(default_choice, tmp_path):
    from spacer_survey.synthetic_survey import SurveySpec, generate_survey
    survey = generate_survey(tmp_path / 'survey', SurveySpec(
        annotated_images=12, unannotated_images=2, width=192, height=160,
        points_per_image=10, labels=('Sand', 'CCA', 'Turf'), seed=7))
    counts = _make_rare(survey)
    assert counts['Rare'] and counts['Few'] >= 2
    said = []
    outcome = run_job(JobSpec(
        images_dir=survey.images_dir, annotations_csv=survey.annotations_csv,
        points_csv=survey.points_csv, output_dir=tmp_path / 'out',
        extractor=default_choice.extractor, split='images', epochs=3,
        accept_threshold=0.6, show_progress=False, say=said.append))
    screen = '\n'.join(said)
    assert f"Rare: {counts['Rare']} annotations on 1 image(s) left out" in screen
    assert '--split points' in screen or 'more images' in screen

    uses = {u.label: u for u in outcome.coverage.labels}
    assert set(uses) == {'Sand', 'CCA', 'Turf', 'Rare', 'Few'}
    assert uses['Few'].trained and uses['Few'].ref and uses['Few'].train
    assert [u.label for u in outcome.coverage.left_out] == ['Rare']

    report = parse_report(outcome.report.read_text(encoding='utf-8'))
    (left,) = report.tables['left-out-labels'][1:]
    assert left[:3] == ['Rare', str(counts['Rare']), '1']
    totals = outcome.coverage.totals()
    assert report.texts['annotation-count'] == str(
        totals['train'] + totals['ref'] + totals['val'] + totals['left_out'])
    assert report.texts['annotation-count'] == str(
        len(read_rows(survey.annotations_csv)))
    # The classifier knows every learned label, including the rare 'Few'.
    valresults = ValResults.load(DataLocation('filesystem',
                                              str(outcome.valresult)))
    assert set(valresults.classes) == {'Sand', 'CCA', 'Turf', 'Few'}


@pytest.fixture
def classified(tiny_survey, default_choice, tmp_path):
    outcome = run_job(JobSpec(
        images_dir=tiny_survey.images_dir,
        annotations_csv=tiny_survey.annotations_csv,
        points_csv=tiny_survey.points_csv, output_dir=tmp_path / 'out',
        extractor=default_choice.extractor, split='points', val_ratio=0.3,
        epochs=5, accept_threshold=0.55, show_progress=False,
        say=lambda text: None))
    return tiny_survey, outcome


def test_coralnet_columns_cover_and_upload(classified):
    survey, outcome = classified
    with outcome.predictions_csv.open(newline='', encoding='utf-8') as handle:
        columns = next(csv.reader(handle))
    assert columns == header(with_status=True)
    assert columns[:5] == ['Name', 'Row', 'Column', 'Machine suggestion 1',
                           'Machine confidence 1']
    assert columns[-3:] == ['Machine suggestion 5', 'Machine confidence 5',
                            'Status']
    rows = read_rows(outcome.predictions_csv)
    wanted = read_rows(survey.points_csv)
    assert [(r['Name'], r['Row'], r['Column']) for r in rows] == [
        (r['Name'], r['Row'], r['Column']) for r in wanted]
    for row, p in zip(rows, outcome.predictions):
        assert row['Machine suggestion 1'] == p.label
        assert int(row['Machine confidence 1']) == round(100 * p.score)

    cover = read_rows(outcome.cover_csv)
    labels = [c for c in cover[0] if c not in ('Name', 'Points')]
    assert sorted(labels) == ['CCA', 'Sand', 'Turf']
    per_image = cover[:-1]
    assert {r['Name'] for r in per_image} == {p.name for p in outcome.predictions}
    for row in per_image:
        assert sum(float(row[l]) for l in labels) == pytest.approx(100, abs=0.02)
        mine = [p for p in outcome.predictions if p.name == row['Name']]
        assert int(row['Points']) == len(mine)
        for label in labels:
            share = 100 * sum(p.label == label for p in mine) / len(mine)
            assert float(row[label]) == pytest.approx(share, abs=0.005)
    survey_row = cover[-1]
    assert survey_row['Name'] == 'All images (mean)'
    for label in labels:
        mean = np.mean([float(r[label]) for r in per_image])
        assert float(survey_row[label]) == pytest.approx(mean, abs=0.01)

    # Upload file: every point, the machine label only where accepted.
    upload = read_rows(outcome.upload_csv)
    assert list(upload[0]) == ['Name', 'Row', 'Column', 'Label']
    assert len(upload) == len(rows)
    for up, row in zip(upload, rows):
        accepted = row['Status'] == 'accepted'
        assert accepted == (int(row['Machine confidence 1']) >= 55)
        assert up['Label'] == (row['Machine suggestion 1'] if accepted else '')

    report = parse_report(outcome.report.read_text(encoding='utf-8'))
    assert 'cover-chart' in report.figures
    assert {r[0] for r in report.tables['survey-cover'][1:]} == set(labels)


def test_accept_threshold_figures_match_validation_points(classified):
    _survey, outcome = classified
    valresults = ValResults.load(DataLocation('filesystem',
                                              str(outcome.valresult)))
    above = [(g, e) for g, e, s in zip(valresults.gt, valresults.est,
                                       valresults.scores)
             if round(100 * s) >= 55]
    acceptance = outcome.acceptance
    assert acceptance.validation_points == len(valresults.gt)
    assert acceptance.validation_accepted == len(above)
    assert acceptance.validation_correct == sum(g == e for g, e in above)
    accepted = sum(round(100 * p.score) >= 55 for p in outcome.predictions)
    assert (acceptance.points, acceptance.accepted) == (
        len(outcome.predictions), accepted)
    report = parse_report(outcome.report.read_text(encoding='utf-8'))
    table = dict(report.tables['acceptance-table'][1:])
    assert table['Points accepted'].startswith(
        f'{accepted} of {len(outcome.predictions)}')
    if above:
        expected = 100 * sum(g == e for g, e in above) / len(above)
        assert table['Expected accuracy on accepted points'] == f'{expected:.1f}%'


def test_accept_threshold_out_of_range_is_refused(tiny_survey, capsys):
    with pytest.raises(SystemExit):
        main(['run', str(tiny_survey.images_dir),
              str(tiny_survey.annotations_csv), '--accept-threshold', '80'])
    assert 'must be between 0 and 1' in capsys.readouterr().err
