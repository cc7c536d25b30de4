"""`spacer run` on hostile input: an output folder that cannot be written,
a decompression-bomb photo, malformed extractor JSON, unusable weights, a
failed training, photos that change between runs, and CSVs saved as UTF-16.
Each gets a one-line error naming the cause, never a traceback."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image

from spacer.data_classes import ValResults
from spacer_cli import job_outcome
from spacer_cli.spacer_command import main
from spacer_survey import pipeline
from spacer_survey.csv_input import read_annotations
from spacer_survey.dispatch import QueueDispatcher
from spacer_survey.extractor_choice import from_json
from spacer_survey.photo_catalog import ImageCatalog
from spacer_survey.pipeline import JobError, OutputDirError, run_job
from spacer_survey.predictions import Prediction
from spacer_survey.report import ReportContent, render
from spacer_survey.synthetic_survey import SurveySpec, generate_survey
from tests.survey.test_pipeline import spec_for
from workers.errors import RemoteError

# Smaller than conftest's TINY: a whole run takes about a second.
MINI = SurveySpec(annotated_images=4, unannotated_images=1, width=96,
                  height=64, points_per_image=5, labels=('Sand', 'CCA'),
                  seed=1)
TO_CLASSIFY = 'survey_005.jpg'      # MINI's unannotated photo


@pytest.fixture
def mini(tmp_path):
    return generate_survey(tmp_path / 'survey', MINI)


def weights_of(choice) -> Path:
    return Path(choice.extractor.data_locations['weights'].key)


def run_cli(survey, output, *extra) -> list[str]:
    return ['run', str(survey.images_dir), str(survey.annotations_csv),
            '--points', str(survey.points_csv), '-o', str(output),
            '--split', 'points', '--val-ratio', '0.2', '--epochs', '2', '-q',
            *extra]


def one_error_line(err: str) -> str:
    assert 'Traceback' not in err
    lines = [line for line in err.splitlines()
             if line.startswith('spacer: error:')]
    assert len(lines) == 1, err
    return lines[0]


# ---- 6: the output folder ----------------------------------------------

def test_output_folder_that_is_a_file(mini, tmp_path, capsys):
    afile = tmp_path / 'afile'
    afile.write_text('')
    for output, expected in (
            (afile, f'output folder {afile} is a file'),
            (afile / 'sub', f'output folder {afile / "sub"} cannot be created: '
                            f'{afile} is a file')):
        code = main(run_cli(mini, output))
        assert code == 2
        assert one_error_line(capsys.readouterr().err) == \
            f'spacer: error: {expected}'
    assert afile.read_text() == ''


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes anywhere')
def test_output_folder_without_write_permission(mini, tmp_path, capsys):
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = main(run_cli(mini, locked / 'out'))
    finally:
        locked.chmod(0o755)
    assert code == 2
    assert 'cannot be created: no write permission' in capsys.readouterr().err


def test_output_folder_on_a_read_only_mount(tmp_path, monkeypatch):
    # Permission bits say yes, the write says no (a read-only mount).
    def refuse(*args, **kwargs):
        raise OSError(30, 'Read-only file system')
    monkeypatch.setattr(pipeline.tempfile, 'TemporaryFile', refuse)
    with pytest.raises(OutputDirError,
                       match='cannot be written: Read-only file system'):
        pipeline._make_output_dir(tmp_path / 'out')


# ---- 7: a decompression bomb named in the CSV ------------------------

def png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (a few bytes on disk)."""
    buffer = io.BytesIO()
    Image.new('L', (1, 1)).save(buffer, 'PNG')
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack('>II', width, height)   # IHDR width, height
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_huge_image_is_a_row_problem(tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    png_header(folder / 'bomb.png', 20000, 20000)      # past Pillow's 2x limit
    png_header(folder / 'big.png', 12000, 12000)       # Pillow only warns
    Image.new('RGB', (40, 30)).save(folder / 'ok.jpg')
    csv = tmp_path / 'a.csv'
    csv.write_text('Name,Row,Column,Label\nbomb.png,1,1,Sand\n'
                   'big.png,1,1,Sand\nok.jpg,1,1,Sand\n')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        table = read_annotations(csv, ImageCatalog(folder))
    assert [str(issue) for issue in table.issues] == [
        "a.csv, line 2: image 'bomb.png' has 20000 x 20000 pixels, more than "
        "the 100000000 allowed (MAX_IMAGE_PIXELS)",
        "a.csv, line 3: image 'big.png' has 12000 x 12000 pixels, more than "
        "the 100000000 allowed (MAX_IMAGE_PIXELS)"]
    assert [row.name for row in table.rows] == ['ok.jpg']


# ---- 8: malformed extractor JSON ----------------------------------------

EFFICIENTNET = 'spacer.extractors.EfficientNetExtractor'


@pytest.mark.parametrize('locations, expected', [
    ({'weights': 'x.pt'}, "data_locations['weights']: DataLocation: expected "
                          "a JSON object, got str"),
    (['a'], 'data_locations must be an object of key -> DataLocation, got list'),
    ({'weights': {'storage_type': 'filesystem'}},
     "data_locations['weights']: DataLocation: missing key 'key'"),
    ({}, 'weights must be present in data_locations'),
])
def test_malformed_extractor_json(tmp_path, locations, expected):
    path = tmp_path / 'e.json'
    path.write_text(json.dumps({'class_path': EFFICIENTNET,
                                'data_locations': locations}))
    with pytest.raises(ValueError) as raised:
        from_json(path)
    assert type(raised.value) is ValueError
    assert str(raised.value).startswith(f'Extractor JSON {path}: ')
    assert expected in str(raised.value)


@pytest.mark.parametrize('kind, expected', [
    ('folder', 'is a folder, not a file'), ('missing', 'was not found')])
def test_extractor_json_data_file_not_a_file(tmp_path, kind, expected):
    key = tmp_path / kind
    if kind == 'folder':
        key.mkdir()
    path = tmp_path / 'e.json'
    path.write_text(json.dumps({'class_path': EFFICIENTNET, 'data_locations': {
        'weights': {'storage_type': 'filesystem', 'key': str(key)}}}))
    with pytest.raises(ValueError, match=f"data_locations\\['weights'\\] {key} "
                                         f"{expected}"):
        from_json(path)


def test_malformed_extractor_json_on_the_command_line(mini, tmp_path, capsys):
    path = tmp_path / 'e.json'
    path.write_text(json.dumps({'class_path': EFFICIENTNET,
                                'data_locations': ['a']}))
    code = main(run_cli(mini, tmp_path / 'out', '--extractor', str(path)))
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert 'data_locations must be an object' in line


def test_extractor_json_without_hash_still_gets_one(default_choice, tmp_path):
    weights = weights_of(default_choice)
    path = tmp_path / 'e.json'
    path.write_text(json.dumps({'class_path': EFFICIENTNET, 'data_locations': {
        'weights': {'storage_type': 'filesystem', 'key': str(weights)}}}))
    assert from_json(path).extractor.data_hashes == {
        'weights': hashlib.sha256(weights.read_bytes()).hexdigest()}


# ---- 9: unusable weights, failed training, nothing left ------------------

def nan_weights(source: Path, target: Path) -> Path:
    import torch
    checkpoint = torch.load(source, weights_only=True)
    torch.save({'net': {key: torch.full_like(value, float('nan'))
                        if value.is_floating_point() else value
                        for key, value in checkpoint['net'].items()}}, target)
    return target


def test_nan_weights_stop_the_job_before_extraction(mini, default_choice,
                                                    tmp_path, capsys):
    weights = nan_weights(weights_of(default_choice), tmp_path / 'nan.pt')
    output = tmp_path / 'out'
    code = main(run_cli(mini, output, '--weights', str(weights)))
    assert code == 1
    line = one_error_line(capsys.readouterr().err)
    assert f'weights file {weights}) is not usable' in line
    assert 'NaN or infinite features' in line
    assert not list(output.rglob('*.featurevector'))


def test_empty_weights_file_is_not_blamed_on_the_images(mini, tmp_path, capsys):
    weights = tmp_path / 'zero.pt'
    weights.write_bytes(b'')
    code = main(run_cli(mini, tmp_path / 'out', '--weights', str(weights),
                        '--skip-invalid'))
    err = capsys.readouterr().err
    assert code == 1
    assert 'Leaving out' not in err
    line = one_error_line(err)
    assert f'weights file {weights}) is not usable: WeightsFormatError' in line


class FailingDispatcher(QueueDispatcher):
    """The embedded queue, but chosen tasks fail as a worker reports it."""

    def __init__(self, extract_error: RemoteError | None = None,
                 train_error: RemoteError | None = None):
        super().__init__()
        self.extract_error, self.train_error = extract_error, train_error

    def run_all(self, task_name, messages):
        if task_name == 'extract_features' and self.extract_error:
            return iter([self.extract_error for _ in list(messages)])
        return super().run_all(task_name, messages)

    def run_one(self, task_name, message, on_wait=None):
        if task_name == 'train_classifier' and self.train_error:
            raise self.train_error
        return super().run_one(task_name, message, on_wait)


def test_failed_training_is_one_line(mini, default_choice, tmp_path):
    failing = FailingDispatcher(train_error=RemoteError(
        'ValueError', 'feature vectors contain NaN'))
    with pytest.raises(JobError, match='^training failed: ValueError: '
                                       'feature vectors contain NaN$'):
        run_job(spec_for(mini, tmp_path / 'out', default_choice),
                dispatcher=failing)


def test_remote_error_reaching_the_cli_is_one_line(capsys):
    def action():
        raise RemoteError('ValueError', 'something broke on the worker')
    assert job_outcome.guarded(action) == 1
    assert capsys.readouterr().err == ('spacer: error: a task failed: '
                                       'ValueError: something broke on the '
                                       'worker\n')


def test_extractor_error_from_a_worker_stops_the_job(mini, default_choice,
                                                     tmp_path):
    failing = FailingDispatcher(extract_error=RemoteError(
        'WeightsFormatError', 'produced NaN or infinite features'))
    with pytest.raises(JobError, match='is not usable: extracting survey_001'):
        run_job(spec_for(mini, tmp_path / 'out', default_choice,
                         skip_invalid=True), dispatcher=failing)


def test_no_images_left_after_skipping(mini, default_choice, tmp_path):
    failing = FailingDispatcher(extract_error=RemoteError(
        'ImageDecodeError', 'image is corrupt'))
    with pytest.raises(JobError, match='failed for every annotated image'):
        run_job(spec_for(mini, tmp_path / 'out', default_choice,
                         skip_invalid=True), dispatcher=failing)


# ---- 10: photos that change between runs ---------------------------------

def test_changed_photo_is_extracted_again(mini, default_choice, tmp_path):
    output = tmp_path / 'out'
    first = run_job(spec_for(mini, output, default_choice))
    features = next(output.rglob(f'{TO_CLASSIFY}.featurevector'))
    before = features.read_bytes()

    photo = mini.images_dir / TO_CLASSIFY
    shutil.copyfile(mini.images_dir / 'survey_001.jpg', photo)   # same size
    said = []
    second = run_job(spec_for(mini, output, default_choice, say=said.append))
    assert (second.images_extracted, second.images_reused) == (1, 4)
    assert features.read_bytes() != before
    assert any('1 photos changed' in text and TO_CLASSIFY in text
               for text in said)
    record = json.loads(features.with_name(f'{TO_CLASSIFY}.source.json')
                        .read_text())
    assert record['sha256'] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert [p.name for p in second.predictions] == \
        [p.name for p in first.predictions]


def test_truncated_photo_after_a_run(mini, default_choice, tmp_path):
    output = tmp_path / 'out'
    run_job(spec_for(mini, output, default_choice))
    photo = mini.images_dir / TO_CLASSIFY
    data = photo.read_bytes()
    photo.write_bytes(data[:len(data) // 2])         # header intact, body cut
    with pytest.raises(JobError, match=f'(?s)failed for 1 images.*{TO_CLASSIFY}'):
        run_job(spec_for(mini, output, default_choice))
    outcome = run_job(spec_for(mini, output, default_choice, skip_invalid=True))
    assert outcome.predictions == []
    assert outcome.report.is_file()


def test_report_skips_a_photo_that_cannot_be_drawn(tmp_path):
    broken = tmp_path / 'broken.jpg'
    buffer = io.BytesIO()
    Image.new('RGB', (64, 48), 'gray').save(buffer, 'JPEG')
    broken.write_bytes(buffer.getvalue()[:200])
    valresults = ValResults(scores=[0.9], gt=[0], est=[0], classes=['Sand'])
    html = render(ReportContent(
        valresults=valresults,
        predictions=[Prediction('broken.jpg', 5, 5, [('Sand', 0.9)])],
        image_paths={'broken.jpg': broken}))
    assert 'id="prediction-image-1-missing"' in html
    assert 'broken.jpg could not be drawn' in html


# ---- minor: CSV encodings ------------------------------------------------

def test_utf16_csv_is_read(tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    Image.new('RGB', (40, 30)).save(folder / 'a.jpg')
    catalog = ImageCatalog(folder)
    text = 'Name,Row,Column,Label\r\na.jpg,1,2,Sand\r\na.jpg,3,4,CCA\r\n'
    for encoding in ('utf-16', 'utf-16-be'):
        csv = tmp_path / f'{encoding}.csv'
        data = text.encode(encoding)
        csv.write_bytes(data if encoding == 'utf-16' else b'\xfe\xff' + data)
        table = read_annotations(csv, catalog)
        assert table.issues == []
        assert [(r.row, r.col, r.label) for r in table.rows] == [
            (1, 2, 'Sand'), (3, 4, 'CCA')]


@pytest.mark.parametrize('data, expected', [
    ('Name,Row,Column,Label\n'.encode('utf-16-le'), 'holds NUL bytes'),
    ('Näme,Row,Column,Label\n'.encode('latin-1'),
     'the header line is not valid UTF-8 text'),
    (b'\xff\xfeN\x00\x00\xd8', 'not valid UTF-16 text'),
])
def test_csv_that_is_not_utf8(tmp_path, data, expected):
    folder = tmp_path / 'images'
    folder.mkdir()
    csv = tmp_path / 'a.csv'
    csv.write_bytes(data)
    table = read_annotations(csv, ImageCatalog(folder))
    assert table.fatal and len(table.issues) == 1
    assert expected in table.issues[0].message
    assert 'missing column' not in table.issues[0].message
