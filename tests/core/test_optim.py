"""core.optim.AdamW: torch.optim.AdamW's updates bit for bit, so that replacing it changed no trial's value."""

from __future__ import annotations

import math

import pytest
import torch

from core.optim import AdamW


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.LayerNorm(16), torch.nn.Linear(16, 3))
    # "unused" is never in the graph: its grad stays None, and torch leaves it alone, decay included
    return torch.nn.ModuleDict({"body": body, "unused": torch.nn.Linear(2, 2)})


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("foreach", [False, True])  # torch's CPU default (single tensor) and its GPU default
def test_adamw_takes_torchs_steps_bit_for_bit(weight_decay, foreach):
    ours, theirs = _net(), _net()
    mine = AdamW(ours.parameters(), weight_decay=weight_decay)
    ref = torch.optim.AdamW(theirs.parameters(), lr=1.0, weight_decay=weight_decay, foreach=foreach)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    for step in range(30):
        lr = 3e-3 * 0.5 * (1 + math.cos(math.pi * step / 30))  # a schedule, as core.train's
        for group in ref.param_groups:
            group["lr"] = lr
        for net in (ours, theirs):
            net.zero_grad(set_to_none=True)
            net["body"](x).square().mean().backward()
        mine.step(lr)
        ref.step()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b), name
    assert torch.equal(ours["unused"].weight, _net()["unused"].weight)
