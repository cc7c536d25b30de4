"""report.html: one self-contained page (pictures embedded as PNG data URIs)
that tells a user how far to trust the classifier and its predictions.

Every number on the page is computed from the stored validation results
(`validation_metrics.py`), so the report and valresult.json always agree.
"""
from __future__ import annotations

import base64
import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from spacer_survey import figures, validation_metrics
from spacer_survey.cover import SURVEY_ROW
from spacer_survey.drawing import draw_predictions, label_colours
from spacer_survey.predictions import Prediction

# Images in the cover chart (cover.csv has them all).
COVER_CHART_IMAGES = 40

# Thresholds listed in the report's table (the curve shows all of them).
TABLE_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px;
       color: #222; line-height: 1.4; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
#summary td { text-align: left; }
.notice { background: #fff6d5; border: 1px solid #e6c84f; padding: 0.6em 1em; }
"""


@dataclass
class ReportContent:
    """What the report shows."""
    valresults: object                  # spacer.data_classes.ValResults
    summary: list[tuple[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    image_paths: dict[str, Path] = field(default_factory=dict)  # name -> file
    images_to_draw: int = 4
    title: str = 'spacer: classifier report'
    coverage: object | None = None      # label_coverage.Coverage (training)
    cover: object | None = None         # cover.CoverTally
    acceptance: object | None = None    # acceptance.Acceptance
    points_classified: int | None = None  # default: len(predictions)


def _data_uri(png: bytes) -> str:
    return 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')


def _figure(element_id: str, png: bytes, alt: str, caption: str) -> str:
    return (f'<figure id="{element_id}"><img alt="{html.escape(alt)}" '
            f'src="{_data_uri(png)}"><figcaption>{html.escape(caption)}'
            '</figcaption></figure>')


def _percent(value: float | None) -> str:
    return '–' if value is None else f'{100 * value:.1f}%'


def _table(element_id: str, head: list[str], rows: list[list]) -> str:
    cells = ''.join(f'<th>{html.escape(h)}</th>' for h in head)
    body = ''.join('<tr>' + ''.join(f'<td>{html.escape(str(c))}</td>'
                                    for c in row) + '</tr>' for row in rows)
    return (f'<table id="{element_id}"><thead><tr>{cells}</tr></thead>'
            f'<tbody>{body}</tbody></table>')


def _validation_section(valresults) -> str:
    labels = [str(c) for c in valresults.classes]
    stats = validation_metrics.per_label(valresults)
    curve = validation_metrics.threshold_curve(valresults)
    accuracy = validation_metrics.overall_accuracy(valresults)
    parts = [
        '<section id="validation"><h2>How good is the classifier?</h2>',
        f'<p>Accuracy on <span id="validation-count">{len(valresults.gt)}'
        '</span> held-out validation points: <strong id="overall-accuracy">'
        f'{_percent(accuracy)}</strong>.</p>',
        _figure('confusion-matrix',
                figures.confusion_matrix_png(
                    validation_metrics.confusion_matrix(valresults), labels),
                'confusion matrix',
                'Rows: true label; columns: predicted label; each cell holds '
                'the number of validation points, its colour their share of '
                'the row.'),
        '<h3>Per label</h3>',
        _table('per-label',
               ['Label', 'Validation points', 'Correct', 'Accuracy',
                'Predicted as this label'],
               [[s.label, s.count, s.correct, _percent(s.accuracy),
                 s.predicted] for s in stats]),
        _figure('per-label-accuracy', figures.per_label_png(stats),
                'accuracy per label', 'Accuracy per label; n is the number '
                'of validation points with that true label.'),
        '<h3>Choosing a confidence threshold</h3>',
        '<p>Points whose top score reaches the threshold could be accepted '
        'as they are; the rest left for a person to check. The higher the '
        'threshold, the more accurate the accepted points and the fewer of '
        'them.</p>',
        _figure('threshold-curve', figures.threshold_curve_png(curve),
                'confidence threshold curve',
                'Fraction of validation points at or above each threshold, '
                'and the accuracy on just those points.'),
    ]
    by_threshold = {round(p.threshold, 2): p for p in curve}
    parts.append(_table(
        'threshold-table',
        ['Threshold', 'Points at or above', 'Accuracy on them'],
        [[f'{t:.2f}', _percent(by_threshold[t].fraction_above),
          _percent(by_threshold[t].accuracy_above)]
         for t in TABLE_THRESHOLDS if t in by_threshold]))
    parts.append('</section>')
    return '\n'.join(parts)


def _labels_section(coverage) -> str:
    """Every annotated label: trained (with its points per set) or left out
    with the reason and the fix. The counts add up to the annotations."""
    if coverage is None:
        return ''
    totals = coverage.totals()
    parts = ['<section id="labels"><h2>Which labels were learned</h2>',
             f'<p><span id="annotation-count">{totals["annotations"]}</span> '
             f'annotations = {totals["train"]} training + {totals["ref"]} '
             f'reference + {totals["val"]} validation + '
             f'<span id="left-out-count">{totals["left_out"]}</span> left out.'
             '</p>']
    if coverage.left_out:
        parts.append('<p class="notice">The classifier cannot predict these '
                     'labels: their points on new photos get another label.'
                     '</p>')
        parts.append(_table('left-out-labels',
                            ['Label', 'Annotations', 'Images', 'Why', 'Fix'],
                            [[u.label, u.annotations, u.images, u.reason, u.fix]
                             for u in coverage.left_out]))
    parts.append(_table(
        'label-sets', ['Label', 'Annotations', 'Images', 'Training',
                       'Reference', 'Validation', 'Learned'],
        [[u.label, u.annotations, u.images, u.train, u.ref, u.val,
          'yes' if u.trained else 'no'] for u in coverage.labels]))
    parts.append('</section>')
    return '\n'.join(parts)


def _acceptance_section(acceptance) -> str:
    if acceptance is None:
        return ''
    rows = [['Threshold', f'{acceptance.threshold:.2f}'],
            ['Points accepted', f'{acceptance.accepted} of {acceptance.points} '
                                f'({_percent(acceptance.share_accepted)})'],
            ['Points that need review', str(acceptance.points
                                            - acceptance.accepted)],
            ['Validation points at or above it',
             f'{acceptance.validation_accepted} of '
             f'{acceptance.validation_points} '
             f'({_percent(acceptance.validation_share)})'],
            ['Expected accuracy on accepted points',
             _percent(acceptance.expected_accuracy)]]
    return ('<section id="acceptance"><h2>Accept threshold</h2><p>Points whose '
            'top confidence (a whole percentage, as CoralNet rounds it) reaches '
            'the threshold are accepted with their machine label '
            '(<code>coralnet_upload.csv</code> gives them that label); the rest '
            'are left for a person. The accuracy to expect is that on the '
            'validation points the same rule accepts.</p>'
            + _table('acceptance-table', ['Setting', 'Value'], rows)
            + '<p class="note" id="acceptance-rounding">Confidences are '
            'rounded to whole percent here, as CoralNet does, before they are '
            'compared with the threshold; figures elsewhere at the same '
            'threshold (such as the threshold curve) use the unrounded '
            'confidences, so they can differ slightly.</p></section>')


def _cover_section(content: ReportContent, colours) -> str:
    tally = content.cover
    if tally is None or not tally.counts:
        return ''
    survey = tally.survey_cover()
    names = list(tally.counts)
    shown = [(SURVEY_ROW, survey)] + [(n, tally.image_cover(n))
                                      for n in names[:COVER_CHART_IMAGES]]
    more = (f' The first {COVER_CHART_IMAGES} of {len(names)} images are '
            'drawn; cover.csv holds them all.'
            if len(names) > COVER_CHART_IMAGES else '')
    return '\n'.join([
        '<section id="cover"><h2>Percent cover</h2>',
        '<p>Share of each image\'s classified points predicted as each label; '
        'the survey\'s cover is the mean over images (each weighs the same). '
        f'All in <code>cover.csv</code>.{html.escape(more)}</p>',
        _table('survey-cover', ['Label', 'Survey cover'],
               [[label, f'{value:.1f}%'] for label, value in
                sorted(survey.items(), key=lambda kv: -kv[1])]),
        _figure('cover-chart', figures.cover_png(shown, colours),
                'percent cover per image', 'Percent cover per image, by '
                'predicted label; the top bar is the survey mean.'),
        '</section>'])


def _predictions_section(content: ReportContent, colours) -> str:
    predictions = content.predictions
    total = (content.points_classified if content.points_classified
             is not None else len(predictions))
    if not total:
        return ('<section id="predictions"><h2>Predictions</h2><p>No points '
                'were classified: none were given (use --points), or every photo '
                'to classify was left out.</p></section>')
    parts = [
        '<section id="predictions"><h2>Predictions</h2>',
        f'<p><span id="prediction-count">{total}</span> points '
        'were classified; all are in <code>predictions.csv</code> (CoralNet\'s '
        'columns: Machine suggestion / Machine confidence 1 to 5).</p>',
    ]
    if content.cover is not None:
        counts = Counter()
        for per_image in content.cover.counts.values():
            counts.update(per_image)
    else:
        counts = Counter(p.label for p in predictions)
    parts.append(_table('predicted-labels', ['Label', 'Points predicted'],
                        [[label, count] for label, count in
                         counts.most_common()]))
    threshold = getattr(content.acceptance, 'threshold', None)
    images = list(dict.fromkeys(p.name for p in predictions))
    for number, name in enumerate(images[:content.images_to_draw], start=1):
        path = content.image_paths.get(name)
        if path is None:
            continue
        mine = [p for p in predictions if p.name == name]
        try:
            png = draw_predictions(path, mine, colours, threshold)
        except Exception as err:
            # The picture is an illustration: a photo that changed or broke
            # since it was classified must not cost the report itself.
            parts.append(
                f'<p class="notice" id="prediction-image-{number}-missing">'
                f'{html.escape(name)} could not be drawn: '
                f'{html.escape(type(err).__name__)}: {html.escape(str(err))}'
                '</p>')
            continue
        parts.append(_figure(
            f'prediction-image-{number}', png, f'predicted points on {name}',
            f'{name}: {len(mine)} points, each a dot in its predicted '
            'label\'s colour (legend at the right)'
            + ('; hollow rings: top confidence below the accept threshold, '
               'need review.' if threshold is not None else '.')))
    parts.append('</section>')
    return '\n'.join(parts)


def _all_labels(content: ReportContent) -> list[str]:
    labels = ([str(c) for c in content.valresults.classes]
              if content.valresults is not None else [])
    if content.cover is not None:
        labels += [l for l in content.cover.labels if l not in labels]
    labels += sorted({p.label for p in content.predictions} - set(labels))
    return labels


def render(content: ReportContent) -> str:
    """The report as one HTML string."""
    colours = label_colours(_all_labels(content))
    notices = ''.join(f'<p class="notice">{html.escape(n)}</p>'
                      for n in content.notices)
    summary = _table('summary', ['Run', ''], [[k, v] for k, v in content.summary])
    validation = (_validation_section(content.valresults)
                  if content.valresults is not None else
                  '<section id="validation"><h2>How good is the classifier?'
                  '</h2><p>This run used a classifier trained earlier and had '
                  'no annotations to validate it on.</p></section>')
    return '\n'.join([
        '<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
        f'<title>{html.escape(content.title)}</title>',
        f'<style>{STYLE}</style></head><body>',
        f'<h1>{html.escape(content.title)}</h1>', notices, summary,
        _labels_section(content.coverage), validation,
        _acceptance_section(content.acceptance),
        _cover_section(content, colours),
        _predictions_section(content, colours),
        '</body></html>'])


def write_report(path: Path | str, content: ReportContent) -> Path:
    """Write report.html atomically and return its path."""
    path = Path(path)
    partial = path.with_name(path.name + '.part')
    partial.write_text(render(content), encoding='utf-8')
    partial.replace(path)
    return path
