"""`spacer run ... --storage s3://BUCKET/PREFIX`: photos, features, the
classifier and the valresult on S3 (moto's server on 127.0.0.1), so workers
share only the bucket; the CSVs and report stay in `-o`. The embedded worker
reads and writes S3, and the predictions equal a filesystem run's."""
from __future__ import annotations

from pathlib import Path

import pytest

from spacer import config
from spacer.data_classes import DataLocation
from spacer.extractors import EfficientNetExtractor
from spacer.extractors.data_files import file_sha256
from spacer.storage.s3 import s3_client
from spacer_cli.spacer_command import main
from spacer_survey.featurestore import extractor_identity
from spacer_survey.job_storage import S3Objects, S3Place, parse_storage_url
from spacer_survey.predictions import read_csv

pytestmark = pytest.mark.integration
PREFIX = 'surveys/tiny'


@pytest.fixture
def default_weights(default_choice, monkeypatch) -> str:
    """`spacer run` without --weights finds the session's default weights."""
    weights = default_choice.extractor.data_locations['weights'].key
    monkeypatch.setattr(config, 'EXTRACTORS_CACHE_DIR', str(Path(weights).parent))
    return weights


def keys_under(bucket: str, prefix: str) -> dict[str, dict]:
    pages = s3_client().get_paginator('list_objects_v2').paginate(
        Bucket=bucket, Prefix=prefix)
    return {item['Key']: item for page in pages for item in page.get('Contents', [])}


def run_args(survey, output: Path, *more: str) -> list[str]:
    """Exactly the fleet test's command line, plus a small training."""
    return ['run', str(survey.images_dir), str(survey.annotations_csv),
            '-o', str(output), *more, '--points', str(survey.points_csv),
            '--split', 'points', '--val-ratio', '0.2', '--epochs', '5', '-q']


def test_run_on_s3_predicts_what_a_filesystem_run_does_and_resumes(
        tiny_survey, default_weights, s3_settings, tmp_path, capsys):
    bucket = s3_settings
    assert main(run_args(tiny_survey, tmp_path / 'fs')) == 0
    capsys.readouterr()

    output = tmp_path / 's3'
    storage = ['--storage', f's3://{bucket}/{PREFIX}']
    code = main(run_args(tiny_survey, output, *storage))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert read_csv(output / 'predictions.csv') == read_csv(tmp_path / 'fs' / 'predictions.csv')
    assert (output / 'report.html').is_file() and (output / 'cover.csv').is_file()
    assert f"Classifier:  s3://{bucket}/{PREFIX}/classifier.pkl" in out

    stored = keys_under(bucket, PREFIX + '/')
    photos = sorted(p.relative_to(tiny_survey.images_dir).as_posix()
                    for p in tiny_survey.images_dir.rglob('*.jpg'))
    assert {f'{PREFIX}/{name}' for name in
            ('classifier.pkl', 'valresult.json', 'training.json')} <= set(stored)
    assert sorted(k[len(f'{PREFIX}/images/'):] for k in stored
                  if k.startswith(f'{PREFIX}/images/')) == photos
    features = [k for k in stored if k.endswith('.featurevector')]
    assert len(features) == len(photos)
    assert all(k.startswith(f'{PREFIX}/features/') for k in features)
    # Nothing but the CSVs and the report is written locally.
    assert not (output / 'features').exists()
    assert not (output / 'classifier.pkl').exists()

    # A re-run reuses the features and the classifier kept on S3.
    code = main(run_args(tiny_survey, tmp_path / 's3-again', *storage))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f'Reusing features of {len(photos)} images' in err
    assert 'Reusing the classifier trained by an earlier run' in err
    assert read_csv(tmp_path / 's3-again' / 'predictions.csv') == read_csv(
        output / 'predictions.csv')
    again = keys_under(bucket, PREFIX + '/')
    assert {k: v['LastModified'] for k, v in again.items() if k.endswith('.featurevector')} \
        == {k: v['LastModified'] for k, v in stored.items() if k.endswith('.featurevector')}


def test_classify_on_s3_uploads_the_classifier_once(
        tiny_survey, default_weights, s3_settings, tmp_path, capsys):
    bucket = s3_settings
    assert main(run_args(tiny_survey, tmp_path / 'fs')) == 0
    capsys.readouterr()
    classifier = tmp_path / 'fs' / 'classifier.pkl'
    code = main(['classify', str(tiny_survey.images_dir), '--classifier', str(classifier),
                 '--points', str(tiny_survey.points_csv), '-o', str(tmp_path / 'cls'),
                 '--storage', f's3://{bucket}/{PREFIX}', '-q'])
    err = capsys.readouterr().err
    assert code == 0, err
    assert read_csv(tmp_path / 'cls' / 'predictions.csv') == read_csv(
        tmp_path / 'fs' / 'predictions.csv')
    assert [k for k in keys_under(bucket, f'{PREFIX}/classifiers/')
            if k.endswith('.pkl')] != []


def test_photos_are_uploaded_once_unless_their_size_changes(s3_settings, tmp_path):
    bucket = s3_settings
    storage = S3Objects(S3Place(bucket, 'p'))
    photo = tmp_path / 'a.jpg'
    photo.write_bytes(b'one')
    first = storage.photo_locations([('site/a.jpg', photo)], say=lambda text: None)
    assert first['site/a.jpg'].key == 'p/images/site/a.jpg'
    assert first['site/a.jpg'].bucket_name == bucket
    stamp = keys_under(bucket, 'p/images/')['p/images/site/a.jpg']['ETag']
    photo.write_bytes(b'two')     # same size: kept as it is
    storage.photo_locations([('site/a.jpg', photo)], say=lambda text: None)
    assert keys_under(bucket, 'p/images/')['p/images/site/a.jpg']['ETag'] == stamp
    photo.write_bytes(b'three')   # another size: uploaded again
    storage.photo_locations([('site/a.jpg', photo)], say=lambda text: None)
    assert keys_under(bucket, 'p/images/')['p/images/site/a.jpg']['ETag'] != stamp


def test_a_fleet_gets_the_extractor_files_from_the_bucket(s3_settings, tmp_path):
    """Workers on other hosts cannot read the producer's weights file: it is
    uploaded (by content) and the extractor names it there; the features'
    identity does not change."""
    bucket = s3_settings
    weights = tmp_path / 'weights.pt'
    weights.write_bytes(b'not really weights')
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(weights))},
        data_hashes={'weights': file_sha256(weights)})
    published = S3Objects(S3Place(bucket, 'p')).published_extractor(extractor)
    loc = published.data_locations['weights']
    assert (loc.storage_type, loc.bucket_name) == ('s3', bucket)
    assert loc.key == f"p/extractors/{file_sha256(weights)}/weights.pt"
    assert s3_client().get_object(Bucket=bucket, Key=loc.key)['Body'].read() == \
        weights.read_bytes()
    assert extractor_identity(published) == extractor_identity(extractor)


@pytest.mark.parametrize('value', ['foo', 's3://', 'file:///tmp/x', 's3:/bucket/x'])
def test_a_bad_storage_value_is_one_line_naming_the_option(value, tmp_path, capsys):
    output = tmp_path / 'out'
    code = main(['run', str(tmp_path), str(tmp_path / 'a.csv'), '-o', str(output),
                 '--storage', value, '-q'])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count('\n') == 1 and err.startswith('spacer: error: --storage ')
    assert repr(value) in err
    assert not output.exists()


def test_an_unreachable_bucket_is_one_line(s3_settings, tmp_path, capsys):
    code = main(['run', str(tmp_path), str(tmp_path / 'a.csv'), '-o', str(tmp_path / 'o'),
                 '--storage', 's3://no-such-bucket-here/x', '-q'])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count('\n') == 1 and 's3://no-such-bucket-here/x' in err


def test_storage_urls():
    assert parse_storage_url('s3://b/one/two/') == S3Place('b', 'one/two')
    assert parse_storage_url('s3://b') == S3Place('b', '')


def test_help_lists_the_storage_option(capsys):
    with pytest.raises(SystemExit):
        main(['run', '--help'])
    assert '--storage s3://BUCKET/PREFIX' in capsys.readouterr().out
