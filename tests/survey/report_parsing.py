"""Read back what report.html holds: figures (decoded images) and tables."""
from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

from PIL import Image


class ReportParser(HTMLParser):
    """Collects <figure id> -> decoded image, <table id> -> rows of cell text,
    and the text of elements with an id."""

    def __init__(self):
        super().__init__()
        self.figures: dict[str, Image.Image] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.texts: dict[str, str] = {}
        self.images: list[str] = []
        self._figure = None
        self._table = None
        self._cell = None
        self._text_ids: list[tuple[str, str]] = []   # (tag, id) open

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'figure':
            self._figure = attrs.get('id')
        elif tag == 'img':
            src = attrs.get('src', '')
            self.images.append(src)
            prefix = 'data:image/png;base64,'
            assert src.startswith(prefix), src[:40]
            image = Image.open(io.BytesIO(base64.b64decode(src[len(prefix):])))
            image.load()
            if self._figure:
                self.figures[self._figure] = image
        elif tag == 'table':
            self._table = attrs.get('id')
            self.tables[self._table] = []
        elif tag == 'tr' and self._table:
            self.tables[self._table].append([])
        elif tag in ('td', 'th') and self._table:
            self._cell = ''
        if 'id' in attrs and tag in ('span', 'strong'):
            self._text_ids.append((tag, attrs['id']))
            self.texts[attrs['id']] = ''

    def handle_endtag(self, tag):
        if tag == 'figure':
            self._figure = None
        elif tag == 'table':
            self._table = None
        elif tag in ('td', 'th') and self._cell is not None:
            self.tables[self._table][-1].append(self._cell)
            self._cell = None
        if self._text_ids and self._text_ids[-1][0] == tag:
            self._text_ids.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        for _, element_id in self._text_ids:
            self.texts[element_id] += data


def parse_report(text: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(text)
    parser.close()
    return parser
