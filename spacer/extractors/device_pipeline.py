"""
Extraction with the image on the GPU: crop there, batch there, copy only
the features back.

- ``features_on_device``: one image (a Pillow image, uploaded once, or a
  tensor nvJPEG decoded there), the path ``FeatureExtractor.__call__``
  takes on CUDA.
- ``extract_many``: many images, their patches batched together, so that
  images with few points still fill the network's batch; decoding runs
  on a thread pool (or nvJPEG) ahead of the GPU. This is the path for a
  caller holding many images at once (the main job, the benchmarks).

Features are those of the host path (same crop geometry, same network,
TF32 off), within float32 rounding of a different batch composition.
Imports torch.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from spacer.data_classes import ImageFeatures
from spacer.extractors.device_crop import crop_on_device, image_to_device
from spacer.extractors.points import unique_points
from spacer.extractors.utils import to_rgb_array
from spacer.extras import extra_imports

with extra_imports():
    import torch


def image_tensor(im: Image.Image | torch.Tensor,
                 device: str) -> torch.Tensor:
    """The image as an (H, W, 3) uint8 tensor on ``device``."""
    if isinstance(im, torch.Tensor):
        return im.to(device)
    return image_to_device(to_rgb_array(im), device)


def features_on_device(extractor: Any, model: Any, device: str,
                       im: Image.Image | torch.Tensor,
                       rowcols: Sequence[Sequence[int]]) -> np.ndarray:
    """(N, feature_dim) float32 features of one image's points."""
    unique, inverse = unique_points(rowcols)
    image = image_tensor(im, device)
    size = extractor.batch_size(device)
    outputs = []
    for start in range(0, len(unique), size):
        patches = crop_on_device(image, unique[start:start + size],
                                 extractor.CROP_SIZE)
        outputs.append(extractor.compute_features_on_device(model, patches))
    feats = torch.cat(outputs).cpu().numpy()
    return feats[inverse]


@dataclass
class _Pending:
    """An image whose patches are queued for the network."""
    index: int
    rows: np.ndarray
    cols: np.ndarray
    inverse: np.ndarray
    count: int
    outputs: list = field(default_factory=list)
    computed: int = 0


def extract_many(extractor: Any,
                 items: Iterable[tuple[Any, Sequence[Sequence[int]]]],
                 decode: Callable[[Any, str], torch.Tensor] | None = None,
                 decode_threads: int = 8,
                 decode_batch: Callable[[list, str], list] | None = None,
                 images_per_decode: int = 16) -> Iterator[tuple[int, ImageFeatures]]:
    """
    Yield ``(i, ImageFeatures)`` for each ``(source, rowcols)`` of
    ``items``, in order. ``decode(source, device)`` turns a source into an
    (H, W, 3) uint8 tensor on the device (default: ``source`` is a Pillow
    image); or ``decode_batch(sources, device)`` turns up to
    ``images_per_decode`` sources into such tensors at once (nvJPEG's
    batched decoding). Sources are decoded ``decode_threads`` ahead;
    patches of consecutive images share forward passes of ``batch_size``
    patches.
    """
    model, device, _ = extractor.warm_model()
    if decode_batch is None:
        per_item = decode or image_tensor
        images_per_decode = 1

        def decode_batch(sources: list, device: str) -> list:
            return [per_item(source, device) for source in sources]
    size = extractor.batch_size(device)
    waiting: list[_Pending] = []       # images not fully computed, in order
    crops: list[torch.Tensor] = []     # patches not yet through the network
    owners: list[tuple[_Pending, int]] = []  # (image, patches) per crop
    queued = 0

    def run_batch() -> None:
        nonlocal queued
        if not crops:
            return
        feats = extractor.compute_features_on_device(model, torch.cat(crops))
        start = 0
        for pending, count in owners:
            pending.outputs.append(feats[start:start + count])
            pending.computed += count
            start += count
        crops.clear()
        owners.clear()
        queued = 0

    def finished() -> Iterator[tuple[int, ImageFeatures]]:
        while waiting and waiting[0].computed == waiting[0].count:
            done = waiting.pop(0)
            feats = torch.cat(done.outputs).cpu().numpy()[done.inverse]
            yield done.index, ImageFeatures.from_arrays(
                done.rows, done.cols, feats, valid_rowcol=True)

    with ThreadPoolExecutor(max_workers=max(1, decode_threads)) as pool:
        def decode_group(group: list) -> list:
            images = decode_batch([source for _, (source, _) in group], device)
            return [(index, rowcols, image) for (index, (_, rowcols)), image
                    in zip(group, images)]

        groups = _ahead(pool, _groups(enumerate(items), images_per_decode),
                        decode_group, depth=2 * max(1, decode_threads))
        for index, rowcols, image in (entry for group in groups for entry in group):
            points = np.asarray(rowcols, dtype=np.int64).reshape(-1, 2)
            unique, inverse = unique_points(points)
            pending = _Pending(index, points[:, 0], points[:, 1], inverse,
                               len(unique))
            waiting.append(pending)
            offset = 0
            while offset < len(unique):
                # Fill the current batch exactly, then start the next one.
                piece = unique[offset:offset + size - queued]
                crops.append(crop_on_device(image, piece, extractor.CROP_SIZE))
                owners.append((pending, len(piece)))
                queued += len(piece)
                offset += len(piece)
                if queued >= size:
                    run_batch()
            del image
            yield from finished()
        run_batch()
        yield from finished()


def _groups(items: Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    group = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _ahead(pool: ThreadPoolExecutor, items: Iterator, work: Callable,
           depth: int) -> Iterator:
    """``work(item)`` for each item, in order, up to ``depth`` in flight."""
    futures = []
    for item in items:
        futures.append(pool.submit(work, item))
        if len(futures) >= depth:
            yield futures.pop(0).result()
    for future in futures:
        yield future.result()
