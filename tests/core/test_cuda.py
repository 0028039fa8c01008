"""The CUDA path of every stage against the CPU one, on the same scenes: generation, the pipeline, the losses and
their stable projector backward, training (float32, and bf16 autocast with TF32), MUSIC with refinement and
repair, the float64 CRB and the evaluation. Marked `cuda`: skipped where torch sees no GPU (tests/conftest.py).

The scenes are drawn on the CPU and moved, since a seed gives different draws on each device's generator.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from core.array import steering
from core.covariance import PipelineConfig, pipeline, sample_covariance
from core.crb import scene_crb
from core.evaluation import evaluate_point
from core.experiment import ExperimentConfig
from core.grid import GridConfig, build_grid
from core.linalg import stable_signal_projector
from core.losses import LossConfig, total_loss
from core.models import ModelConfig, build_model
from core.music import music
from core.scenario import ScenarioConfig, generate
from core.train import _data_seed, train

pytestmark = pytest.mark.cuda

GPU = torch.device("cuda")
SCENARIOS = {
    "digital": ScenarioConfig(),
    "hybrid": ScenarioConfig.from_dict({"measurement": {"combiner": "random_phase", "n_rf": 8}}),
}
PIPE = PipelineConfig()


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scene(request):
    """(scenario, 128 scenes on the CPU) for each combiner."""
    scenario = SCENARIOS[request.param]
    return scenario, generate(scenario, 128, seed=3)


def _model(scenario: ScenarioConfig, arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(arch=arch, width=64, depth=2), scenario)


def _per_scene_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """max |a − b| of each scene (B,), a on any device, b on the CPU."""
    return (a.cpu() - b).abs().flatten(1).amax(-1)


def test_scenes_drawn_on_cuda_are_reproducible_and_follow_the_signal_model():
    scenario = SCENARIOS["digital"]
    b = generate(scenario, 256, seed=0, device=GPU)
    assert b.Y.is_cuda and torch.equal(b.Y, generate(scenario, 256, seed=0, device=GPU).Y)
    c = b.to("cpu")
    A = steering(c.theta, torch.where(c.mask, c.r, torch.ones_like(c.r)), scenario.array) * c.mask[:, None, :]
    R = (A * c.power[:, None, :]) @ A.mH + c.noise_var[:, None, None] * torch.eye(scenario.n)
    torch.testing.assert_close(c.R_true, R.to(c.R_true.dtype), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["mlp", "music_residual"])
def test_the_pipeline_on_cuda_matches_the_cpu(scene, arch):
    """Every matrix agrees; music_residual starts from MUSIC, whose grid peak may flip on a near-tie in a rare scene."""
    scenario, batch = scene
    model = _model(scenario, arch)
    with torch.no_grad():
        cpu = pipeline(model, batch.Y, batch.H, PIPE)
        g = batch.to(GPU)
        gpu = pipeline(copy.deepcopy(model).to(GPU), g.Y, g.H, PIPE)
    torch.testing.assert_close(gpu.R_samp.cpu(), cpu.R_samp, atol=1e-4, rtol=1e-4)
    agree = (_per_scene_error(gpu.R_blend, cpu.R_blend) < 1e-3).double().mean().item()
    assert agree >= (1.0 if arch == "mlp" else 0.99)


def test_the_loss_and_its_gradients_on_cuda_match_the_cpu(scene):
    scenario, batch = scene
    model = _model(scenario, "mlp")
    twin = copy.deepcopy(model).to(GPU)
    losses = []
    for m, b in ((model, batch), (twin, batch.to(GPU))):
        loss, _ = total_loss(pipeline(m, b.Y, b.H, PIPE), b, LossConfig(), scenario.array)
        loss.backward()
        losses.append(loss.item())
    assert math.isclose(losses[0], losses[1], rel_tol=1e-4)
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(q.grad.cpu(), p.grad, atol=1e-5, rtol=1e-3, msg=name)


def test_the_stable_projector_backward_on_cuda_is_finite_on_repeated_eigenvalues_and_matches_the_cpu():
    """R = A Aᴴ of 2 sources on 16 elements: 14 zero eigenvalues, where plain eigh autograd gives NaN."""
    torch.manual_seed(1)
    A = torch.randn(8, 16, 2, dtype=torch.complex64)
    weight = torch.randn(8, 16, 16, dtype=torch.complex64)
    k = torch.full((8,), 2)
    grads = []
    for device in ("cpu", GPU):
        R = (A.to(device) @ A.to(device).mH).requires_grad_()
        (stable_signal_projector(R, k.to(device)).P * weight.to(device)).real.sum().backward()
        grads.append(R.grad.cpu())
    assert torch.isfinite(torch.view_as_real(grads[1])).all()
    torch.testing.assert_close(grads[1], grads[0], atol=1e-4, rtol=1e-3)


def _cpu_scenes_for(cfg: ExperimentConfig, device: torch.device) -> dict:
    """A data cache that hands train() on `device` the scenes the CPU run draws (fresh_data off)."""
    tc = cfg.train
    sets = ((tc.n_val, tc.val_seed), (tc.n_train, _data_seed(tc.seed, 0)))
    return {(cfg.scenario, n, seed, str(device)): generate(cfg.scenario, n, seed).to(device) for n, seed in sets}


def _train_cfg(device: str, **train_kw) -> ExperimentConfig:
    train_kw = {"epochs": 2, "n_train": 512, "n_val": 256, "batch_size": 64, "fresh_data": False} | train_kw
    return ExperimentConfig.from_dict(
        {"model": {"arch": "mlp", "width": 64, "depth": 2}, "train": {**train_kw, "device": device, "threads": 2}}
    )


def test_training_on_cuda_follows_the_cpu_run():
    cpu = train(_train_cfg("cpu")).history
    gpu = train(_train_cfg("cuda"), data_cache=_cpu_scenes_for(_train_cfg("cuda"), GPU)).history
    for c, g in zip(cpu, gpu, strict=True):
        assert math.isclose(g["train_loss"], c["train_loss"], rel_tol=1e-3)
        assert abs(g["nmse_db"] - c["nmse_db"]) < 0.05


def test_bf16_autocast_and_tf32_on_cuda_stay_near_float32():
    exact = _train_cfg("cuda")
    fast = _train_cfg("cuda", amp=True, tf32=True)
    full = train(exact, data_cache=_cpu_scenes_for(exact, GPU)).final
    mixed = train(fast, data_cache=_cpu_scenes_for(fast, GPU)).final
    assert math.isfinite(mixed["train_loss"]) and abs(mixed["nmse_db"] - full["nmse_db"]) < 0.5
    assert torch.backends.cuda.matmul.fp32_precision != "tf32"  # restored after training


def test_music_with_refinement_and_repair_on_cuda_matches_the_cpu(scene):
    scenario, batch = scene
    R = sample_covariance(batch.Y, batch.H, PIPE.tikhonov_alpha)
    grid = build_grid(scenario)
    assert grid.refine_steps > 0 and grid.repair
    cpu = music(R, grid, scenario.scene.k_max)
    gpu = music(R.to(GPU), grid.to(GPU), scenario.scene.k_max)
    assert gpu.theta.is_cuda
    same_k = (gpu.k_hat.cpu() == cpu.k_hat).double().mean().item()
    same_slots = (gpu.mask.cpu() == cpu.mask).all(-1)
    close = (_per_scene_error(gpu.theta, cpu.theta) < 1e-4) & (_per_scene_error(gpu.r, cpu.r) < 1e-3 * cpu.r.amax())
    assert same_k >= 0.99 and (same_slots & close).double().mean().item() >= 0.98


def test_the_crb_on_cuda_is_float64_and_matches_the_cpu(scene):
    scenario, batch = scene
    cpu, gpu = scene_crb(batch, scenario.array), scene_crb(batch.to(GPU), scenario.array)
    assert gpu.angle_deg.is_cuda and gpu.angle_deg.dtype == torch.float64
    torch.testing.assert_close(gpu.angle_deg.cpu(), cpu.angle_deg, rtol=1e-6, atol=0.0, equal_nan=True)
    torch.testing.assert_close(gpu.range_m.cpu(), cpu.range_m, rtol=1e-6, atol=0.0, equal_nan=True)


def test_an_evaluation_point_on_cuda_matches_the_cpu(scene):
    """32 scenes on a coarse grid: the CPU half runs MUSIC nine times (three covariances, three order choices)."""
    scenario, batch = scene[0], scene[1][:32]
    model, grid = _model(scenario, "mlp").eval(), build_grid(scenario, GridConfig(n_angles=61, n_ranges=16))
    with torch.no_grad():
        cpu = evaluate_point(model, batch, scenario, PIPE, grid, 32)
        gpu = evaluate_point(copy.deepcopy(model).to(GPU), batch.to(GPU), scenario, PIPE, grid.to(GPU), 32)
    assert gpu["crb"] == pytest.approx(cpu["crb"], rel=1e-6)
    for name, m in cpu["methods"].items():
        if m["nmse_db"] is not None:
            assert abs(gpu["methods"][name]["nmse_db"] - m["nmse_db"]) < 0.01
        for rule, acc in m["k_accuracy"].items():
            assert abs(gpu["methods"][name]["k_accuracy"][rule] - acc) <= 1 / 32  # one scene's K̂ may flip
