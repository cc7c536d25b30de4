"""The machinery under ``spacer.train_classifier``: reading labelled features
once into arrays (``feature_arrays``), training scikit-learn's MLP with
PyTorch (``torch_mlp``) and calibrating a trained classifier
(``calibration``)."""
