"""The last line of a failed job's error_message, as CoralNet reads it.

CoralNet splits that line at the first colon into a dotted class path and a
text, and compares the path with pyspacer's (spacer.exceptions.URLDownloadError,
PIL.UnidentifiedImageError...) to decide whether to alert its admins. The
"jobs" part of tests/fixtures/pyspacer/0.14.0/exception_cases.json holds the
lines pyspacer 0.14's process_job wrote for failing jobs.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError

from spacer import exceptions
from spacer.exceptions import (
    ImageDecodeError, InvalidFeaturesError, MissingKeyError, RowColumnMissingError,
    URLDownloadError, error_line, pyspacer_class_path)
from spacer.messages import JobMsg
from spacer.tasks import process_job

FIXTURE = Path(__file__).parents[1] / 'fixtures' / 'pyspacer' / '0.14.0' / 'exception_cases.json'
JOBS = {case['id']: case for case in json.loads(FIXTURE.read_text())['jobs']}
# Same class path, our text on purpose: ours fetches only http(s) URLs.
OUR_TEXT = {'url-unknown-scheme', 'corrupt-image'}


@pytest.fixture(scope='module')
def job_lines() -> dict[str, str]:
    """Each recorded job run here, its error_message's last line normalized
    as the recorder did ({tmp} for the folder, 0x? for addresses)."""
    with tempfile.TemporaryDirectory() as tmp:
        Image.new('RGB', (100, 80), (10, 120, 200)).save(Path(tmp) / 'image.jpg')
        (Path(tmp) / 'corrupt.jpg').write_text('this is not an image')
        lines = {}
        for case_id, case in JOBS.items():
            job = JobMsg.deserialize(json.loads(json.dumps(case['input']).replace('{tmp}', tmp)))
            result = process_job(job)
            assert not result.ok
            last = result.error_message.splitlines()[-1]
            lines[case_id] = re.sub(r'0x[0-9a-fA-F]+', '0x?', last.replace(tmp, '{tmp}'))
        return lines


@pytest.mark.parametrize('case_id', sorted(JOBS))
def test_class_path_as_pyspacer_prints_it(case_id, job_lines):
    class_path, _, text = job_lines[case_id].partition(':')
    assert class_path == JOBS[case_id]['class_path']
    assert text.strip()


@pytest.mark.parametrize('case_id', sorted(set(JOBS) - OUR_TEXT))
def test_whole_line_as_pyspacer_writes_it(case_id, job_lines):
    assert job_lines[case_id] == JOBS[case_id]['last_line']


def test_a_job_with_several_failures_ends_with_the_first():
    """pyspacer stopped at the first failing task, so its line named that one."""
    with tempfile.TemporaryDirectory() as tmp:
        case = JOBS['missing-image-file']['input']
        first = json.loads(json.dumps(case).replace('{tmp}', tmp))
        second = json.loads(json.dumps(JOBS['url-unknown-scheme']['input']).replace('{tmp}', tmp))
        job = JobMsg.deserialize({'task_name': 'extract_features',
                                  'tasks': first['tasks'] + second['tasks']})
        message = process_job(job).error_message
    assert message.splitlines()[-1].startswith('FileNotFoundError: ')
    assert 'URLDownloadError' in message  # every failure is still reported
    assert message.endswith('\n')


def _raised_from(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as e:
            raise outer from e
    except Exception as e:
        return e


@pytest.mark.parametrize('error, expected', [
    (URLDownloadError('Failed', ValueError('v')),
     'spacer.exceptions.URLDownloadError: Failed / Details - ValueError: v'),
    (RowColumnMissingError(), 'spacer.exceptions.RowColumnMissingError'),
    (FileNotFoundError(2, 'No such file or directory', 'x'),
     "FileNotFoundError: [Errno 2] No such file or directory: 'x'"),
    (MissingKeyError("JobMsg: missing key 'tasks'."), "KeyError: JobMsg: missing key 'tasks'."),
    (InvalidFeaturesError('bad'), 'AssertionError: bad'),
    (ImageDecodeError('no image'), 'PIL.UnidentifiedImageError: no image'),
    (_raised_from(ImageDecodeError('truncated'), OSError('image file is truncated')),
     'OSError: truncated'),
    (_raised_from(ImageDecodeError('no image'), UnidentifiedImageError('cannot identify')),
     'PIL.UnidentifiedImageError: no image'),
])
def test_error_line(error, expected):
    assert error_line(error) == expected


def test_every_class_of_ours_prints_a_path_pyspacer_has():
    """Ours-only classes print as a built-in or third-party class, pyspacer's
    as spacer.exceptions.<name>."""
    for cls in vars(exceptions).values():
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            continue
        try:
            error = cls('x')
        except TypeError:
            error = cls('x', ValueError('y'))
        path = pyspacer_class_path(error)
        if cls.__name__ in exceptions.PYSPACER_EXCEPTIONS:
            assert path == f'spacer.exceptions.{cls.__name__}'
        else:
            assert not path.startswith('spacer.'), (cls, path)
