"""Settings, read the way pyspacer reads them.

Each setting NAME comes from the environment variable ``SPACER_NAME``, else
from ``secrets.json`` beside the package, else from Django's
``settings.SPACER[NAME]``; an empty string counts as unset. Values are read
once at import (as pyspacer does) and exposed as module constants;
``reload()`` re-reads them, e.g. after a test changes the environment.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import warnings
from contextlib import ContextDecorator
from dataclasses import dataclass
from logging import basicConfig, getLevelName, getLogger
from pathlib import Path
from typing import Any

from PIL import Image, ImageFile

from spacer.exceptions import ConfigError
from spacer.task_table import TASK_NAMES

logger = getLogger(__name__)

APP_DIR = Path(__file__).resolve().parent
REPO_DIR = APP_DIR.parent
SECRETS_PATH = REPO_DIR / 'secrets.json'
# The project's own test fixtures (pyspacer kept them in the package).
LOCAL_FIXTURE_DIR = str(REPO_DIR / 'tests' / 'fixtures')
# Caffe is never needed (the VGG16 weights run in torch), but pyspacer's
# callers branch on whether it is installed.
HAS_CAFFE = importlib.util.find_spec('caffe') is not None


def filter_warnings() -> None:
    """Silence the ResourceWarnings boto3 raises for sockets and files it
    leaves to the garbage collector (boto/boto3#454); they are noise."""
    for leaked in ('<ssl.SSLSocket.*>', '<_io.TextIOWrapper.*>'):
        warnings.filterwarnings('ignore', category=ResourceWarning,
                                message=f'unclosed.*{leaked}')


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    secret: bool = False
    # Bounds of an int setting: a value outside them is refused when read,
    # rather than failing later with a message that names something else.
    minimum: int | None = None
    maximum: int | None = None


SETTINGS: tuple[Setting, ...] = (
    # pyspacer's own settings.
    Setting('AWS_ACCESS_KEY_ID', str, None, 'S3 access key id', secret=True),
    Setting('AWS_SECRET_ACCESS_KEY', str, None, 'S3 secret key', secret=True),
    Setting('AWS_SESSION_TOKEN', str, None, 'S3 session token', secret=True),
    Setting('AWS_PROFILE_NAME', str, None, 'AWS profile to take credentials from'),
    Setting('AWS_ANONYMOUS', bool, False, 'access S3 without credentials (public buckets)'),
    Setting('AWS_REGION', str, None, 'S3 region'),
    Setting('EXTRACTORS_CACHE_DIR', str, None,
            'folder where remote extractor files (weights) are cached'),
    Setting('TEST_BUCKET', str, None, 'S3 bucket that tests may write to'),
    Setting('CN_TEST_EXTRACTORS_BUCKET', str, None,
            "CoralNet's private S3 bucket of extractor weights for tests"),
    Setting('CN_FIXTURES_BUCKET', str, None, "CoralNet's private S3 bucket of test fixtures"),
    Setting('LOG_DESTINATION', str, None, "'console' or a log file path"),
    Setting('LOG_LEVEL', str, 'INFO', 'log level used with LOG_DESTINATION'),
    Setting('MAX_IMAGE_PIXELS', int, 10000 * 10000, 'largest image accepted (pixels)',
            minimum=1),
    Setting('MAX_POINTS_PER_IMAGE', int, 1000, 'most points accepted per image', minimum=1),
    Setting('TRAINING_BATCH_LABEL_COUNT', int, 5000,
            'labels per training batch; also caps the reference set', minimum=1),
    Setting('TRAINING_IN_MEMORY_MB', int, 2048,
            'training sets larger than this are memory-mapped from a temporary file',
            minimum=0),
    Setting('TRAINING_TORCH_THREADS', int, 1, 'torch threads used to train the MLP',
            minimum=1),
    # What a distributed deployment adds, producers and workers alike (the
    # settings only workers read are in workers.settings).
    Setting('S3_ENDPOINT_URL', str, None,
            'endpoint of an S3-compatible store (MinIO, moto); unset = AWS'),
    Setting('BROKER_URL', str, None,
            'Celery broker (redis://..., amqp://...); unset = embedded in-process worker'),
    Setting('RESULT_BACKEND', str, None,
            'Celery result backend; unset = the broker URL when it is Redis'),
    Setting('QUEUE_EXTRACT', str, 'extract', 'queue of extract_features and classify_image'),
    Setting('QUEUE_TRAIN', str, 'train', 'queue of train_classifier'),
    Setting('QUEUE_CLASSIFY', str, 'classify', 'queue of classify_features'),
    Setting('DEVICE', str, 'auto', "torch device for extraction: auto, cpu, cuda, cuda:N"),
    Setting('BROKER_CONNECT_TIMEOUT', int, 5,
            'seconds a producer or worker waits to connect to Redis before giving up',
            minimum=1, maximum=60),
    Setting('SIGNING_KEY', str, None,
            'PEM private key (RSA) this process signs task messages with; with SIGNING_CERT'
            ' and SIGNING_CERT_STORE it turns signed messages on (unset = plain JSON)'),
    Setting('SIGNING_CERT', str, None, 'PEM certificate of SIGNING_KEY'),
    Setting('SIGNING_CERT_STORE', str, None,
            'folder (or glob) of the PEM certificates whose signed messages are trusted'),
    Setting('EXTRACT_ENGINE', str, 'auto',
            "CPU inference engine: auto (ONNX Runtime when installed), torch, onnxruntime"),
    Setting('JPEG_DECODER', str, 'pillow',
            "how GPU extraction decodes JPEGs: pillow (pixels exactly as pyspacer's)"
            " or nvjpeg (on the GPU, needs torchvision; pixels may differ by rounding)"),
    Setting('EXTRACT_BATCH_SIZE', int, 0,
            'patches per forward pass; 0 = chosen per device', minimum=0),
    Setting('URL_TIMEOUT', int, 20, 'seconds before a URL download gives up', minimum=1),
    Setting('URL_DEADLINE', int, 300,
            'seconds a URL download may take in all, however the server trickles', minimum=1),
    Setting('URL_MAX_BYTES', int, 512 * 1024 * 1024,
            'largest body a URL download accepts (it arrives in a temporary file)', minimum=1),
    Setting('URL_BLOCK_PRIVATE', bool, False,
            'URL downloads refuse loopback, private, link-local, shared, multicast and reserved'
            ' addresses (cloud metadata ones always); unset = on in `spacer worker`, off in'
            ' library calls'),
    Setting('URL_ALLOWED_NETWORKS', str, None,
            'comma-separated addresses or CIDR networks URL downloads may reach even so'
            ' (e.g. an internal image server: 10.1.2.3,10.8.0.0/16)'),
    Setting('CLASSIFIER_CACHE_SIZE', int, 8, 'loaded classifiers kept per process', minimum=1),
    Setting('EXTRACTOR_CACHE_SIZE', int, 2, 'loaded networks kept per process', minimum=1),
    Setting('ALLOW_TRUNCATED_IMAGES', bool, False,
            'decode JPEGs missing their last bytes (pyspacer did) instead of failing'),
    Setting('EXTRA_CLASS_PATHS', str, None,
            'comma-separated extra extractor/trainer class paths messages may name'),
    Setting('FILESYSTEM_ROOTS', str, None,
            'absolute folders (separated by os.pathsep) that filesystem locations may'
            ' read and write; unset = any path (library use; `spacer worker` then needs'
            ' --unconfined)'),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def _is_set(value: Any) -> bool:
    return value not in ('', None)


def _cast(setting: Setting, value: Any, source: str = '') -> Any:
    """``value`` as the setting's type; ConfigError naming the setting and
    ``source`` (where the value came from) when it is not one."""
    where = f" (from {source})" if source else ''
    if setting.type is bool:
        if isinstance(value, bool):
            return value
        if value in ('True', 'true', '1'):
            return True
        if value in ('False', 'false', '0'):
            return False
        raise ConfigError(
            f"{setting.name} may only be True or False, not {value!r}{where}.")
    if setting.type is int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{setting.name} must be an integer, not {value!r}{where}.") from None
        _check_bounds(setting, number, where)
        return number
    return value


def _check_bounds(setting: Setting, number: int, where: str) -> None:
    low, high = setting.minimum, setting.maximum
    if low is not None and number < low:
        wanted = {0: 'must not be negative', 1: 'must be positive'}.get(
            low, f'must be at least {low}')
        raise ConfigError(f"{setting.name} {wanted}, not {number}{where}.")
    if high is not None and number > high:
        raise ConfigError(f"{setting.name} must be at most {high}, not {number}{where}.")


def _read_secrets() -> dict | None:
    if not SECRETS_PATH.exists():
        return None
    try:
        with open(SECRETS_PATH) as fp:
            data = json.load(fp)
    except (OSError, ValueError) as e:
        raise ConfigError(f"Could not read {SECRETS_PATH}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{SECRETS_PATH} must hold a JSON object.")
    return data


def django_settings() -> Any:
    """Django's settings object when this process uses Django and its
    settings are configured, else None."""
    if 'django' not in sys.modules and not os.getenv('DJANGO_SETTINGS_MODULE'):
        return None
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:
        return None
    try:
        settings.INSTALLED_APPS  # noqa: B018 (reading a setting loads them)
    except ImproperlyConfigured:
        return None
    return settings


def _read_django() -> dict | None:
    settings = django_settings()
    return getattr(settings, 'SPACER', None) if settings is not None else None


# The two setting sources besides the environment, as last read (reload).
SECRETS: dict | None = None
SETTINGS_FROM_DJANGO: dict | None = None


def get_config_detection_result() -> str:
    """Which setting sources were found, for debug output and errors."""
    return (("Secrets file found." if SECRETS else "Secrets file not found.")
            + (" SPACER Django setting found." if SETTINGS_FROM_DJANGO
               else " SPACER Django setting not found."))


def _lookup(key: str) -> tuple[Any, str]:
    """The raw value of ``key`` and where it came from (for error messages);
    (None, '') when no source sets it."""
    value = os.getenv('SPACER_' + key)
    if _is_set(value):
        return value, f'environment variable SPACER_{key}'
    for source, where in ((SECRETS, str(SECRETS_PATH)),
                          (SETTINGS_FROM_DJANGO, f"Django settings.SPACER['{key}']")):
        if source:
            value = source.get(key)
            if _is_set(value):
                return value, where
            break  # pyspacer reads only the first source that exists
    return None, ''


def get_config_value(key: str, value_type: type = str, default: Any = 'NO_DEFAULT') -> Any:
    """pyspacer's lookup: environment, then secrets.json, then Django settings.
    A setting of the table is held to its bounds whoever reads it."""
    setting = SETTINGS_BY_NAME.get(key)
    if setting is None or setting.type is not value_type:
        setting = Setting(key, value_type, default, '')
    value, where = _lookup(key)
    if _is_set(value):
        return _cast(setting, value, where)
    if default == 'NO_DEFAULT':
        raise ConfigError(f"{key} setting is required. (Debug info: {get_config_detection_result()})")
    return default


def read_setting(setting: Setting) -> Any:
    """A setting declared outside this table (the worker layer keeps its own,
    ``workers.settings``), read from the same sources, held to its bounds and
    re-read on every call."""
    value, where = _lookup(setting.name)
    return _cast(setting, value, where) if _is_set(value) else setting.default


def get(name: str) -> Any:
    """The current value of a setting (module constant, so tests may patch it)."""
    if name not in SETTINGS_BY_NAME:
        raise ConfigError(f"Unknown setting {name!r}.")
    return getattr(sys.modules[__name__], name)


def reload() -> None:
    """Re-read every setting from its sources."""
    global SECRETS, SETTINGS_FROM_DJANGO
    SECRETS = _read_secrets()
    SETTINGS_FROM_DJANGO = _read_django()
    module = sys.modules[__name__]
    for setting in SETTINGS:
        setattr(module, setting.name,
                get_config_value(setting.name, setting.type, setting.default))
    Image.MAX_IMAGE_PIXELS = module.MAX_IMAGE_PIXELS + 20000
    ImageFile.LOAD_TRUNCATED_IMAGES = module.ALLOW_TRUNCATED_IMAGES


def _log_level(name: str) -> int:
    """The logging level called ``name`` (any case); ConfigError otherwise."""
    # getLevelName maps a level's name to its number (Python 3.10 has no
    # getLevelNamesMapping); anything else comes back as a string.
    level = getLevelName(str(name).upper())
    if not isinstance(level, int):
        where = _lookup('LOG_LEVEL')[1]
        raise ConfigError(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {name!r}"
            + (f" (from {where})." if where else "."))
    return level


def _configure_logging(destination: str | None, level_name: str) -> None:
    """pyspacer's logging setup, with errors that name the setting at fault
    (logging's own name neither the setting nor where it was set)."""
    if not destination:  # as in pyspacer, LOG_LEVEL alone changes nothing
        return
    level = _log_level(level_name)
    filename = None if destination == 'console' else destination
    try:
        basicConfig(level=level, filename=filename,
                    format='%(asctime)s - %(levelname)s:%(name)s\n%(message)s')
    except OSError as e:
        where = _lookup('LOG_DESTINATION')[1]
        raise ConfigError(
            f"LOG_DESTINATION {destination!r} cannot be opened for logging: "
            f"{e.strerror or e}" + (f" (from {where})." if where else ".")) from e


reload()
_configure_logging(LOG_DESTINATION, LOG_LEVEL)  # noqa: F821 (set by reload)

TASKS = list(TASK_NAMES)
CLASSIFIER_TYPES = ['LR', 'MLP']
TRAINER_NAMES = ['minibatch']
STORAGE_TYPES = ['s3', 'filesystem', 'memory', 'url']
CONFIGURABLE_VARS = [s.name for s in SETTINGS]


class log_entry_and_exit(ContextDecorator):
    """Debug-logs how long a block took."""

    def __init__(self, name: str):
        self.name = name
        self.start_time = 0.0

    def __enter__(self):
        self.start_time = time.time()
        logger.debug('Entering: %s', self.name)

    def __exit__(self, exc_type, exc, exc_tb):
        logger.debug('Exiting: %s after %f seconds.', self.name, time.time() - self.start_time)


def display_value(setting: Setting, value: Any) -> str:
    if value and setting.secret:
        text = str(value)
        return f'{text[:4]}...' if len(text) > 8 else '****'
    return str(value)


def check() -> None:
    """Print every setting and where the configuration came from."""
    print(get_config_detection_result())
    for setting in SETTINGS:
        print(f"{setting.name}: {display_value(setting, get(setting.name))}")
