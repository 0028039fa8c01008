"""AdamW, the update of torch.optim.AdamW (bit for bit on the CPU) without torch.optim's cost.

torch.optim's Optimizer imports torch._dynamo at its first add_param_group, zero_grad and step, only to exempt
those methods from torch.compile, which core never uses: 1.1-2.1 s of CPU in every process that trains (every
`hpo run` worker, `hpo retrain`). The arithmetic below is torch's AdamW (decoupled weight decay, no amsgrad, no
maximize) in its order; on the CPU it is torch's bit for bit, both its paths (tests/core/test_optim.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class AdamW:
    """AdamW over `params` (real tensors); the learning rate is the caller's at each step (core.train's schedule).

    Each operation runs on all the tensors at once (torch._foreach_*, as torch.optim's default on a GPU): one kernel
    launch per operation on a GPU; on the CPU they run tensor by tensor, the same arithmetic as the single-tensor
    path."""

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
        params = [p for p in self.params if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        for p in params:
            if p not in self.moments:
                self.moments[p] = (torch.zeros_like(p), torch.zeros_like(p))
            self.steps[p] = self.steps.get(p, 0) + 1
        exp_avgs = [self.moments[p][0] for p in params]
        exp_avg_sqs = [self.moments[p][1] for p in params]
        steps = [float(self.steps[p]) for p in params]  # torch counts in a float32 tensor and reads a float back
        if self.weight_decay:
            torch._foreach_mul_(params, 1 - lr * self.weight_decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, [(1 - beta2**step) ** 0.5 for step in steps])
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, exp_avgs, denom, [-(lr / (1 - beta1**step)) for step in steps])
