"""
The feature-extractor base class: data files, serialization, and the one
call that turns an image and its points into features. ``DummyExtractor``
(random features, for tests and wiring) is defined here too, where pyspacer
has it and its class_path points.

A subclass implements three things:

- ``feature_dim`` (property): length of one feature vector.
- ``build_model(self, device: str) -> Any``: the cold path. Read the data
  files with ``self.load_datastream(key)`` (hash-checked) and return a
  ready-to-run model on ``device`` ('cpu', 'cuda', 'cuda:N'). Called once
  per process for given file contents and device; the result is kept warm
  (``spacer.extractors.warm``).
- ``compute_features(self, model, patches: np.ndarray) -> np.ndarray``:
  ``patches`` is a uint8 batch of shape (N, CROP_SIZE, CROP_SIZE, 3), RGB;
  return an (N, feature_dim) float array (float32 is fine), row i for
  patch i. Called once per batch of at most ``self.batch_size(device)``.

Optionally override ``CPU_BATCH_SIZE`` / ``GPU_BATCH_SIZE`` (config
EXTRACT_BATCH_SIZE > 0 overrides both), and ``model_variant(device)`` when
something besides the files and device changes the built model.

Importing this module must not import torch: torch is only imported on
the way to computing features (device resolution, ``build_model``).
"""
from __future__ import annotations

import abc
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any, Hashable, Iterator, Sequence

import numpy as np
from PIL import Image

from spacer import config
from spacer.data_classes import DataLocation, ImageFeatures
from spacer.exceptions import MessageError
from spacer.extractors import data_files, warm
from spacer.extractors.points import split_rowcols, unique_points
from spacer.extractors.utils import PatchCropper
from spacer.interfaces import FeatureExtractorInterface
from spacer.return_messages import ExtractFeaturesReturnMsg
from spacer.storage.cache import cached_file_path, cached_path, evict

logger = logging.getLogger(__name__)


class FeatureExtractor(FeatureExtractorInterface):

    # Keys that data_locations must hold (one per file the model needs).
    DATA_LOCATION_KEYS: list[str] = []
    # Width and height of the patches cut around each point.
    CROP_SIZE = 224
    CPU_BATCH_SIZE = 10
    GPU_BATCH_SIZE = 256

    def __init__(self,
                 data_locations: dict[str, DataLocation],
                 data_hashes: dict[str, str] | None = None,
                 **kwargs):
        owner = type(self).__name__
        if kwargs:
            # Subclasses pass on what they do not take; anything left is a
            # typo or a field of another extractor, not something to drop.
            raise MessageError(
                f"{owner}: unknown field(s) {', '.join(map(repr, kwargs))}.")
        self.data_locations = _data_locations(data_locations, owner)
        for key in self.DATA_LOCATION_KEYS:
            if key not in self.data_locations:
                raise MessageError(
                    f"{key} must be present in data_locations for {owner}.")
        # sha256 hex digests, for any subset of the data_locations keys.
        self.data_hashes = _data_hashes(data_hashes, self.data_locations, owner)

    # ---- what subclasses provide -------------------------------------

    @property
    @abc.abstractmethod
    def feature_dim(self) -> int:
        """Length of one feature vector."""

    def build_model(self, device: str) -> Any:
        """Build the model from the data files, ready on ``device``."""
        raise NotImplementedError

    def compute_features(self, model: Any, patches: np.ndarray) -> np.ndarray:
        """(N, feature_dim) features of an (N, S, S, 3) uint8 RGB batch."""
        raise NotImplementedError

    def compute_features_on_device(self, model: Any, patches: Any) -> Any:
        """Like compute_features for an (N, S, S, 3) uint8 torch tensor on
        the model's GPU, returning a float tensor left there. The default
        goes through the host; extractors whose network is a torch module
        override it so patches never leave the GPU."""
        import torch
        return torch.from_numpy(np.asarray(self.compute_features(
            model, patches.cpu().numpy()), dtype=np.float32)).to(patches.device)

    def model_variant(self, device: str) -> Hashable:
        """Anything besides the data files and device that changes what
        build_model returns (e.g. the engine setting); part of the warm
        cache key."""
        return None

    # ---- extraction ----------------------------------------------------

    def __call__(self, im: Image.Image | Any,
                 rowcols: Sequence[Sequence[int]]) \
            -> tuple[ImageFeatures, ExtractFeaturesReturnMsg]:
        """Features of the patches around each (row, col) of ``im``: a
        Pillow image, or an (H, W, 3) uint8 torch tensor already decoded on
        the GPU (``spacer.extractors.device_images``)."""
        start_time = time.time()
        rows, cols = split_rowcols(rowcols)
        model, device, remote_loaded = self.warm_model()
        if device.startswith('cuda'):
            # Cut on the GPU: the image goes up once, patches never come back.
            # Imported here: the GPU pipeline imports torch.
            from spacer.extractors.device_pipeline import features_on_device
            feats = features_on_device(self, model, device, im, rowcols)
        else:
            with config.log_entry_and_exit(
                    f'cropping of {len(rowcols)} patches'):
                cropper = PatchCropper(im, self.CROP_SIZE)
            feats = self._features_of(model, device, cropper, rowcols)
        del im
        features = ImageFeatures.from_arrays(
            rows, cols, feats, valid_rowcol=True)
        return_msg = ExtractFeaturesReturnMsg(
            extractor_loaded_remotely=remote_loaded,
            runtime=time.time() - start_time,
        )
        return features, return_msg

    def patches_to_features(self, patch_list) -> tuple[list, bool]:
        """pyspacer's hook: features (lists of floats) of already cropped
        patches, and whether data files were downloaded."""
        patches = np.asarray(patch_list, dtype=np.uint8)
        model, device, remote_loaded = self.warm_model()
        size = self.batch_size(device)
        batches = (patches[i:i + size] for i in range(0, len(patches), size))
        feats = self._run_batches(model, device, batches)
        return feats.tolist(), remote_loaded

    def warm_model(self) -> tuple[Any, str, bool]:
        """(model, device, remote_loaded): the process-wide warm model for
        these data files' contents, built on first use."""
        device = warm.resolve_device()
        identity, remote_loaded = self.data_identity()
        key = (type(self).__module__, type(self).__qualname__, device,
               self.model_variant(device), identity)
        model = warm.get_or_build(key, lambda: self.build_model(device),
                                  label=type(self).__name__)
        return model, device, remote_loaded

    def data_identity(self) -> tuple[tuple[tuple[str, str], ...], bool]:
        """((key, sha256), ...) of every data file, and whether any was
        downloaded just now. Checks data_hashes."""
        identity, remote_loaded = [], False
        for key in sorted(self.data_locations):
            digest, downloaded = data_files.verified_digest(
                key, self.data_locations[key], self.data_hashes.get(key))
            identity.append((key, digest))
            remote_loaded = remote_loaded or downloaded
        return tuple(identity), remote_loaded

    def batch_size(self, device: str) -> int:
        configured = int(config.get('EXTRACT_BATCH_SIZE') or 0)
        if configured > 0:
            return configured
        return self.GPU_BATCH_SIZE if device.startswith('cuda') \
            else self.CPU_BATCH_SIZE

    def _features_of(self, model: Any, device: str, cropper: PatchCropper,
                     rowcols: Sequence[Sequence[int]]) -> np.ndarray:
        # Each distinct point is computed once: duplicates get identical
        # vectors (bit for bit) and cost nothing.
        unique, inverse = unique_points(rowcols)
        batches = cropper.batches(unique, self.batch_size(device))
        with config.log_entry_and_exit('forward pass through net'):
            feats = self._run_batches(model, device, batches)
        return feats[inverse]

    def _run_batches(self, model, device, batches) -> np.ndarray:
        if device.startswith('cuda'):
            # The CPU cuts the next batch while the GPU computes this one.
            batches = _one_ahead(batches)
        outputs = [np.asarray(self.compute_features(model, batch))
                   for batch in batches]
        return np.concatenate(outputs, axis=0) if outputs else \
            np.zeros((0, self.feature_dim), dtype=np.float32)

    # ---- data files ----------------------------------------------------

    def load_datastream(self, key: str) -> tuple[BytesIO, bool]:
        """
        The bytes of data file ``key`` and whether it was downloaded from
        remote storage just now. Remote files go through the cache in
        EXTRACTORS_CACHE_DIR; a sha256 different from data_hashes[key]
        raises HashMismatchError (and drops the cached copy).
        """
        return data_files.open_verified(
            key, self.data_locations[key], self.data_hashes.get(key))

    def load_data_into_filesystem(self, key: str) -> tuple[str, bool]:
        """A local path holding data file ``key`` (a remote or in-memory file
        is copied into EXTRACTORS_CACHE_DIR once), and whether it was
        downloaded from remote storage just now. Not hash-checked."""
        path, downloaded = cached_path(self.data_locations[key])
        return str(path), downloaded

    def data_filepath_for_cache(self, key: str) -> Path:
        """Where data file ``key`` is cached (ConfigError without
        EXTRACTORS_CACHE_DIR). Unlike pyspacer's, the name carries a digest
        of the whole location, so two files of the same name never collide."""
        return cached_file_path(self.data_locations[key])

    def decache_remote_loaded_file(self, key: str) -> None:
        """Drop the cached copy of remote data file ``key``, if any, so the
        next load downloads (and checks) it afresh."""
        loc = self.data_locations[key]
        if loc.is_remote:
            evict(loc)

    def _check_data_hash(self, data: bytes, key: str) -> None:
        """HashMismatchError if ``data`` is not what data_hashes[key] names."""
        data_files.check_digest(key, hashlib.sha256(data).hexdigest(),
                                self.data_hashes.get(key))

    # ---- serialization -------------------------------------------------

    @classmethod
    def class_path(cls) -> str:
        """The dotted path this class serializes as."""
        return f'{cls.__module__}.{cls.__name__}'

    def serialize(self) -> dict:
        return dict(
            class_path=self.class_path(),
            data_locations={
                key: loc.serialize()
                for key, loc in self.data_locations.items()
            },
            data_hashes=dict(self.data_hashes),
        )

    def __repr__(self):
        return str(self.serialize())

    def __eq__(self, other):
        if not isinstance(other, FeatureExtractor):
            return NotImplemented
        return self.serialize() == other.serialize()

    def __hash__(self):
        return hash(self.class_path())


def _one_ahead(items: Iterator) -> Iterator:
    """Yield from ``items`` while a thread already produces the next one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        items = iter(items)
        pending = pool.submit(next, items, _DONE)
        while True:
            item = pending.result()
            if item is _DONE:
                return
            pending = pool.submit(next, items, _DONE)
            yield item


_DONE = object()

_SHA256_HEX = frozenset('0123456789abcdef')


def _data_locations(value: Any, owner: str) -> dict[str, DataLocation]:
    """data_locations as {key: DataLocation}, from DataLocations or their
    serialized dicts."""
    if not isinstance(value, dict):
        raise MessageError(
            f"{owner}: data_locations must be an object of key ->"
            f" DataLocation, got {type(value).__name__}.")
    locations = {}
    for key, loc in value.items():
        if not isinstance(key, str):
            raise MessageError(
                f"{owner}: data_locations keys must be strings, got {key!r}.")
        if isinstance(loc, DataLocation):
            locations[key] = loc
            continue
        try:
            locations[key] = DataLocation.deserialize(loc)
        except MessageError as e:
            raise MessageError(f"{owner}: data_locations[{key!r}]: {e}") from e
    return locations


def _data_hashes(value: Any, locations: dict[str, DataLocation],
                 owner: str) -> dict[str, str]:
    """data_hashes as given, once known to be {key: sha256 hex}. As in
    pyspacer, a file is checked when its key has a hash (compared exactly, so
    '' or upper case never match) and a hash without a file is unused."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError(
            f"{owner}: data_hashes must be an object of key -> sha256 hex"
            f" digest, got {type(value).__name__}.")
    for key, digest in value.items():
        if not isinstance(digest, str) or (digest and not (
                len(digest) == 64 and set(digest.lower()) <= _SHA256_HEX)):
            raise MessageError(
                f"{owner}: data_hashes[{key!r}] must be a sha256 hex digest"
                f" (64 hex characters), got {digest!r}.")
        if key not in locations:
            logger.warning("%s: data_hashes key %r names no data_locations entry"
                           " (have %s); it checks nothing.", owner, key, sorted(locations))
    return dict(value)


# Real extractors give 1280 or 4096 values; far more is a typo whose
# features (points x feature_dim float64) would not fit in memory.
MAX_FEATURE_DIM = 100_000


class DummyExtractor(FeatureExtractor):
    """Random features of the right shape; no data files, no network."""

    def __init__(self,
                 data_locations: dict[str, DataLocation] | None = None,
                 feature_dim: int = 4096,
                 **kwargs):
        super().__init__(
            {} if data_locations is None else data_locations, **kwargs)
        # Match the feature_dim of any classifier these features will meet.
        if isinstance(feature_dim, bool) or not isinstance(
                feature_dim, (int, np.integer)) \
                or not 1 <= feature_dim <= MAX_FEATURE_DIM:
            raise MessageError(
                f"DummyExtractor: feature_dim must be an integer from 1 to"
                f" {MAX_FEATURE_DIM}, not {feature_dim!r}.")
        self._feature_dim = int(feature_dim)

    @classmethod
    def class_path(cls) -> str:
        # pyspacer's module for this class; serialized messages must match.
        return 'spacer.extractors.base.DummyExtractor'

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    def __call__(self, im, rowcols: Sequence[Sequence[int]]) \
            -> tuple[ImageFeatures, ExtractFeaturesReturnMsg]:
        start_time = time.time()
        rows, cols = split_rowcols(rowcols)
        feats = np.random.random((len(rows), self.feature_dim))
        features = ImageFeatures.from_arrays(
            rows, cols, feats, valid_rowcol=True)
        return features, ExtractFeaturesReturnMsg(
            extractor_loaded_remotely=False,
            runtime=time.time() - start_time)

    def serialize(self) -> dict:
        data = super().serialize()
        data['feature_dim'] = self.feature_dim
        return data
