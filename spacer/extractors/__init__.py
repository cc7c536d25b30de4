"""
Feature extractors: a network that turns the patch around each point of an
image into a feature vector. Importing this package does not import torch.
"""
from spacer.extractors.base import FeatureExtractor
from spacer.extractors.dummy import DummyExtractor
from spacer.extractors.efficientnet import EfficientNetExtractor

__all__ = [
    'DummyExtractor',
    'EfficientNetExtractor',
    'FeatureExtractor',
    'VGG16CaffeExtractor',
]


def __getattr__(name):
    # The legacy VGG16 extractor (and its protobuf reader) loads on first use.
    if name == 'VGG16CaffeExtractor':
        from spacer.extractors.vgg16 import VGG16CaffeExtractor
        return VGG16CaffeExtractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
