"""The seed README's four code examples (pyspacer 0.6.0), run as written.

The examples are cut out of the stored README text; the only change made to
them is pointing their ``/path/to/...`` strings at files these tests create.
Each example then runs with ``exec`` and what it prints is checked.
"""
from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

from spacer.data_classes import DataLocation, ImageFeatures, ValResults
from spacer.storage import load_classifier
from tests.legacy import scenario

README = Path(__file__).parent.parent / 'fixtures' / 'seed' / 'pyspacer-0.6.0-README.txt'
PATH_TOKEN = re.compile(r'/path/to/[\w.\-]+')
FLOAT = r'[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?'

# The points the README's examples name.
EXTRACT_ROWCOLS = [(2200, 1000), (1400, 1500), (3000, 450)]
TRAIN_FILES = {  # file -> its annotations, as the train example lists them
    'image1': [(1000, 2000, 1), (3000, 2000, 2)],
    'image2': [(1000, 2000, 3), (3000, 2000, 1)],
    'image3': [(1234, 2857, 11), (3094, 2262, 25)],
    'image4': [(500, 2500, 1), (2500, 1500, 3)],
    'image5': [(4321, 5582, 25), (4903, 2622, 19)],
}


def _paragraphs(lines: list[str], start: int):
    """(first line, last line) of each blank-line separated paragraph from start."""
    i = start
    while i < len(lines):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i == len(lines):
            return
        j = i
        while j + 1 < len(lines) and lines[j + 1].strip():
            j += 1
        yield i, j
        i = j + 1


def _is_heading(source: str) -> bool:
    """A lone word such as 'train_classifier' parses as Python but is prose."""
    body = ast.parse(source).body
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Name) for s in body)


def code_examples(text: str) -> list[str]:
    """Each code block: from a line starting 'from spacer' through the
    following paragraphs for as long as they keep it valid Python."""
    lines = text.splitlines()
    examples = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith('from spacer'):
            i += 1
            continue
        block, end = None, i
        for first, last in _paragraphs(lines, i):
            candidate = '\n'.join(lines[i:last + 1])
            paragraph = '\n'.join(lines[first:last + 1])
            try:
                ast.parse(candidate)
            except SyntaxError:
                break
            if block is not None and _is_heading(paragraph):
                break
            block, end = candidate, last
        assert block is not None, f"README line {i + 1} starts code that does not parse"
        examples.append(block)
        i = end + 1
    return examples


def examples_by_task() -> dict[str, str]:
    examples = code_examples(README.read_text(encoding='utf-8'))
    by_task = {}
    for code in examples:
        task = re.search(r'^from spacer\.tasks import (\w+)$', code, re.M).group(1)
        by_task[task] = code
    assert list(by_task) == list(scenario.TASKS), list(by_task)
    return by_task


EXAMPLES = examples_by_task()


def run_example(task: str, paths: dict[str, Path]) -> list[str]:
    """Run the README's example of ``task`` with its /path/to strings
    replaced by ``paths`` (name after /path/to/ -> file); its printed lines."""
    code = EXAMPLES[task]
    named = {m.group(0) for m in PATH_TOKEN.finditer(code)}
    assert named == {f'/path/to/{name}' for name in paths}, named
    code = PATH_TOKEN.sub(lambda m: str(paths[m.group(0)[len('/path/to/'):]]), code)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f'<seed README: {task}>', 'exec'), {'__name__': '__main__'})
    return out.getvalue().splitlines()


def expect(line: str, pattern: str) -> re.Match:
    match = re.fullmatch(pattern, line)
    assert match, f"{line!r} does not match {pattern!r}"
    return match


def check_scores(lines: list[str], rowcols, classes: list) -> None:
    """One 'Row r, column c: [...]' line per point, probabilities summing to 1."""
    assert len(lines) == len(rowcols), lines
    for line, (row, col) in zip(lines, rowcols):
        scores = ast.literal_eval(expect(line, rf'Row {row}, column {col}: (\[.*\])').group(1))
        assert len(scores) == len(classes)
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores), scores
        assert sum(scores) == pytest.approx(1.0, abs=1e-6)


@pytest.fixture(scope='module')
def inputs(tmp_path_factory, weights_state) -> Path:
    """An image big enough for the README's points, EfficientNet weights, the
    train example's feature files and two previous classifiers."""
    directory = tmp_path_factory.mktemp('readme')
    scenario.write_image(directory / 'image1.jpg', 3100, 1600)
    scenario.save_weights(directory / 'weights.pt', weights_state, module_prefix=False)
    classes = sorted({a[2] for annotations in TRAIN_FILES.values() for a in annotations})
    centres = scenario.class_centres(classes)
    train_dir = directory / 'train'
    train_dir.mkdir()
    for n, (name, annotations) in enumerate(TRAIN_FILES.items()):
        scenario.write_features(train_dir / f'{name}.featurevector',
                                [(r, c) for r, c, _ in annotations],
                                [lab for _, _, lab in annotations], seed=n, centres=centres)
    train_part = {train_dir / f'{name}.featurevector': TRAIN_FILES[name]
                  for name in ('image1', 'image2', 'image3')}
    scenario.train_and_store_classifier(directory / 'oldclassifier1.pkl', train_part, 'LR')
    scenario.train_and_store_classifier(directory / 'oldclassifier2.pkl', train_part, 'MLP')
    # A classifier over 1280-d features for the two classify examples.
    scenario.train_and_store_classifier(directory / 'classifier1.pkl', train_part, 'MLP')
    return directory


def test_the_readme_has_four_examples_in_task_order():
    assert list(EXAMPLES) == ['extract_features', 'train_classifier',
                              'classify_features', 'classify_image']
    assert all(code.rstrip().splitlines()[-1].strip().startswith('print(')
               for code in EXAMPLES.values())


def test_extract_features_example(inputs, tmp_path):
    out = tmp_path / 'image1.featurevector'
    lines = run_example('extract_features', {
        'weights.pt': inputs / 'weights.pt', 'image1.jpg': inputs / 'image1.jpg',
        'image1.featurevector': out})
    assert len(lines) == 2, lines
    expect(lines[0], f'Feature vector stored at: {re.escape(str(out))}')
    expect(lines[1], rf'Extraction runtime: {FLOAT} s')
    features = ImageFeatures.load(DataLocation('filesystem', str(out)))
    assert features.valid_rowcol and features.feature_dim == 1280
    assert list(zip(features.rows.tolist(), features.cols.tolist())) == EXTRACT_ROWCOLS
    assert np.isfinite(features.feat).all()
    # The points show different parts of the image, so their features differ.
    assert not np.allclose(features.feat[0], features.feat[1], atol=1e-4)


def test_train_classifier_example(inputs, tmp_path):
    train_dir = inputs / 'train'
    model, valresult = tmp_path / 'classifier1.pkl', tmp_path / 'valresult.json'
    paths = {f'{name}.featurevector': train_dir / f'{name}.featurevector'
             for name in TRAIN_FILES}
    paths.update({'oldclassifier1.pkl': inputs / 'oldclassifier1.pkl',
                  'oldclassifier2.pkl': inputs / 'oldclassifier2.pkl',
                  'classifier1.pkl': model, 'valresult.json': valresult})
    lines = run_example('train_classifier', paths)
    assert len(lines) == 6, lines
    expect(lines[0], f'Classifier stored at: {re.escape(str(model))}')
    expect(lines[1], f'Evaluation results stored at: {re.escape(str(valresult))}')
    acc = float(expect(lines[2], rf"New model's accuracy \(0\.0 = 0%, 1\.0 = 100%\): ({FLOAT})")
                .group(1))
    assert 0.0 <= acc <= 1.0
    pc_accs = ast.literal_eval(
        expect(lines[3], r"Previous models' accuracies: (\[.*\])").group(1))
    assert len(pc_accs) == 2 and all(0.0 <= a <= 1.0 for a in pc_accs)
    ref_accs = ast.literal_eval(expect(
        lines[4], r"New model's accuracy progression \(calculated on part of train_labels\)"
                  r" after each epoch of training: (\[.*\])").group(1))
    assert len(ref_accs) == 10 and all(0.0 <= a <= 1.0 for a in ref_accs)  # nbr_epochs=10
    expect(lines[5], rf'Training runtime: {FLOAT} s')

    clf = load_classifier(DataLocation('filesystem', str(model)))
    # Class 19 is only in val_labels: the classifier knows the train classes.
    assert clf.classes_.tolist() == [1, 2, 3, 11, 25]
    results = ValResults.load(DataLocation('filesystem', str(valresult)))
    assert results.classes == [1, 2, 3, 11, 25]
    assert len(results.gt) == 3  # image4's two points and image5's class-25 point
    assert acc == pytest.approx(np.mean(np.equal(results.gt, results.est)))


def _classify_header(lines: list[str], runtime_label: str, what: str, classes: list) -> None:
    expect(lines[0], rf'{runtime_label}: {FLOAT} s')
    shown = ast.literal_eval(expect(lines[1], r'Classes \(recognized labels\): (\[.*\])').group(1))
    assert shown == classes
    assert lines[2] == (f"Classifier's scores for each point in {what};"
                        " scores are posterior probabilities of each class, with classes"
                        " ordered as above:")


def test_classify_features_example(inputs, tmp_path, weights_state):
    features = tmp_path / 'image1.featurevector'
    rng = np.random.default_rng(5)
    rows, cols = zip(*EXTRACT_ROWCOLS)
    ImageFeatures.from_arrays(list(rows), list(cols), rng.normal(size=(3, 1280))).store(
        DataLocation('filesystem', str(features)))
    classifier = inputs / 'classifier1.pkl'
    lines = run_example('classify_features', {
        'image1.featurevector': features, 'classifier1.pkl': classifier})
    classes = load_classifier(DataLocation('filesystem', str(classifier))).classes_.tolist()
    _classify_header(lines, 'Classification runtime', 'the feature vector', classes)
    check_scores(lines[3:], EXTRACT_ROWCOLS, classes)


def test_classify_image_example(inputs):
    classifier = inputs / 'classifier1.pkl'
    lines = run_example('classify_image', {
        'image1.jpg': inputs / 'image1.jpg', 'weights.pt': inputs / 'weights.pt',
        'classifier1.pkl': classifier})
    classes = load_classifier(DataLocation('filesystem', str(classifier))).classes_.tolist()
    _classify_header(lines, 'Runtime', 'rowcols', classes)
    check_scores(lines[3:], EXTRACT_ROWCOLS, classes)
