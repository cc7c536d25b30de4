"""
An extractor and a trainer that take a known time, so a test can kill a
worker while one is running. Workers allow them through the operator's
``SPACER_EXTRA_CLASS_PATHS`` setting, as any site-specific class.
"""
from __future__ import annotations

import os
import time

from spacer.extractors.dummy import DummyExtractor
from spacer.train_classifier import MiniBatchTrainer

SLOW_EXTRACTOR = 'tests.workers.slow_classes.SlowExtractor'
SLOW_TRAINER = 'tests.workers.slow_classes.SlowTrainer'
COUNTING_EXTRACTOR = 'tests.workers.slow_classes.CountingExtractor'
CLASS_PATHS = f'{SLOW_EXTRACTOR},{SLOW_TRAINER},{COUNTING_EXTRACTOR}'


class SlowExtractor(DummyExtractor):
    """DummyExtractor features after ``delay`` seconds of 'inference'."""

    def __init__(self, data_locations=None, feature_dim: int = 16, delay: float = 0.0,
                 stuck: bool = False, **kwargs):
        super().__init__(data_locations, feature_dim=feature_dim, **kwargs)
        self.delay = float(delay)
        # Like a call stuck in native code: the soft time limit's exception
        # does not stop it, only the hard limit's kill does.
        self.stuck = bool(stuck)

    @classmethod
    def class_path(cls) -> str:
        return SLOW_EXTRACTOR

    def __call__(self, im, rowcols):
        deadline = time.monotonic() + self.delay
        while (left := deadline - time.monotonic()) > 0:
            try:
                time.sleep(left)
            except Exception:
                if not self.stuck:
                    raise
        return super().__call__(im, rowcols)

    def serialize(self) -> dict:
        return dict(super().serialize(), delay=self.delay, stuck=self.stuck)


class SlowTrainer(MiniBatchTrainer):
    """MiniBatchTrainer that first spends ``delay`` seconds, then
    ``epoch_delay`` seconds more after each epoch (so progress can be seen)."""

    def __init__(self, delay: float = 0.0, batch_size: int = 5000,
                 epoch_delay: float = 0.0):
        super().__init__(batch_size=batch_size)
        self.delay = float(delay)
        self.epoch_delay = float(epoch_delay)

    def __call__(self, *args, on_epoch=None, **kwargs):
        time.sleep(self.delay)

        def slow_epoch(epoch: int, epochs: int, ref_acc: float) -> None:
            if on_epoch is not None:
                on_epoch(epoch, epochs, ref_acc)
            time.sleep(self.epoch_delay)

        return super().__call__(*args, on_epoch=slow_epoch, **kwargs)


class CountingExtractor(SlowExtractor):
    """SlowExtractor that appends a line to ``<count_dir>/<first point>``
    each time it finishes, naming the process that ran it, so a run can
    count executions per task and tell which process each came from."""

    def __init__(self, data_locations=None, feature_dim: int = 16, delay: float = 0.0,
                 count_dir: str = '', **kwargs):
        super().__init__(data_locations, feature_dim=feature_dim, delay=delay, **kwargs)
        self.count_dir = count_dir

    @classmethod
    def class_path(cls) -> str:
        return COUNTING_EXTRACTOR

    def __call__(self, im, rowcols):
        result = super().__call__(im, rowcols)
        row, col = rowcols[0]
        with open(f'{self.count_dir}/{row}-{col}', 'a') as out:
            out.write(f'{os.getpid()}\n')
        return result

    def serialize(self) -> dict:
        return dict(super().serialize(), count_dir=self.count_dir)
