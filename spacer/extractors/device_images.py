"""
Images for GPU extraction: decoded by Pillow (pixels exactly as pyspacer's)
or, when ``JPEG_DECODER`` is ``nvjpeg``, by nvJPEG on the GPU itself
(torchvision's ``decode_jpeg``), which takes the decoding off the host's
cores at the price of pixels that may differ by rounding (its IDCT and
chroma upsampling are not libjpeg-turbo's).

Only baseline or progressive YCbCr JPEGs go to nvJPEG; grayscale, CMYK and
other formats, and any file nvJPEG refuses, are decoded by Pillow, which
also names the fault of a corrupt file. Size checks always run on the
header first.
"""
from __future__ import annotations

from typing import Any

from PIL import Image

from spacer import config
from spacer.exceptions import ConfigError
from spacer.extras import extra_imports
from spacer.storage.factory import storage_for
from spacer.storage.images import load_pixels, open_image

DECODERS = ('pillow', 'nvjpeg')


def decoder_setting() -> str:
    value = (config.get('JPEG_DECODER') or 'pillow').strip().lower()
    if value not in DECODERS:
        raise ConfigError(
            f"JPEG_DECODER must be one of {', '.join(DECODERS)}, not {value!r}.")
    return value


def nvjpeg_can_decode(header: Image.Image) -> bool:
    """Whether nvJPEG decodes this opened file to what Pillow's RGB is."""
    return header.format == 'JPEG' and header.mode == 'RGB'


def _ends_like_a_jpeg(data: bytes) -> bool:
    """Whether the file ends with JPEG's end-of-image marker. nvJPEG may
    decode a truncated file without complaint; such files go to Pillow,
    which refuses them (or pads them, with ALLOW_TRUNCATED_IMAGES)."""
    return data.rstrip(b'\0')[-2:] == b'\xff\xd9'


def decode_jpeg_on_device(data: bytes, device: str) -> Any:
    """An (H, W, 3) uint8 tensor on ``device``, decoded there by nvJPEG."""
    with extra_imports():
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return decode_jpeg(raw, mode=ImageReadMode.RGB,
                       device=device).permute(1, 2, 0)


def load_for_extraction(loc: Any, device: str) -> tuple[Any, Image.Image]:
    """(image, header) of ``loc`` for extracting on ``device``: the image is
    a Pillow image, or an (H, W, 3) tensor nvJPEG decoded on the GPU;
    the header gives its size for the input checks."""

    data = storage_for(loc).load(loc.key)
    header = open_image(data, loc.key)
    raw = data.getvalue() if hasattr(data, 'getvalue') else data
    if decoder_setting() == 'nvjpeg' and device.startswith('cuda') \
            and nvjpeg_can_decode(header) and _ends_like_a_jpeg(raw):
        try:
            return decode_jpeg_on_device(raw, device), header
        except RuntimeError:
            pass  # Pillow decodes it, or says what is wrong with the file
    image = load_pixels(header, loc.key)
    return image, image
