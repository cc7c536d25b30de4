"""Allow-list of the classes a message may name by ``class_path``.

Messages cross a network; importing whatever module a message names would let
any producer run code on a worker. Only built-in classes, their historical
paths, and classes an operator registers (``register`` or the
``EXTRA_CLASS_PATHS`` setting) resolve.
"""
from __future__ import annotations

from importlib import import_module

from spacer import config
from spacer.exceptions import ClassPathError

# class path a message may carry -> where the class lives now.
_BUILTIN: dict[str, str] = {
    'spacer.extractors.efficientnet.EfficientNetExtractor':
        'spacer.extractors.efficientnet.EfficientNetExtractor',
    'spacer.extractors.vgg16.VGG16CaffeExtractor':
        'spacer.extractors.vgg16.VGG16CaffeExtractor',
    'spacer.extractors.base.DummyExtractor': 'spacer.extractors.dummy.DummyExtractor',
    'spacer.extractors.dummy.DummyExtractor': 'spacer.extractors.dummy.DummyExtractor',
    'spacer.extractors.DummyExtractor': 'spacer.extractors.dummy.DummyExtractor',
    'spacer.extractors.EfficientNetExtractor':
        'spacer.extractors.efficientnet.EfficientNetExtractor',
    'spacer.extractors.VGG16CaffeExtractor': 'spacer.extractors.vgg16.VGG16CaffeExtractor',
    # Paths of pyspacer 0.6-0.10, when the classes lived in one module.
    'spacer.extract_features.EfficientNetExtractor':
        'spacer.extractors.efficientnet.EfficientNetExtractor',
    'spacer.extract_features.VGG16CaffeExtractor':
        'spacer.extractors.vgg16.VGG16CaffeExtractor',
    'spacer.extract_features.DummyExtractor': 'spacer.extractors.dummy.DummyExtractor',
    'spacer.train_classifier.MiniBatchTrainer': 'spacer.train_classifier.MiniBatchTrainer',
}
_registered: dict[str, type] = {}


def register(cls: type, class_path: str | None = None) -> type:
    """Allow messages to name ``cls``; usable as a class decorator."""
    path = class_path or f'{cls.__module__}.{cls.__qualname__}'
    _registered[path] = cls
    return cls


def _extra_paths() -> set[str]:
    extra = config.get('EXTRA_CLASS_PATHS') or ''
    return {p.strip() for p in extra.split(',') if p.strip()}


def _import(path: str) -> type:
    module_path, _, name = path.rpartition('.')
    try:
        return getattr(import_module(module_path), name)
    except (ImportError, AttributeError) as e:
        raise ClassPathError(f"Class path {path!r} could not be imported: {e}") from e


def resolve(class_path: object, base: type | None = None) -> type:
    """The class a message names, if allowed; ClassPathError otherwise."""
    if not isinstance(class_path, str):
        raise ClassPathError(f"class_path must be a string, not {class_path!r}.")
    if class_path in _registered:
        cls = _registered[class_path]
    elif class_path in _BUILTIN:
        cls = _import(_BUILTIN[class_path])
    elif class_path in _extra_paths():
        cls = _import(class_path)
    else:
        raise ClassPathError(
            f"Class path {class_path!r} is not allowed. Allowed: built-in spacer "
            f"classes, classes registered with spacer.class_registry.register, "
            f"and those listed in SPACER_EXTRA_CLASS_PATHS.")
    if base is not None and not (isinstance(cls, type) and issubclass(cls, base)):
        raise ClassPathError(
            f"Class path {class_path!r} does not name a {base.__name__}.")
    return cls
