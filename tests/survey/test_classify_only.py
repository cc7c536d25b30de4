"""`spacer classify`: points classified by a classifier trained earlier
(pyspacer 0.14's MLP.pkl, the legacy CoralNet one), with no annotations and
no training, give what `classify_features` gives on the same features; a
classifier whose feature length differs from the extractor's is refused."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from spacer.data_classes import DataLocation
from spacer.messages import ClassifyFeaturesMsg
from spacer.tasks import classify_features
from spacer_cli.spacer_command import main
from spacer_survey.pipeline import JobSpec, run_job

FIXTURES = Path(__file__).resolve().parents[1] / 'fixtures' / 'pyspacer'
MLP = FIXTURES / '0.14.0' / 'classifiers' / 'MLP.pkl'
LEGACY = FIXTURES / 'legacy' / 'cnbeta.model'


def dummy_extractor_json(folder: Path, dim: int) -> Path:
    """A serialized extractor giving `dim`-d features (pyspacer's
    DummyExtractor), like the 64-d ones MLP.pkl was trained on."""
    path = folder / f'dummy{dim}.json'
    path.write_text(json.dumps({
        'class_path': 'spacer.extractors.base.DummyExtractor',
        'data_locations': {}, 'feature_dim': dim}))
    return path


def test_classify_with_pyspacers_mlp_matches_classify_features(
        tiny_survey, tmp_path):
    from spacer_survey.extractor_choice import from_json
    choice = from_json(dummy_extractor_json(tmp_path, 64))
    output = tmp_path / 'out'
    outcome = run_job(JobSpec(
        images_dir=tiny_survey.images_dir, annotations_csv=None,
        points_csv=tiny_survey.points_csv, output_dir=output,
        extractor=choice.extractor, classifier_file=MLP,
        show_progress=False, say=lambda text: None))
    assert not outcome.trained and not (output / 'classifier.pkl').exists()
    assert outcome.points_classified == len(outcome.predictions) > 0
    features = {p.name for p in (output / 'features').rglob('*.featurevector')}
    assert features == {f'{p.name}.featurevector' for p in outcome.predictions}

    by_point = {(p.name, p.row, p.col): p for p in outcome.predictions}
    compared = 0
    for name in sorted({p.name for p in outcome.predictions}):
        feature_file = next((output / 'features').rglob(f'{name}.featurevector'))
        returned = classify_features(ClassifyFeaturesMsg(
            job_token=name,
            feature_loc=DataLocation('filesystem', str(feature_file)),
            classifier_loc=DataLocation('filesystem', str(MLP))))
        assert returned.valid_rowcol
        for row, col, scores in returned.scores:
            ours = by_point[(name, row, col)]
            best = max(range(len(scores)), key=lambda i: scores[i])
            assert ours.label == str(returned.classes[best])
            assert ours.score == pytest.approx(scores[best], abs=1e-6)
            assert dict(ours.ranked) == pytest.approx(
                {str(c): s for c, s in zip(returned.classes, scores)}, abs=1e-6)
            compared += 1
    assert compared == len(outcome.predictions)
    # predictions.csv says the same, to CoralNet's whole percent.
    with outcome.predictions_csv.open(newline='', encoding='utf-8') as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        p = by_point[(row['Name'], int(row['Row']), int(row['Column']))]
        assert row['Machine suggestion 1'] == p.label
        assert int(row['Machine confidence 1']) == round(100 * p.score)
    assert 'no annotations to validate it' in outcome.report.read_text()


def test_feature_length_mismatch_is_refused_in_one_line(
        tiny_survey, default_choice, tmp_path, capsys):
    weights = default_choice.extractor.data_locations['weights'].key
    output = tmp_path / 'out'
    code = main(['classify', str(tiny_survey.images_dir), '--classifier',
                 str(MLP), '--points', str(tiny_survey.points_csv),
                 '--weights', weights, '-o', str(output), '-q'])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count('\n') == 0
    assert ('MLP.pkl expects 64-d features but the extractor '
            'EfficientNetExtractor gives 1280-d') in err
    assert not (output / 'features').exists()


def test_legacy_coralnet_classifier_from_the_command_line(
        tiny_survey, tmp_path, capsys):
    output = tmp_path / 'out'
    extractor = dummy_extractor_json(tmp_path, 4096)
    code = main(['classify', str(tiny_survey.images_dir), '--classifier',
                 str(LEGACY), '--points', str(tiny_survey.points_csv),
                 '--extractor', str(extractor), '-o', str(output), '-q',
                 '--accept-threshold', '0.5'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with (output / 'predictions.csv').open(newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    classes = {str(c) for c in json.loads(
        (FIXTURES / 'legacy' / 'cnbeta.expected.json').read_text())['classes']}
    assert rows and {r['Machine suggestion 1'] for r in rows} <= classes
    assert (output / 'cover.csv').is_file()
    assert (output / 'coralnet_upload.csv').is_file()
    assert 'no validation results' in captured.err
