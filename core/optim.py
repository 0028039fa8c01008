"""AdamW, the update of torch.optim.AdamW (its single-tensor path, bit for bit) without torch.optim's cost.

torch.optim's Optimizer imports torch._dynamo at its first add_param_group, zero_grad and step, only to exempt
those methods from torch.compile, which core never uses: 1.1-2.1 s of CPU in every process that trains (every
`hpo run` worker, `hpo retrain`). The arithmetic below is _single_tensor_adam's with decoupled weight decay,
no amsgrad, no maximize, in its order; tests/core/test_optim.py compares the two bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class AdamW:
    """AdamW over `params` (real tensors); the learning rate is the caller's at each step (core.train's schedule).

    One kernel per operation and tensor, as torch's CPU default: on a GPU torch would batch them (foreach), which
    the few dozen tensors of the networks here do not need."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.weight_decay, self.betas, self.eps = weight_decay, betas, eps
        self.moments: dict[torch.nn.Parameter, tuple[torch.Tensor, torch.Tensor]] = {}  # first, second; per param
        self.steps: dict[torch.nn.Parameter, int] = {}  # updates taken, per param (torch's state["step"])

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """One update of every parameter that has a gradient (torch skips the others, decay included)."""
        beta1, beta2 = self.betas
        for p in self.params:
            if p.grad is None:
                continue
            if p not in self.moments:
                self.moments[p] = (torch.zeros_like(p), torch.zeros_like(p))
            exp_avg, exp_avg_sq = self.moments[p]
            self.steps[p] = self.steps.get(p, 0) + 1
            if self.weight_decay:
                p.mul_(1 - lr * self.weight_decay)
            exp_avg.lerp_(p.grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            step = float(self.steps[p])  # torch keeps the count in a float32 tensor and reads it back as a float
            step_size = lr / (1 - beta1**step)
            denom = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)
