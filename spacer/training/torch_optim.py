"""What the torch trainers share: scikit-learn's Adam and the thread count.

Training runs on ``torch_threads()`` threads (``SPACER_TRAINING_TORCH_THREADS``,
default 1): a 200-row minibatch is too small to gain from a second thread,
and on a busy machine a waiting second thread made training ~3x slower.
torch is imported inside the functions only, so importing spacer never pays
for it.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

from spacer import config

SKLEARN_BETAS = (0.9, 0.999)
SKLEARN_EPSILON = 1e-8


def torch_threads() -> int:
    return max(1, int(config.get_config_value('TRAINING_TORCH_THREADS', int, 1)))


@contextmanager
def torch_thread_count(threads: int):
    """Run the block with torch on `threads` intra-op threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SklearnAdam:
    """scikit-learn's Adam update, in place on torch tensors.

    (torch.optim.Adam differs only in where epsilon sits, but constructing
    it imports torch's compiler stack: over a second per process.)
    """

    def __init__(self, params: list, learning_rate: float):
        import torch

        self.params = params
        self.learning_rate = learning_rate
        self.t = 0
        self.ms = [torch.zeros_like(p) for p in params]
        self.vs = [torch.zeros_like(p) for p in params]

    def step(self) -> None:
        """Apply and clear the gradients."""
        import torch

        beta1, beta2 = SKLEARN_BETAS
        self.t += 1
        lr_t = self.learning_rate * math.sqrt(1 - beta2 ** self.t) \
            / (1 - beta1 ** self.t)
        with torch.no_grad():
            for p, m, v in zip(self.params, self.ms, self.vs):
                g = p.grad
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                p.addcdiv_(m, v.sqrt().add_(SKLEARN_EPSILON), value=-lr_t)
                p.grad = None
