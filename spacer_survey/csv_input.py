"""Read and check the CSV files the main job takes.

Two kinds: CoralNet's annotation export (`Name`, `Row`, `Column`, `Label`;
every other column ignored) and a points file for the photos to classify
(`Name`, `Row`, `Column`). Every problem is reported with the line it is on,
all at once, so a user fixes the file in one pass; `CsvTable.rows` keeps only
the rows that passed, which is what `--skip-invalid` runs on.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from spacer import config
from spacer_survey.photo_catalog import ImageCatalog

ANNOTATION_COLUMNS = ('Name', 'Row', 'Column', 'Label')
POINT_COLUMNS = ('Name', 'Row', 'Column')
# Other spellings seen in CoralNet exports, by canonical column.
COLUMN_ALIASES = {'Label': ('label', 'label code')}

_UNDECODABLE = re.compile('[\udc80-\udcff]')
# Shown as '?' in messages: undecodable bytes and control characters.
_UNPRINTABLE = re.compile('[\udc80-\udcff\x00-\x1f\x7f]')


@dataclass(frozen=True)
class CsvIssue:
    """One problem in a CSV file; `fatal` ones cannot be skipped."""
    file: str
    line: int
    message: str
    fatal: bool = False

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class PointRow:
    """A valid CSV row: which photo, which pixel, and (annotations) its label."""
    line: int
    name: str
    path: Path
    row: int
    col: int
    label: str | None = None


@dataclass
class CsvTable:
    """What a CSV file held: the valid rows and the problems found."""
    source: Path
    rows: list[PointRow] = field(default_factory=list)
    issues: list[CsvIssue] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        return any(issue.fatal for issue in self.issues)


class CsvInputError(ValueError):
    """The input CSVs have problems and the run was not told to skip them."""

    def __init__(self, issues: list[CsvIssue], hint: str = ''):
        self.issues = list(issues)
        text = format_issues(self.issues)
        super().__init__(text + (f"\n{hint}" if hint else ''))


def format_issues(issues: list[CsvIssue], limit: int = 25) -> str:
    """A readable listing, capped so a badly broken file stays legible."""
    lines = [str(issue) for issue in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"... and {len(issues) - limit} more problems")
    return '\n'.join(lines)


def read_annotations(path: Path | str, catalog: ImageCatalog,
                     max_points_per_image: int | None = None,
                     max_image_pixels: int | None = None) -> CsvTable:
    """Read a CoralNet annotation export, checking every row against the
    photos in `catalog`."""
    return _read(Path(path), ANNOTATION_COLUMNS, catalog,
                 max_points_per_image, max_image_pixels)


def read_points(path: Path | str, catalog: ImageCatalog,
                max_points_per_image: int | None = None,
                max_image_pixels: int | None = None) -> CsvTable:
    """Read the points to classify (a `Label` column, if any, is ignored)."""
    return _read(Path(path), POINT_COLUMNS, catalog,
                 max_points_per_image, max_image_pixels)


def _limits(max_points: int | None, max_pixels: int | None) -> tuple[int, int]:
    if max_points is None or max_pixels is None:
        max_points = max_points or config.get('MAX_POINTS_PER_IMAGE')
        max_pixels = max_pixels or config.get('MAX_IMAGE_PIXELS')
    return int(max_points), int(max_pixels)


# Byte order marks of the Unicode encodings spreadsheet programs save in
# (Excel's "Unicode text" is UTF-16); the longer UTF-32 marks come first.
_BOMS = ((b'\xff\xfe\x00\x00', 'utf-32'), (b'\x00\x00\xfe\xff', 'utf-32'),
         (b'\xff\xfe', 'utf-16'), (b'\xfe\xff', 'utf-16'))


class _EncodingError(ValueError):
    """The file's bytes are not text in an encoding we can read."""


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), or UTF-16/32 with a BOM. Undecodable
    UTF-8 bytes survive as lone surrogates so the rows holding them can be
    reported by line; a broken UTF-16/32 file raises _EncodingError."""
    if data.startswith(b'\xef\xbb\xbf'):
        data = data[3:]
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)   # the codec drops the BOM
            except UnicodeDecodeError as err:
                raise _EncodingError(
                    f"starts with a {encoding.upper()} byte order mark but "
                    f"is not valid {encoding.upper()} text ({err.reason} at "
                    f"byte {err.start}); save the file as UTF-8") from err
    return data.decode('utf-8', errors='surrogateescape')


def _header_encoding_problem(header: list[str]) -> str | None:
    """Why the header line is not readable text, if it is not."""
    if any('\x00' in h for h in header):
        return ("the header line holds NUL bytes: the file is not UTF-8 text "
                "(perhaps UTF-16 without a byte order mark); save the file as "
                "UTF-8")
    if any(_UNDECODABLE.search(h) for h in header):
        return ("the header line is not valid UTF-8 text; save the file as "
                "UTF-8 (CoralNet's exports are)")
    return None


def _records(text: str):
    """(first line number, fields) for each non-blank CSV record."""
    reader = csv.reader(io.StringIO(text, newline=''))
    line = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield line, err
            return
        if any(f.strip() for f in fields):
            yield line, fields
        line = reader.line_num + 1


def _column_index(header: list[str], wanted: tuple[str, ...]
                  ) -> tuple[dict[str, int], list[str]]:
    normalized = [h.strip().lower() for h in header]
    index, missing = {}, []
    for column in wanted:
        spellings = COLUMN_ALIASES.get(column, (column.lower(),))
        found = next((normalized.index(s) for s in spellings
                      if s in normalized), None)
        if found is None:
            missing.append(column)
        else:
            index[column] = found
    return index, missing


def _whole_number(text: str, column: str) -> int:
    value = text.strip()
    if not re.fullmatch(r'[+-]?\d+', value):
        shown = _UNPRINTABLE.sub('?', value)
        raise ValueError(f"{column} value '{shown}' is not a whole number")
    return int(value)


def _read(path: Path, columns: tuple[str, ...], catalog: ImageCatalog,
          max_points: int | None, max_pixels: int | None) -> CsvTable:
    table = CsvTable(source=path)
    name = path.name

    def problem(line: int, message: str, fatal: bool = False) -> None:
        table.issues.append(CsvIssue(name, line, message, fatal))

    if not path.is_file():
        problem(0, f"file not found: {path}", fatal=True)
        return table
    try:
        text = _decode(path.read_bytes())
    except _EncodingError as err:
        problem(1, f"the file {err}", fatal=True)
        return table
    except OSError as err:
        problem(0, f"cannot be read ({err.strerror or err})", fatal=True)
        return table
    if not text.strip():
        problem(1, "the file is empty; expected a header line with the columns "
                   + ', '.join(columns), fatal=True)
        return table
    records = _records(text)
    header_line, header = next(records)
    if isinstance(header, csv.Error):
        problem(header_line, f"not readable as CSV ({header})", fatal=True)
        return table
    encoding_problem = _header_encoding_problem(header)
    if encoding_problem:
        problem(header_line, encoding_problem, fatal=True)
        return table
    index, missing = _column_index(header, columns)
    if missing:
        found = ', '.join(h.strip() for h in header) or 'nothing'
        problem(header_line,
                f"missing column(s) {', '.join(missing)}; the header has {found}. "
                f"This file needs the columns {', '.join(columns)} "
                "(other columns are ignored).", fatal=True)
        return table

    max_points, max_pixels = _limits(max_points, max_pixels)
    image_problems: dict[str, list] = {}   # message -> [first line, count]
    first_seen: dict[tuple[Path, int, int], PointRow] = {}
    per_image = Counter()
    data_rows = 0
    for line, fields in records:
        if isinstance(fields, csv.Error):
            problem(line, f"not readable as CSV ({fields}); "
                          "nothing after this line was read", fatal=True)
            break
        data_rows += 1
        if any(_UNDECODABLE.search(f) for f in fields):
            problem(line, "not valid UTF-8 text; save the file with UTF-8 "
                          "encoding")
            continue
        if len(fields) <= max(index.values()):
            problem(line, f"has {len(fields)} fields but the header has "
                          f"{len(header)}")
            continue
        image_name = fields[index['Name']].strip()
        if not image_name:
            problem(line, "Name is empty")
            continue
        try:
            row = _whole_number(fields[index['Row']], 'Row')
            col = _whole_number(fields[index['Column']], 'Column')
        except ValueError as err:
            problem(line, str(err))
            continue
        label = None
        if 'Label' in index:
            label = fields[index['Label']].strip()
            if not label:
                problem(line, "Label is empty")
                continue

        image_path = catalog.find(image_name)
        reason = None
        if image_path is None:
            reason = f"image '{image_name}' is not in {catalog.folder}"
        else:
            try:
                info = catalog.info(image_path)
            except ValueError as err:
                reason = f"image '{image_name}' {err}"
            else:
                if info.width * info.height > max_pixels:
                    reason = (f"image '{image_name}' has {info.width} x "
                              f"{info.height} pixels, more than the "
                              f"{max_pixels} allowed (MAX_IMAGE_PIXELS)")
        if reason:
            image_problems.setdefault(reason, [line, 0])[1] += 1
            continue
        if not (0 <= row < info.height and 0 <= col < info.width):
            problem(line,
                    f"point (Row {row}, Column {col}) is outside image "
                    f"'{image_name}', which is {info.width} wide and "
                    f"{info.height} high (Row 0-{info.height - 1}, "
                    f"Column 0-{info.width - 1})")
            continue

        point = PointRow(line, image_name, image_path, row, col, label)
        key = (image_path, row, col)
        earlier = first_seen.get(key)
        if earlier is not None:
            if earlier.label == label:
                problem(line, f"duplicate of line {earlier.line} (image "
                              f"'{image_name}', Row {row}, Column {col})")
            else:
                problem(line, f"image '{image_name}' point (Row {row}, Column "
                              f"{col}) is labelled '{label}' here but "
                              f"'{earlier.label}' on line {earlier.line}")
            continue
        per_image[image_path] += 1
        if per_image[image_path] > max_points:
            problem(line, f"image '{image_name}' has more than {max_points} "
                          "points (MAX_POINTS_PER_IMAGE)")
            continue
        first_seen[key] = point
        table.rows.append(point)

    for message, (line, count) in image_problems.items():
        more = f" ({count - 1} more rows name it)" if count > 1 else ''
        problem(line, message + more)
    if data_rows == 0 and not table.issues:
        problem(header_line, "no data rows after the header", fatal=True)
    table.issues.sort(key=lambda issue: issue.line)
    return table
