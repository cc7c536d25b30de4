"""
Feature extractors: a network that turns the patch around each point of an
image into a feature vector. Importing this package does not import torch.
"""
from spacer.extractors.base import FeatureExtractor
from spacer.extractors.dummy import DummyExtractor
from spacer.extractors.efficientnet import EfficientNetExtractor
from spacer.extractors.vgg16 import VGG16CaffeExtractor

__all__ = [
    'DummyExtractor',
    'EfficientNetExtractor',
    'FeatureExtractor',
    'VGG16CaffeExtractor',
]
