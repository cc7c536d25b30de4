"""The report's figures are real images and its numbers agree with the
validation results; predictions.csv round-trips."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spacer.data_classes import ValResults
from spacer_survey import validation_metrics
from spacer_survey.predictions import (Prediction, header, rank, read_csv,
                                       write_csv)
from spacer_survey.report import ReportContent, render, write_report
from tests.survey.report_parsing import parse_report

CLASSES = ['Sand', 'CCA', 'Turf']
#        gt  est  score
POINTS = [(0, 0, 0.95), (0, 0, 0.85), (0, 1, 0.40), (1, 1, 0.90),
          (1, 1, 0.65), (1, 2, 0.55), (2, 2, 0.99), (2, 0, 0.30),
          (0, 0, 0.70), (2, 2, 0.81)]


@pytest.fixture
def valresults():
    gt, est, scores = zip(*POINTS)
    return ValResults(scores=list(scores), gt=list(gt), est=list(est),
                      classes=CLASSES)


def test_metrics_by_hand(valresults):
    assert validation_metrics.overall_accuracy(valresults) == pytest.approx(7 / 10)
    assert validation_metrics.confusion_matrix(valresults).tolist() == [
        [3, 1, 0], [0, 2, 1], [1, 0, 2]]
    sand, cca, turf = validation_metrics.per_label(valresults)
    assert (sand.count, sand.correct, sand.predicted) == (4, 3, 4)
    assert (cca.count, cca.correct, cca.predicted) == (3, 2, 3)
    assert turf.accuracy == pytest.approx(2 / 3)
    curve = {round(p.threshold, 2): p for p in validation_metrics.threshold_curve(valresults)}
    assert curve[0.0].fraction_above == 1.0
    # Scores >= 0.8: 0.95, 0.85, 0.90, 0.99, 0.81 -> all correct.
    assert curve[0.8].fraction_above == pytest.approx(0.5)
    assert curve[0.8].accuracy_above == 1.0
    # >= 0.6: adds 0.65 (right), 0.70 (right) -> 7 points, all right.
    assert curve[0.6].fraction_above == pytest.approx(0.7)
    assert curve[1.0].accuracy_above is None


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / 'photo.png'
    Image.fromarray(np.full((300, 400, 3), 120, np.uint8)).save(path)
    return path


def test_report_figures_and_numbers(tmp_path, valresults, photo):
    predictions = [Prediction('photo.png', 10, 20, rank([0.7, 0.2, 0.1], CLASSES)),
                   Prediction('photo.png', 250, 390, rank([0.1, 0.3, 0.6], CLASSES))]
    path = write_report(tmp_path / 'report.html', ReportContent(
        valresults, summary=[('Images', '3')], notices=['random weights'],
        predictions=predictions, image_paths={'photo.png': photo}))
    report = parse_report(path.read_text(encoding='utf-8'))

    assert set(report.figures) == {'confusion-matrix', 'per-label-accuracy',
                                   'threshold-curve', 'prediction-image-1'}
    assert all(img.format == 'PNG' and img.width > 200
               for img in report.figures.values())
    # The drawn photo is enlarged to the column width (a legend beside it)
    # and shows markers.
    drawn = report.figures['prediction-image-1'].convert('RGB')
    assert drawn.height == 675 and drawn.width > 900
    assert len(np.unique(np.asarray(drawn).reshape(-1, 3), axis=0)) > 2

    assert report.texts['overall-accuracy'] == '70.0%'
    assert report.texts['validation-count'] == '10'
    assert report.tables['per-label'][1:] == [
        ['Sand', '4', '3', '75.0%', '4'], ['CCA', '3', '2', '66.7%', '3'],
        ['Turf', '3', '2', '66.7%', '3']]
    thresholds = {row[0]: row[1:] for row in report.tables['threshold-table'][1:]}
    assert thresholds['0.80'] == ['50.0%', '100.0%']
    assert thresholds['0.00'] == ['100.0%', '70.0%']
    assert report.tables['predicted-labels'][1:] == [['Sand', '1'], ['Turf', '1']]
    assert report.texts['prediction-count'] == '2'
    assert 'random weights' in path.read_text()


def test_report_without_predictions(valresults):
    report = parse_report(render(ReportContent(valresults)))
    assert 'prediction-image-1' not in report.figures
    assert 'confusion-matrix' in report.figures


def test_report_escapes_labels(valresults):
    valresults.classes = ['<b>x</b>', 'A&B', 'C']
    text = render(ReportContent(valresults))
    assert '<b>x</b>' not in text and '&lt;b&gt;x&lt;/b&gt;' in text


def test_predictions_rank_and_csv_round_trip(tmp_path):
    ranked = rank([0.1, 0.6, 0.05, 0.25], ['a', 'b', 'c', 'd'])
    assert ranked == (('b', 0.6), ('d', 0.25), ('a', 0.1), ('c', 0.05))
    two_classes = rank([0.2, 0.8], ['a', 'b'])
    assert two_classes == (('b', 0.8), ('a', 0.2))
    rows = [Prediction('x.jpg', 1, 2, ranked), Prediction('y.jpg', 3, 4, two_classes)]
    path = tmp_path / 'predictions.csv'
    write_csv(path, rows)
    lines = path.read_text().splitlines()
    # CoralNet's export names, 5 suggestions, confidences in whole percent.
    assert lines[0].split(',') == header() == ['Name', 'Row', 'Column'] + [
        f'Machine {what} {n}' for n in range(1, 6)
        for what in ('suggestion', 'confidence')]
    assert lines[1] == 'x.jpg,1,2,b,60,d,25,a,10,c,5,,'
    assert lines[2] == 'y.jpg,3,4,b,80,a,20,,,,,,'
    assert read_csv(path) == rows
