"""Reading and writing classifier files without letting them run code.

A classifier file is a pickle, and a pickle may name any importable callable
(``os.system`` included) to be called while it loads. Classifiers reach the
workers from storage that many parties can write to, so ``loads_classifier``
accepts only an allow-list of globals: the scikit-learn classes a calibrated
MLP or SGD classifier is made of, numpy's array/scalar/random-state
reconstructors, and the two harmless helpers Python's own pickle protocols
use. Every other global is refused with ``ClassifierLoadError`` naming it,
before anything is called.

The allow-list is keyed by class *name* within a module family (``sklearn.*``
or numpy's core modules) and always answers with the class where it lives in
the installed library, so the module paths of older scikit-learn releases
(0.17.1, 0.22.1, 1.1.3, 1.5.2: what pyspacer has written) load too. After
loading, attributes renamed since those releases are brought up to date
(``upgrade_classifier``).
"""
from __future__ import annotations

import io
import pickle
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.calibration import (
    CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration)
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._stochastic_optimizers import (
    AdamOptimizer, SGDOptimizer)
from sklearn.preprocessing import LabelBinarizer, LabelEncoder

from spacer.exceptions import ClassifierLoadError

# Protocol 2, as pyspacer writes: readable by every Python 3 and by the
# unpicklers of pyspacer and CoralNet.
PICKLE_PROTOCOL = 2


class LegacySGDLoss:
    """Stands in for the Cython loss objects (``sgd_fast.Log`` and kin) that
    scikit-learn < 1.6 pickled into ``SGDClassifier.loss_function_``.

    Current scikit-learn has no such classes and never reads that attribute
    for prediction; ``upgrade_classifier`` removes the stand-in again.
    """

    def __init__(self, *args):
        self.args = args


def _sklearn_classes() -> dict[str, Callable]:
    classes: list[type] = [
        CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration,
        IsotonicRegression, SGDClassifier, MLPClassifier, AdamOptimizer,
        SGDOptimizer, LabelBinarizer, LabelEncoder,
    ]
    try:  # scikit-learn >= 1.6: calibrating a prefit estimator wraps it.
        from sklearn.frozen import FrozenEstimator
        classes.append(FrozenEstimator)
    except ImportError:  # pragma: no cover - older scikit-learn
        pass
    return {cls.__name__: cls for cls in classes}


def _legacy_random_state(*_args) -> np.random.RandomState:
    """numpy 1.x's ``__RandomState_ctor``: the state follows via BUILD."""
    return np.random.RandomState()


def _numpy_globals() -> dict[tuple[str, str], Callable]:
    from numpy.random import _pickle as random_pickle
    from numpy.random import MT19937, SeedSequence
    from numpy.random import bit_generator

    try:  # numpy >= 2 renamed numpy.core to numpy._core.
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray

    found: dict[tuple[str, str], Callable] = {}
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        found[(module, '_reconstruct')] = multiarray._reconstruct
        found[(module, 'scalar')] = multiarray.scalar
    found[('numpy', 'ndarray')] = np.ndarray
    found[('numpy', 'dtype')] = np.dtype
    found[('numpy.random._pickle', '__randomstate_ctor')] = \
        random_pickle.__randomstate_ctor
    found[('numpy.random._pickle', '__bit_generator_ctor')] = \
        random_pickle.__bit_generator_ctor
    found[('numpy.random._mt19937', 'MT19937')] = MT19937
    # numpy >= 2.4 pickles a generator's SeedSequence with Cython's helper;
    # the helper only rebuilds an instance of the (allowed) class given.
    found[('numpy.random.bit_generator', 'SeedSequence')] = SeedSequence
    unpickle_seed_sequence = getattr(
        bit_generator, '__pyx_unpickle_SeedSequence', None)
    if unpickle_seed_sequence is not None:
        found[('numpy.random.bit_generator',
               '__pyx_unpickle_SeedSequence')] = unpickle_seed_sequence
    for module in ('numpy.random', 'numpy.random.mtrand'):
        found[(module, '__RandomState_ctor')] = _legacy_random_state
    return found


def _python_globals() -> dict[tuple[str, str], Callable]:
    import codecs
    import copyreg

    return {
        # Protocol 0/1 objects: object.__new__(cls) on an allowed class.
        ('copyreg', '_reconstructor'): copyreg._reconstructor,
        ('copy_reg', '_reconstructor'): copyreg._reconstructor,
        ('builtins', 'object'): object,
        ('__builtin__', 'object'): object,
        # Protocol 2 writes bytes as _codecs.encode(text, 'latin1').
        ('_codecs', 'encode'): codecs.encode,
    }


def _scipy_globals() -> dict[tuple[str, str], Callable]:
    """Sparse coefficient matrices (``SGDClassifier.sparsify()``)."""
    from scipy import sparse

    found: dict[tuple[str, str], Callable] = {}
    for module in ('scipy.sparse.csr', 'scipy.sparse._csr'):
        found[(module, 'csr_matrix')] = sparse.csr_matrix
        found[(module, 'csr_array')] = sparse.csr_array
    return found


_SGD_LOSS_MODULES = frozenset({
    'sklearn.linear_model.sgd_fast', 'sklearn.linear_model._sgd_fast'})
# Loss objects SGDClassifier keeps in loss_function_ (scikit-learn < 1.6) or
# _loss_function_ (later): Cython types that take only numbers.
_SGD_LOSS_NAMES = frozenset({
    'Log', 'Hinge', 'ModifiedHuber', 'SquaredHinge', 'SquaredLoss', 'Huber',
    'EpsilonInsensitive', 'SquaredEpsilonInsensitive'})
_CY_LOSS_NAMES = frozenset({'CyHalfBinomialLoss'})
_SKLEARN_CLASSES = _sklearn_classes()


def _current_sgd_loss(name: str) -> Callable:
    from sklearn.linear_model import _sgd_fast
    return getattr(_sgd_fast, name, LegacySGDLoss)

_EXACT_GLOBALS = {**_numpy_globals(), **_python_globals(), **_scipy_globals()}


def allowed_global(module: str, name: str) -> Callable:
    """The object an allowed pickle global stands for; refuse the rest."""
    if (module, name) in _EXACT_GLOBALS:
        return _EXACT_GLOBALS[(module, name)]
    if module in _SGD_LOSS_MODULES and name in _SGD_LOSS_NAMES:
        return _current_sgd_loss(name)
    if module == 'sklearn._loss._loss' and name in _CY_LOSS_NAMES:
        from sklearn._loss import _loss
        return getattr(_loss, name)
    if (module == 'sklearn' or module.startswith('sklearn.')) \
            and name in _SKLEARN_CLASSES:
        return _SKLEARN_CLASSES[name]
    raise ClassifierLoadError(
        f"Refused to load the classifier: it names the global "
        f"'{module}.{name}', which is not a scikit-learn, numpy or scipy "
        f"type a classifier is made of.")


class _AllowListUnpickler(pickle.Unpickler):

    def find_class(self, module: str, name: str):
        return allowed_global(module, name)


def _patch_estimator(estimator: object) -> None:
    if isinstance(estimator, SGDClassifier):
        # 'log' became 'log_loss' in scikit-learn 1.1 and was removed in 1.3.
        if estimator.loss == 'log':
            estimator.loss = 'log_loss'
        # loss_function_ / _loss_function_ of old releases: not used to
        # predict, and its stand-in must not be stored again.
        for name, value in list(vars(estimator).items()):
            if isinstance(value, LegacySGDLoss):
                delattr(estimator, name)


def upgrade_classifier(clf: CalibratedClassifierCV) -> CalibratedClassifierCV:
    """Bring attributes of older scikit-learn releases up to date."""
    # Added after 0.22.1; unused for a prefit estimator but read by repr().
    if not hasattr(clf, 'ensemble'):
        clf.ensemble = True
    if not hasattr(clf, 'n_jobs'):
        clf.n_jobs = None
    # base_estimator became estimator in scikit-learn 1.2.
    if not hasattr(clf, 'estimator'):
        clf.estimator = clf.__dict__.pop('base_estimator', None)
    _patch_estimator(clf.estimator)

    for calibrated in clf.calibrated_classifiers_:
        if not hasattr(calibrated, 'estimator'):
            calibrated.estimator = calibrated.__dict__.pop(
                'base_estimator', None)
        _patch_estimator(calibrated.estimator)
        # 0.17.1 had no `classes`; 0.22.1 set it to None.
        if getattr(calibrated, 'classes', None) is None:
            calibrated.classes = calibrated.classes_
        # `calibrators` replaced `calibrators_` by 0.24.
        if not hasattr(calibrated, 'calibrators'):
            calibrated.calibrators = calibrated.calibrators_
        if not hasattr(calibrated, 'method'):
            calibrated.method = 'sigmoid'
    return clf


def loads_classifier(data: bytes) -> CalibratedClassifierCV:
    """A fitted ``CalibratedClassifierCV`` from the bytes of a classifier file.

    Raises ``ClassifierLoadError`` for anything else: a refused global, bytes
    that are not a pickle, or a pickle of some other object.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"loads_classifier needs bytes, not {type(data).__name__}.")
    with warnings.catch_warnings():
        # scikit-learn warns on every pickle from another version; the
        # upgrade below is the answer to that warning.
        warnings.filterwarnings(
            'ignore', message=r'Trying to unpickle estimator')
        try:
            clf = _AllowListUnpickler(
                io.BytesIO(data), fix_imports=True, encoding='latin1').load()
        except ClassifierLoadError:
            raise
        except Exception as e:
            raise ClassifierLoadError(
                f"Not a classifier file: unpickling failed with "
                f"{type(e).__name__}: {e}") from e

    if not isinstance(clf, CalibratedClassifierCV):
        raise ClassifierLoadError(
            f"Not a classifier file: it holds a {type(clf).__name__}, "
            f"not a CalibratedClassifierCV.")
    if not hasattr(clf, 'calibrated_classifiers_'):
        raise ClassifierLoadError(
            "Not a usable classifier: the CalibratedClassifierCV in this "
            "file was never fitted.")
    try:
        return upgrade_classifier(clf)
    except AttributeError as e:
        raise ClassifierLoadError(
            f"Not a usable classifier: {type(e).__name__}: {e}") from e


def dumps_classifier(clf: CalibratedClassifierCV) -> bytes:
    """The bytes of a classifier file (a protocol-2 pickle, as pyspacer's)."""
    if not isinstance(clf, CalibratedClassifierCV):
        raise TypeError(
            f"Only a CalibratedClassifierCV can be stored, not a "
            f"{type(clf).__name__}.")
    if not hasattr(clf, 'calibrated_classifiers_'):
        raise ValueError("Only fitted classifiers can be stored.")
    return pickle.dumps(clf, protocol=PICKLE_PROTOCOL)
