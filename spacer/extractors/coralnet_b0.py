"""What CoralNet's EfficientNet weights file holds: the model and its head.

A leaf module: the extractor class (no torch) and the network (torch) both
read these without importing each other.
"""
from __future__ import annotations

MODEL_NAME = 'efficientnet-b0'
# CoralNet's label set when the weights were trained; the classifier head
# exists only so those weights load.
NUM_CLASSES = 1275
