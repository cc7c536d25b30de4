"""Allow-list of the classes a message may name by ``class_path``.

Messages cross a network; importing whatever module a message names would let
any producer run code on a worker. Only built-in classes, their historical
paths, and classes an operator registers (``register`` or the
``EXTRA_CLASS_PATHS`` setting) resolve.
"""
from __future__ import annotations

import importlib.util
import sys
from importlib import import_module

from spacer import config
from spacer.exceptions import (
    ClassModuleNotFoundError, ClassNotFoundError, ClassPathError, ClassPathRefusedError,
    WrongClassError)

# class path a message may carry -> where the class lives now.
_BUILTIN: dict[str, str] = {
    'spacer.extractors.efficientnet.EfficientNetExtractor':
        'spacer.extractors.efficientnet.EfficientNetExtractor',
    'spacer.extractors.vgg16.VGG16CaffeExtractor':
        'spacer.extractors.vgg16.VGG16CaffeExtractor',
    'spacer.extractors.base.DummyExtractor': 'spacer.extractors.base.DummyExtractor',
    'spacer.extractors.dummy.DummyExtractor': 'spacer.extractors.base.DummyExtractor',
    'spacer.extractors.DummyExtractor': 'spacer.extractors.base.DummyExtractor',
    'spacer.extractors.EfficientNetExtractor':
        'spacer.extractors.efficientnet.EfficientNetExtractor',
    'spacer.extractors.VGG16CaffeExtractor': 'spacer.extractors.vgg16.VGG16CaffeExtractor',
    # Paths of pyspacer 0.6-0.10, when the classes lived in one module.
    'spacer.extract_features.EfficientNetExtractor':
        'spacer.extractors.efficientnet.EfficientNetExtractor',
    'spacer.extract_features.VGG16CaffeExtractor':
        'spacer.extractors.vgg16.VGG16CaffeExtractor',
    'spacer.extract_features.DummyExtractor': 'spacer.extractors.base.DummyExtractor',
    'spacer.train_classifier.MiniBatchTrainer': 'spacer.train_classifier.MiniBatchTrainer',
}
# Classes operators registered (spacer.process_state lists it).
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
        module = import_module(module_path)
    except ImportError as e:
        raise ClassModuleNotFoundError(
            f"Class path {path!r} could not be imported: {e}") from e
    try:
        return getattr(module, name)
    except AttributeError as e:
        raise ClassNotFoundError(f"Class path {path!r} could not be imported: {e}") from e


def _module_exists(module_path: str) -> bool | None:
    """Whether a module exists, found without running any code that is not
    running already: True, False, or None when only importing a package
    would tell."""
    parts = module_path.split('.')
    for end in range(1, len(parts) + 1):
        name = '.'.join(parts[:end])
        if name in sys.modules:
            continue
        if end > 1 and '.'.join(parts[:end - 1]) not in sys.modules:
            return None  # its package is not imported; finding it would import it
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
        return None if end < len(parts) else True
    return True


def _kind(base: type) -> str:
    """How errors name the kind of class wanted: an interface gives the name
    of the base class users know (FeatureExtractor, ClassifierTrainer)."""
    return getattr(base, 'registry_name', base.__name__)


def _refuse(class_path: str, base: type | None) -> ClassPathError:
    """The error for a path off the allow-list, of the type pyspacer's own
    import would have raised where that is known without running new code
    (a missing module, a missing class in a loaded module, a non-class)."""
    allowed = (f"Allowed: built-in spacer classes, classes registered with"
               f" spacer.class_registry.register, and those listed in"
               f" SPACER_EXTRA_CLASS_PATHS.")
    module_path, _, name = class_path.rpartition('.')
    if not module_path or not name or _module_exists(module_path) is False:
        return ClassModuleNotFoundError(
            f"Class path {class_path!r} is not allowed: no module named"
            f" {module_path or class_path!r}. {allowed}")
    module = sys.modules.get(module_path)
    if module is None and module_path.split('.')[0] == 'spacer':
        try:
            module = import_module(module_path)  # our own package: safe to import
        except ImportError as e:
            return ClassModuleNotFoundError(
                f"Class path {class_path!r} is not allowed: {e}. {allowed}")
    if module is not None:
        if not hasattr(module, name):
            return ClassNotFoundError(
                f"Class path {class_path!r} is not allowed: module {module_path!r}"
                f" has no {name!r}. {allowed}")
        target = getattr(module, name)
        if base is not None and not (isinstance(target, type) and issubclass(target, base)):
            return WrongClassError(f"Class path {class_path!r} is not allowed: it does"
                                   f" not name a {_kind(base)}. {allowed}")
    return ClassPathRefusedError(f"Class path {class_path!r} is not allowed. {allowed}")


def resolve(class_path: object, base: type | None = None) -> type:
    """The class a message names, if allowed; otherwise a ClassPathError that
    is also of the built-in type pyspacer raised for that case."""
    if not isinstance(class_path, str):
        raise WrongClassError(f"class_path must be a string, not {class_path!r}.")
    if class_path in _registered:
        cls = _registered[class_path]
    elif class_path in _BUILTIN:
        cls = _import(_BUILTIN[class_path])
    elif class_path in _extra_paths():
        cls = _import(class_path)
    else:
        raise _refuse(class_path, base)
    if base is not None and not (isinstance(cls, type) and issubclass(cls, base)):
        raise WrongClassError(
            f"Class path {class_path!r} does not name a {_kind(base)}.")
    return cls
