"""Bad CSVs each get a clear message naming the line; good rows survive."""
from __future__ import annotations

import pytest
from PIL import Image

from spacer_survey.csv_input import (CsvInputError, format_issues,
                                     read_annotations, read_points)
from spacer_survey.photo_catalog import ImageCatalog

HEADER = 'Name,Date,Row,Column,Label\n'


@pytest.fixture
def catalog(tmp_path):
    folder = tmp_path / 'images'
    (folder / 'site2').mkdir(parents=True)
    Image.new('RGB', (60, 40), 'gray').save(folder / 'a.jpg')
    Image.new('RGB', (30, 20), 'gray').save(folder / 'site2' / 'b.png')
    (folder / 'broken.jpg').write_bytes(b'not an image at all')
    return ImageCatalog(folder)


def write(tmp_path, text, name='annotations.csv'):
    path = tmp_path / name
    path.write_bytes(text.encode('utf-8') if isinstance(text, str) else text)
    return path


def messages(table):
    return [(issue.line, issue.message) for issue in table.issues]


def test_valid_export_reads_every_row_and_ignores_other_columns(tmp_path, catalog):
    path = write(tmp_path, HEADER + 'a.jpg,2020,0,0,Sand\n'
                 'a.jpg,2020,39,59,CCA\nsite2/b.png,x,19,29,Sand\n'
                 'b.png,x,5,6,Turf\n')
    table = read_annotations(path, catalog)
    assert table.issues == []
    assert [(r.line, r.path.name, r.row, r.col, r.label) for r in table.rows] == [
        (2, 'a.jpg', 0, 0, 'Sand'), (3, 'a.jpg', 39, 59, 'CCA'),
        (4, 'b.png', 19, 29, 'Sand'), (5, 'b.png', 5, 6, 'Turf')]


def test_header_may_be_in_any_case_with_bom_and_label_code_alias(tmp_path, catalog):
    path = write(tmp_path, '\ufeffname,ROW,column,Label code\na.jpg,1,2,Sand\n')
    table = read_annotations(path, catalog)
    assert table.issues == [] and table.rows[0].label == 'Sand'


def test_wrong_columns_are_named(tmp_path, catalog):
    path = write(tmp_path, 'Name,Row,Col,Label\na.jpg,1,2,Sand\n')
    table = read_annotations(path, catalog)
    assert table.fatal
    (line, message), = messages(table)
    assert line == 1
    assert 'missing column(s) Column' in message
    assert 'Name, Row, Col, Label' in message


@pytest.mark.parametrize('content', ['', '\n\n  \n'])
def test_empty_file(tmp_path, catalog, content):
    table = read_annotations(write(tmp_path, content), catalog)
    assert table.fatal and messages(table) == [
        (1, 'the file is empty; expected a header line with the columns '
            'Name, Row, Column, Label')]


def test_header_without_rows(tmp_path, catalog):
    table = read_annotations(write(tmp_path, HEADER), catalog)
    assert table.fatal and messages(table) == [(1, 'no data rows after the header')]


def test_missing_image_is_reported_once_with_its_first_line(tmp_path, catalog):
    path = write(tmp_path, HEADER + 'a.jpg,x,1,1,Sand\nnope.jpg,x,1,1,Sand\n'
                 'nope.jpg,x,2,2,Sand\n')
    table = read_annotations(path, catalog)
    (line, message), = messages(table)
    assert line == 3
    assert "image 'nope.jpg' is not in" in message and '(1 more rows name it)' in message
    assert [r.line for r in table.rows] == [2]


def test_unreadable_image(tmp_path, catalog):
    table = read_annotations(write(tmp_path, HEADER + 'broken.jpg,x,1,1,Sand\n'),
                             catalog)
    (line, message), = messages(table)
    assert line == 2 and "image 'broken.jpg' cannot be read as an image" in message


@pytest.mark.parametrize('row,col', [(40, 0), (0, 60), (-1, 5)])
def test_point_outside_image(tmp_path, catalog, row, col):
    table = read_annotations(write(tmp_path, HEADER + f'a.jpg,x,{row},{col},Sand\n'),
                             catalog)
    (line, message), = messages(table)
    assert line == 2
    assert f"point (Row {row}, Column {col}) is outside image 'a.jpg'" in message
    assert 'Row 0-39, Column 0-59' in message


@pytest.mark.parametrize('row,col,bad', [('1.5', '2', "Row value '1.5'"),
                                         ('1', 'ten', "Column value 'ten'"),
                                         ('', '2', "Row value ''")])
def test_unparsable_numbers(tmp_path, catalog, row, col, bad):
    table = read_annotations(write(tmp_path, HEADER + f'a.jpg,x,{row},{col},Sand\n'),
                             catalog)
    assert messages(table) == [(2, f'{bad} is not a whole number')]


def test_empty_name_label_and_short_rows(tmp_path, catalog):
    path = write(tmp_path, HEADER + ',x,1,1,Sand\na.jpg,x,1,1,\na.jpg,x,1\n')
    assert messages(read_annotations(path, catalog)) == [
        (2, 'Name is empty'), (3, 'Label is empty'),
        (4, 'has 3 fields but the header has 5')]


def test_duplicates_and_conflicting_labels(tmp_path, catalog):
    path = write(tmp_path, HEADER + 'a.jpg,x,1,1,Sand\na.jpg,x,1,1,Sand\n'
                 'a.jpg,y,1,1,CCA\n')
    table = read_annotations(path, catalog)
    assert messages(table) == [
        (3, "duplicate of line 2 (image 'a.jpg', Row 1, Column 1)"),
        (4, "image 'a.jpg' point (Row 1, Column 1) is labelled 'CCA' here "
            "but 'Sand' on line 2")]
    assert [r.line for r in table.rows] == [2]


def test_non_utf8_bytes_are_reported_on_their_line(tmp_path, catalog):
    data = (HEADER + 'a.jpg,x,1,1,Sand\n').encode() + \
        'a.jpg,x,2,2,Algue rouge\n'.encode('latin-1').replace(b'u', b'\xe9') + \
        b'a.jpg,x,3,3,CCA\n'
    table = read_annotations(write(tmp_path, data), catalog)
    assert messages(table) == [
        (3, 'not valid UTF-8 text; save the file with UTF-8 encoding')]
    assert [r.line for r in table.rows] == [2, 4]


def test_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path, catalog):
    path = write(tmp_path, HEADER + '\n"a.jpg","multi\nline",1,1,Sand\n\n'
                 'a.jpg,x,99,1,Sand\n')
    table = read_annotations(path, catalog)
    assert [r.line for r in table.rows] == [3]
    assert [line for line, _ in messages(table)] == [6]


def test_too_many_points_per_image(tmp_path, catalog):
    rows = ''.join(f'a.jpg,x,{i},0,Sand\n' for i in range(4))
    table = read_annotations(write(tmp_path, HEADER + rows), catalog,
                             max_points_per_image=3)
    assert messages(table) == [
        (5, "image 'a.jpg' has more than 3 points (MAX_POINTS_PER_IMAGE)")]


def test_points_csv_needs_no_label(tmp_path, catalog):
    path = write(tmp_path, 'Name,Row,Column\na.jpg,3,4\nb.png,1,1\n', 'points.csv')
    table = read_points(path, catalog)
    assert table.issues == []
    assert [(r.name, r.row, r.col, r.label) for r in table.rows] == [
        ('a.jpg', 3, 4, None), ('b.png', 1, 1, None)]


def test_points_csv_wrong_columns(tmp_path, catalog):
    table = read_points(write(tmp_path, 'Image,Row,Column\na.jpg,1,1\n',
                              'points.csv'), catalog)
    assert table.fatal
    assert str(table.issues[0]).startswith('points.csv, line 1: missing column(s) Name')


def test_error_text_lists_file_and_line_and_is_capped(tmp_path, catalog):
    rows = ''.join(f'a.jpg,x,{100 + i},0,Sand\n' for i in range(30))
    table = read_annotations(write(tmp_path, HEADER + rows), catalog)
    text = format_issues(table.issues, limit=25)
    assert text.splitlines()[0].startswith('annotations.csv, line 2: point (Row 100')
    assert text.splitlines()[-1] == '... and 5 more problems'
    error = CsvInputError(table.issues, hint='use --skip-invalid')
    assert isinstance(error, ValueError) and str(error).endswith('use --skip-invalid')
