"""Find the photos a CSV names in the images folder, and their sizes.

CoralNet's exports name an image by its file name; users also keep photos in
sub-folders, so a name may be a relative path. Sizes come from the file
header only (Pillow opens lazily), so checking thousands of rows is cheap.
"""
from __future__ import annotations

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
        read as an image."""
        cached = self._info.get(path)
        if cached is None:
            try:
                with Image.open(path) as img:
                    cached = ImageInfo(path, img.width, img.height)
            except (UnidentifiedImageError, OSError) as err:
                cached = f"cannot be read as an image ({err})"
            self._info[path] = cached
        if isinstance(cached, str):
            raise ValueError(cached)
        return cached
