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
(``upgrade_classifier``). Last, the parts are checked to fit together
(``validate_classifier``), so a damaged or crafted file fails here, naming
the broken part, instead of failing or giving NaN scores while it scores.
"""
from __future__ import annotations

import io
import pickle
import warnings
from collections.abc import Callable

import numpy as np

from spacer.exceptions import ClassifierLoadError
from spacer.content_free import describe, global_name, without_content
from spacer.extras import extra_imports

with extra_imports():
    from sklearn.calibration import (
        CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration)
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import SGDClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.neural_network._stochastic_optimizers import (
        AdamOptimizer, SGDOptimizer)
    from sklearn.preprocessing import LabelBinarizer, LabelEncoder

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
        f"Refused to load the classifier: it names "
        f"{global_name(module, name)}, which is not a scikit-learn, numpy or scipy "
        f"type a classifier is made of.")


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


class ClassifierUnpickler(pickle.Unpickler):
    """pyspacer's unpickler of classifier files, on the allow-list:
    ``load()`` returns a checked, upgraded ``CalibratedClassifierCV`` or
    raises ClassifierLoadError (a ValueError, as pyspacer's was)."""

    # Modules of scikit-learn 0.17-0.22 whose classes now live elsewhere: a
    # global the allow-list refuses under the old module is looked up again
    # under the new one (most are found by class name already).
    IMPORT_MAPPING = {
        'sklearn.linear_model.sgd_fast': 'sklearn.linear_model',
        'sklearn.linear_model.stochastic_gradient': 'sklearn.linear_model',
    }

    def find_class(self, module: str, name: str) -> Callable:
        try:
            return allowed_global(module, name)
        except ClassifierLoadError:
            if module not in self.IMPORT_MAPPING:
                raise
            return allowed_global(self.IMPORT_MAPPING[module], name)

    def load(self) -> CalibratedClassifierCV:
        return _checked(self.load_object())

    def load_object(self) -> object:
        """Whatever the pickle holds (allowed globals only), unchecked."""
        with warnings.catch_warnings():
            # scikit-learn warns on every pickle from another version; the
            # upgrade after loading is the answer to that warning.
            warnings.filterwarnings('ignore', message=r'Trying to unpickle estimator')
            try:
                return super().load()
            except ClassifierLoadError:
                raise
            except Exception as e:
                raise ClassifierLoadError(  # pickle's text quotes the bytes
                    f"Not a classifier file: unpickling failed with "
                    f"{describe(e)}.") from without_content(e)

    patch_estimator = staticmethod(_patch_estimator)


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


# --- Structure checks -------------------------------------------------------
# An allowed pickle can still hold a classifier whose parts do not fit
# together (no members, a layer of the wrong shape, an unknown activation).
# scikit-learn would fail on it only while scoring, with an error that does
# not say the file is at fault, or quietly return NaN or uniform scores.
# These checks run once per loaded file and cost a pass over the weights.

class _Malformed(Exception):
    """Internal: which part of the classifier is wrong, and how."""

    def __init__(self, part: str, problem: str):
        super().__init__(f"{part}: {problem}")


def _describe(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    if isinstance(value, (list, tuple)) and not value:
        return f"an empty {type(value).__name__}"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def _shown(value: object) -> str:
    """A value read from the file as an error may show it: a number (a size
    or a parameter) as itself, anything else (a string may be any bytes of
    the file) by its type only."""
    if _is_int(value) or isinstance(value, (float, np.floating)):
        return repr(value)
    return _describe(value)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) \
        and not isinstance(value, (bool, np.bool_))


def _check_array(value: object, part: str, ndim: int) -> np.ndarray:
    """A finite real array of ``ndim`` dimensions."""
    if not isinstance(value, np.ndarray) or value.ndim != ndim \
            or value.dtype.kind not in 'fiu':
        raise _Malformed(part, f"must be a {ndim}-D array of numbers, got"
                               f" {_describe(value)}")
    if not np.isfinite(value).all():
        raise _Malformed(part, "holds NaN or infinite values")
    return value


def _check_coef(value: object, part: str) -> tuple[int, int]:
    """A linear model's 2-D coefficients, dense or scipy sparse."""
    from scipy import sparse
    if sparse.issparse(value):
        if value.ndim != 2 or value.dtype.kind not in 'fiu':
            raise _Malformed(part, f"must be a 2-D matrix of numbers, got a"
                                   f" sparse {value.dtype} of shape"
                                   f" {value.shape}")
        _check_array(np.asarray(value.data), f"{part}.data", 1)
        return value.shape
    return _check_array(value, part, 2).shape


def _check_classes(value: object, part: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.ndim != 1 or not len(value):
        raise _Malformed(part, f"must be a non-empty 1-D array of class"
                               f" labels, got {_describe(value)}")
    try:
        distinct = len(np.unique(value))
    except TypeError:  # labels numpy cannot order (mixed types)
        raise _Malformed(part, "holds labels of mixed types") from None
    if distinct != len(value):
        raise _Malformed(part, "holds the same class more than once")
    return value


def _check_n_features(estimator: object, part: str | None, dim: int) -> None:
    value = getattr(estimator, 'n_features_in_', None)
    if value is not None and (not _is_int(value) or value != dim):
        raise _Malformed('n_features_in_' if part is None
                         else f"{part}.n_features_in_",
                         f"is {_shown(value)} but the weights take {dim} features")


def _mlp_activations() -> frozenset[str]:
    from sklearn.neural_network._base import ACTIVATIONS
    return frozenset(ACTIVATIONS)


def _check_mlp(mlp: MLPClassifier, part: str) -> tuple[int, int]:
    """(input dimension, output columns) of a fitted MLPClassifier."""
    coefs = getattr(mlp, 'coefs_', None)
    intercepts = getattr(mlp, 'intercepts_', None)
    if not isinstance(coefs, (list, tuple)) or not coefs:
        raise _Malformed(f"{part}.coefs_", f"must be a non-empty list of"
                                           f" weight arrays, got"
                                           f" {_describe(coefs)}")
    if not isinstance(intercepts, (list, tuple)) \
            or len(intercepts) != len(coefs):
        raise _Malformed(f"{part}.intercepts_", f"must be a list of"
                                                f" {len(coefs)} bias arrays,"
                                                f" got {_describe(intercepts)}")
    width = None
    for i, (weights, bias) in enumerate(zip(coefs, intercepts)):
        rows, cols = _check_array(weights, f"{part}.coefs_[{i}]", 2).shape
        if width is not None and rows != width:
            raise _Malformed(f"{part}.coefs_[{i}]",
                             f"takes {rows} inputs but the layer before"
                             f" gives {width}")
        if _check_array(bias, f"{part}.intercepts_[{i}]", 1).shape != (cols,):
            raise _Malformed(f"{part}.intercepts_[{i}]",
                             f"has {len(bias)} values for {cols} units")
        width = cols
    layers = getattr(mlp, 'n_layers_', None)
    if not _is_int(layers) or layers != len(coefs) + 1:
        raise _Malformed(f"{part}.n_layers_",
                         f"is {_shown(layers)}; the weights make {len(coefs) + 1}")
    outputs = getattr(mlp, 'n_outputs_', None)
    if not _is_int(outputs) or outputs != width:
        raise _Malformed(f"{part}.n_outputs_",
                         f"is {_shown(outputs)}; the last layer gives {width}")
    known = _mlp_activations()
    for name in ('activation', 'out_activation_'):
        value = getattr(mlp, name, None)
        if not isinstance(value, str) or value not in known:
            raise _Malformed(f"{part}.{name}",
                             f"is {_shown(value)}, not one of {sorted(known)}")
    dim = coefs[0].shape[0]
    _check_n_features(mlp, part, dim)
    return dim, int(outputs)


def _check_linear(model: SGDClassifier, part: str) -> tuple[int, int]:
    """(input dimension, output columns) of a fitted linear classifier."""
    rows, dim = _check_coef(getattr(model, 'coef_', None), f"{part}.coef_")
    intercept = _check_array(getattr(model, 'intercept_', None),
                             f"{part}.intercept_", 1)
    if intercept.shape != (rows,):
        raise _Malformed(f"{part}.intercept_",
                         f"has {len(intercept)} values for {rows} rows of"
                         f" coef_")
    _check_n_features(model, part, dim)
    return dim, rows


def _check_estimator(estimator: object, part: str) \
        -> tuple[int, int, np.ndarray]:
    """(input dimension, output columns, classes) of a member's estimator."""
    frozen = _SKLEARN_CLASSES.get('FrozenEstimator')
    if frozen is not None and isinstance(estimator, frozen):
        estimator, part = getattr(estimator, 'estimator', None), \
            f"{part}.estimator"
    if isinstance(estimator, MLPClassifier):
        dim, outputs = _check_mlp(estimator, part)
    elif isinstance(estimator, SGDClassifier):
        dim, outputs = _check_linear(estimator, part)
    else:
        raise _Malformed(part, f"must be a fitted MLPClassifier or"
                               f" SGDClassifier, got {_describe(estimator)}")
    classes = _check_classes(getattr(estimator, 'classes_', None),
                             f"{part}.classes_")
    # Two classes: one response column (the second class); else one each.
    expected = 1 if len(classes) == 2 else len(classes)
    if outputs != expected:
        raise _Malformed(part, f"gives {outputs} output columns for"
                               f" {len(classes)} classes (expected"
                               f" {expected})")
    return dim, outputs, classes


def _check_finite_scalar(value: object, part: str) -> None:
    number = np.asarray(value) if isinstance(
        value, (int, float, np.number, np.ndarray)) else None
    if number is None or number.ndim != 0 or number.dtype.kind not in 'fiu' \
            or not np.isfinite(number):
        raise _Malformed(part, f"must be a finite number, got {_shown(value)}")


def _check_calibrator(calibrator: object, method: str, part: str) -> None:
    if method == 'sigmoid':
        if not isinstance(calibrator, _SigmoidCalibration):
            raise _Malformed(part, f"must be a sigmoid calibration, got"
                                   f" {_describe(calibrator)}")
        _check_finite_scalar(getattr(calibrator, 'a_', None), f"{part}.a_")
        _check_finite_scalar(getattr(calibrator, 'b_', None), f"{part}.b_")
        return
    if not isinstance(calibrator, IsotonicRegression):
        raise _Malformed(part, f"must be an isotonic regression, got"
                               f" {_describe(calibrator)}")
    x = _check_array(getattr(calibrator, 'X_thresholds_', None),
                     f"{part}.X_thresholds_", 1)
    y = _check_array(getattr(calibrator, 'y_thresholds_', None),
                     f"{part}.y_thresholds_", 1)
    if not len(x) or x.shape != y.shape:
        raise _Malformed(part, f"has {len(x)} x and {len(y)} y thresholds")
    if not callable(getattr(calibrator, 'f_', None)):
        raise _Malformed(part, "was never fitted")


def _check_member(member: object, classes: np.ndarray, part: str) -> int:
    """The input dimension of one calibrated classifier."""
    if not isinstance(member, _CalibratedClassifier):
        raise _Malformed(part, f"must be a calibrated classifier, got"
                               f" {_describe(member)}")
    dim, outputs, estimator_classes = _check_estimator(
        getattr(member, 'estimator', None), f"{part}.estimator")
    member_classes = _check_classes(getattr(member, 'classes', None),
                                    f"{part}.classes")
    if not np.array_equal(member_classes, classes):
        raise _Malformed(f"{part}.classes",
                         f"({len(member_classes)} classes) differ from the"
                         f" classifier's classes_ ({len(classes)})")
    if not np.isin(estimator_classes, member_classes).all():
        raise _Malformed(f"{part}.estimator.classes_",
                         "names classes the classifier does not have")
    method = getattr(member, 'method', None)
    if method not in ('sigmoid', 'isotonic'):
        raise _Malformed(f"{part}.method", f"is {_shown(method)}, not 'sigmoid'"
                                           f" or 'isotonic'")
    calibrators = getattr(member, 'calibrators', None)
    if not isinstance(calibrators, (list, tuple)) \
            or len(calibrators) != outputs:
        count = len(calibrators) if isinstance(calibrators, (list, tuple)) \
            else _describe(calibrators)
        raise _Malformed(f"{part}.calibrators",
                         f"must be one calibrator per output column"
                         f" ({outputs}), got {count}")
    for i, calibrator in enumerate(calibrators):
        _check_calibrator(calibrator, method, f"{part}.calibrators[{i}]")
    return dim


def _check_members_list(clf: CalibratedClassifierCV) -> list:
    members = clf.calibrated_classifiers_
    if not isinstance(members, list) or not members:
        raise _Malformed('calibrated_classifiers_',
                         f"must be a non-empty list, got {_describe(members)}")
    for i, member in enumerate(members):
        if not isinstance(member, _CalibratedClassifier):
            raise _Malformed(f"calibrated_classifiers_[{i}]",
                             f"must be a calibrated classifier, got"
                             f" {_describe(member)}")
    return members


def validate_classifier(clf: CalibratedClassifierCV) -> None:
    """Raise ``ClassifierLoadError`` naming the first part of ``clf`` that
    scoring could not use: its members, their estimators' weights and
    activations, the calibrators, and that all of them agree on the classes
    and the feature dimension."""
    try:
        classes = _check_classes(getattr(clf, 'classes_', None), 'classes_')
        dims = {_check_member(member, classes,
                              f"calibrated_classifiers_[{i}]")
                for i, member in enumerate(_check_members_list(clf))}
        if len(dims) > 1:
            raise _Malformed('calibrated_classifiers_',
                             f"members take different feature dimensions"
                             f" {sorted(dims)}")
        _check_n_features(clf, None, dims.pop())
    except _Malformed as e:
        raise ClassifierLoadError(f"Malformed classifier: {e}.") from None


def loads_classifier(data: bytes, source: str | None = None) \
        -> CalibratedClassifierCV:
    """A fitted ``CalibratedClassifierCV`` from the bytes of a classifier file.

    Raises ``ClassifierLoadError`` for anything else: a refused global, bytes
    that are not a pickle, a pickle of some other object, or a classifier
    whose parts do not fit together (``validate_classifier``). ``source``
    (the file's location) starts each such error's text.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"loads_classifier needs bytes, not {type(data).__name__}.")
    try:
        return _load_checked(data)
    except ClassifierLoadError as e:
        if source is None:
            raise
        raise ClassifierLoadError(f"{source}: {e}") from e


def _load_checked(data: bytes) -> CalibratedClassifierCV:
    return ClassifierUnpickler(io.BytesIO(data), fix_imports=True, encoding='latin1').load()


def _checked(clf: object) -> CalibratedClassifierCV:
    """An unpickled object as a usable classifier, upgraded; else
    ClassifierLoadError saying what it is instead."""
    if not isinstance(clf, CalibratedClassifierCV):
        raise ClassifierLoadError(
            f"Not a classifier file: it holds a {type(clf).__name__}, "
            f"not a CalibratedClassifierCV.")
    if not hasattr(clf, 'calibrated_classifiers_'):
        raise ClassifierLoadError(
            "Not a usable classifier: the CalibratedClassifierCV in this "
            "file was never fitted.")
    try:  # the upgrade walks the members: they must be there to walk
        _check_members_list(clf)
    except _Malformed as e:
        raise ClassifierLoadError(f"Malformed classifier: {e}.") from None
    try:
        upgrade_classifier(clf)
    except (AttributeError, TypeError) as e:
        raise ClassifierLoadError(
            f"Not a usable classifier: {describe(e)}.") from without_content(e)
    validate_classifier(clf)
    return clf


def dumps_classifier(clf: CalibratedClassifierCV) -> bytes:
    """The bytes of a classifier file (a protocol-2 pickle, as pyspacer's)."""
    if not isinstance(clf, CalibratedClassifierCV):
        raise TypeError(
            f"Only a CalibratedClassifierCV can be stored, not a "
            f"{type(clf).__name__}.")
    if not hasattr(clf, 'calibrated_classifiers_'):
        raise ValueError("Only fitted classifiers can be stored.")
    return pickle.dumps(clf, protocol=PICKLE_PROTOCOL)
