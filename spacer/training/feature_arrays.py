"""Labelled feature files turned into arrays, read once per training task.

pyspacer re-reads and re-decompresses every feature file in every epoch. Here
each file is read once (remote files many at a time, on a thread pool: the
work is network and zlib, which release the GIL) and the annotated vectors
land in one float32 matrix, in the order of the labels' keys, with an offset
table marking where each image's rows start. An epoch then only permutes
images and slices rows, exactly as pyspacer's per-image shuffle does.

Memory stays bounded: a matrix larger than ``in_memory_limit()`` bytes
(``SPACER_TRAINING_IN_MEMORY_MB``, 2048 MB by default) is a memory-mapped
file in a temporary folder (under the task's feature cache folder when one is
given), deleted when the arrays are closed; each batch copies only its own
rows into RAM. Feature files are float64, but vectors come from float32
networks, so float32 loses nothing real and halves the memory.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from spacer import config
from spacer.data_classes import DataLocation, ImageLabels, annotated_rows

FEATURE_DTYPE = np.float32
DEFAULT_IN_MEMORY_MB = 2048
REMOTE_WORKERS = 16


def in_memory_limit() -> int:
    """Bytes a training matrix may take in RAM before it goes to disk."""
    megabytes = config.get_config_value(
        'TRAINING_IN_MEMORY_MB', int, DEFAULT_IN_MEMORY_MB)
    return int(megabytes) * 1024 * 1024


def _workers(labels: ImageLabels) -> int:
    if labels.has_remote_data:
        return REMOTE_WORKERS
    return max(1, min(4, os.cpu_count() or 1))


def map_ordered(fn: Callable, items: Iterable, workers: int) -> Iterator:
    """fn over items on a thread pool, results in order, a bounded number in
    flight (so a slow consumer never piles up loaded files)."""
    items = iter(items)
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def labelled_matrix(loc: DataLocation, annotations: list,
                    filesystem_cache: str | None = None) -> np.ndarray:
    """The feature vectors of a file's annotated points, in annotation order.

    Errors name the file: legacy features (no rows/cols) cannot be trained
    on, every labelled point must be in the file, and vectors must be finite.
    """
    matrix = annotated_rows(loc, annotations, filesystem_cache)
    if not np.isfinite(matrix).all():
        raise ValueError(
            f"{loc.key}: feature vectors contain NaN or infinite values.")
    return matrix


def iter_labelled_chunks(labels: ImageLabels, chunk_points: int = 5000) \
        -> Iterator[tuple[np.ndarray, list]]:
    """(features, labels) in key order, about chunk_points rows at a time:
    for evaluating on a set that may not fit in memory."""
    keys = list(labels.keys())

    def load(loc):
        return labelled_matrix(loc, labels[loc], labels.filesystem_cache)

    feats: list[np.ndarray] = []
    ys: list = []
    count = 0
    for loc, matrix in zip(keys, map_ordered(load, keys, _workers(labels))):
        feats.append(matrix)
        ys.extend(label for _, _, label in labels[loc])
        count += len(matrix)
        if count >= chunk_points:
            yield np.concatenate(feats), ys
            feats, ys, count = [], [], 0
    if feats:
        yield np.concatenate(feats), ys


@dataclass
class LabelledArrays:
    """A labelled set as arrays; rows of image i are offsets[i]:offsets[i+1]."""

    features: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray
    _tmpdir: str | None = field(default=None, repr=False)

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def epoch_order(self, seed: int | None) -> np.ndarray:
        """Row indices of one epoch: images shuffled as pyspacer shuffles
        them (``np.random.seed(seed); np.random.shuffle(keys)``), each
        image's points kept together in annotation order."""
        n_images = len(self.offsets) - 1
        images = np.arange(n_images)
        if seed is not None:
            np.random.RandomState(seed).shuffle(images)
        starts = self.offsets[images]
        lengths = self.offsets[images + 1] - starts
        # Row i of the epoch = start of its image + position inside it.
        image_of_row = np.repeat(np.arange(n_images), lengths)
        first_row = np.cumsum(lengths) - lengths
        return starts[image_of_row] + (
            np.arange(int(lengths.sum())) - first_row[image_of_row])

    def batches(self, seed: int | None, batch_size: int) \
            -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """pyspacer's training batches: consecutive runs of batch_size rows
        of the epoch order (the last one shorter)."""
        order = self.epoch_order(seed)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            yield self.take(rows), self.labels[rows]

    def take(self, rows: np.ndarray) -> np.ndarray:
        if isinstance(self.features, np.memmap):
            # Sorted reads are sequential on disk; then restore the order.
            sort = np.argsort(rows, kind='stable')
            block = np.empty((len(rows), self.feature_dim), FEATURE_DTYPE)
            block[sort] = self.features[rows[sort]]
            return block
        return self.features[rows]

    def close(self) -> None:
        """Release the memory map and delete its file, if any."""
        if self._tmpdir is not None:
            self.features = np.empty((0, self.feature_dim), FEATURE_DTYPE)
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> LabelledArrays:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_labelled_arrays(labels: ImageLabels,
                         storage_dir: str | None = None,
                         memory_limit: int | None = None) -> LabelledArrays:
    """Read every feature file of ``labels`` once into a LabelledArrays.

    ``storage_dir`` is where a too-large matrix is memory-mapped (a temporary
    folder inside it; the system's temporary folder when None).
    """
    keys = list(labels.keys())
    if not keys:
        raise ValueError("Cannot load an empty set of labels.")
    counts = np.array([len(labels[k]) for k in keys], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    total = int(offsets[-1])
    label_values = np.asarray(
        [label for k in keys for _, _, label in labels[k]])
    if memory_limit is None:
        memory_limit = in_memory_limit()

    def load(index: int) -> tuple[int, np.ndarray]:
        loc = keys[index]
        return index, labelled_matrix(loc, labels[loc],
                                      labels.filesystem_cache)

    first_index, first = load(0)
    dim = first.shape[1]
    nbytes = total * dim * np.dtype(FEATURE_DTYPE).itemsize
    tmpdir = None
    if nbytes > memory_limit:
        if storage_dir is not None:
            os.makedirs(storage_dir, exist_ok=True)
        tmpdir = tempfile.mkdtemp(prefix='spacer-train-', dir=storage_dir)
        features = np.lib.format.open_memmap(
            os.path.join(tmpdir, 'features.npy'), mode='w+',
            dtype=FEATURE_DTYPE, shape=(total, dim))
    else:
        features = np.empty((total, dim), FEATURE_DTYPE)

    arrays = LabelledArrays(features, label_values, offsets, tmpdir)
    try:
        loaded = map_ordered(load, range(1, len(keys)), _workers(labels))
        for index, matrix in _chain_first((first_index, first), loaded):
            if matrix.shape[1] != dim:
                raise ValueError(
                    f"{keys[index].key}: feature dimension {matrix.shape[1]}"
                    f" differs from the {dim} of {keys[0].key}.")
            features[offsets[index]:offsets[index + 1]] = matrix
    except BaseException:
        arrays.close()
        raise
    return arrays


def _chain_first(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest
