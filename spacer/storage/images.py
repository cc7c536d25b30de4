"""Images in and out of storage, decoded strictly so bad files fail early."""
from __future__ import annotations

import warnings
from io import BytesIO

from PIL import Image, UnidentifiedImageError

from spacer import config
from spacer.content_free import describe, without_content
from spacer.exceptions import DataLimitError, ImageDecodeError
from spacer.storage.factory import storage_for


def pixel_limit_message(key: str, width: int, height: int) -> str:
    return (f"Image {key} has {width} x {height} = {width * height} total pixels,"
            f" which is larger than the max allowed of {config.get('MAX_IMAGE_PIXELS')}.")


def decode_image(data: BytesIO | bytes, key: str) -> Image.Image:
    """Open and fully decode; a bomb, a truncated or a corrupt file raises."""
    return load_pixels(open_image(data, key), key)


def open_image(data: BytesIO | bytes, key: str) -> Image.Image:
    """Read the header only (format, mode, size), refusing bombs and files
    that are no image; the pixels are decoded later (``load_pixels``) or
    elsewhere (nvJPEG)."""
    stream = BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    stream.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            img = Image.open(stream)
    except Image.DecompressionBombError as e:
        raise DataLimitError(f"Image {key} is too large to decode: {e}") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"Image {key} could not be read as an image"
                               f" ({describe(e)}).") from without_content(e)
    width, height = img.size
    if width * height > config.get('MAX_IMAGE_PIXELS'):
        raise DataLimitError(pixel_limit_message(key, width, height))
    return img


def load_pixels(img: Image.Image, key: str) -> Image.Image:
    """Decode an opened image's pixels; a truncated or corrupt file raises."""
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageDecodeError(  # Pillow's text may quote header bytes
            f"Image {key} is corrupt or truncated ({describe(e)}).") from without_content(e)
    return img


def load_image(loc) -> Image.Image:
    return decode_image(storage_for(loc).load(loc.key), loc.key)


def store_image(loc, img: Image.Image) -> None:
    """Stored as JPEG, as pyspacer does."""
    stream = BytesIO()
    (img if img.mode in ('RGB', 'L', 'CMYK') else img.convert('RGB')).save(stream, 'JPEG')
    stream.seek(0)
    storage_for(loc).store(loc.key, stream)
