"""Find the photos a CSV names in the images folder, and their sizes.

CoralNet's exports name an image by its file name; users also keep photos in
sub-folders, so a name may be a relative path. Sizes come from the file
header only (Pillow opens lazily), so checking thousands of rows is cheap.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({
    '.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp', '.gif', '.webp'})


@dataclass(frozen=True)
class ImageInfo:
    """A photo on disk and its size in pixels."""
    path: Path
    width: int
    height: int


class ImageCatalog:
    """The photos under one folder, looked up by the names CSVs use."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder).resolve()  # CSV rows resolve to absolute paths
        if not self.folder.is_dir():
            raise FileNotFoundError(f"Images folder not found: {self.folder}")
        self._by_relpath: dict[str, Path] = {}
        self._by_basename: dict[str, list[Path]] = {}
        self._by_lower: dict[str, list[Path]] = {}
        for path in sorted(self.folder.rglob('*')):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            rel = path.relative_to(self.folder).as_posix()
            self._by_relpath[rel] = path
            self._by_basename.setdefault(path.name, []).append(path)
            self._by_lower.setdefault(rel.lower(), []).append(path)
        self._info: dict[Path, ImageInfo | str] = {}

    def __len__(self) -> int:
        return len(self._by_relpath)

    def names(self) -> list[str]:
        """Relative paths of every photo in the folder."""
        return list(self._by_relpath)

    def find(self, name: str) -> Path | None:
        """The file a CSV `Name` refers to: the exact relative path, else a
        unique file name anywhere below the folder, else a unique
        case-insensitive match (exports made on Windows)."""
        name = name.strip().replace('\\', '/')
        if name in self._by_relpath:
            return self._by_relpath[name]
        for table, key in ((self._by_basename, name),
                           (self._by_lower, name.lower())):
            found = table.get(key, [])
            if len(found) == 1:
                return found[0]
        return None

    def info(self, path: Path) -> ImageInfo:
        """Size of a photo; raises ValueError naming the file if it can't be
        read as an image. A photo past Pillow's decompression-bomb limit
        still gets its size, so the caller can hold it against spacer's
        MAX_IMAGE_PIXELS like any other."""
        cached = self._info.get(path)
        if cached is None:
            cached = _read_info(path)
            self._info[path] = cached
        if isinstance(cached, str):
            raise ValueError(cached)
        return cached


def _read_info(path: Path) -> ImageInfo | str:
    """The photo's size, or why it has none."""
    try:
        with warnings.catch_warnings():
            # Sizes between Pillow's limit and twice it only warn; the
            # caller compares every size with MAX_IMAGE_PIXELS itself.
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return ImageInfo(path, img.width, img.height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        size = _header_size(path)
        if size is None:
            return f"is too large to be opened ({err})"
        return ImageInfo(path, *size)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            EOFError) as err:
        return f"cannot be read as an image ({err})"


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header of a photo Pillow refuses to open
    for its size: `Image.open` checks the size as it opens, so this asks
    the format's own opener, which reads the header only."""
    Image.init()
    try:
        with open(path, 'rb') as handle:
            prefix = handle.read(16)
            for factory, accept in list(Image.OPEN.values()):
                accepted = accept(prefix) if accept else True
                if not accepted or isinstance(accepted, str):
                    continue
                handle.seek(0)
                try:
                    return tuple(factory(handle, str(path)).size)
                except Exception:    # not this format: try the next one
                    continue
    except OSError:
        return None
    return None
