"""Scenario configs and the batched, seeded generator of near-field scenes and snapshots.

Signal model (DESIGN §2), for l = 1..L:
    x_l = A s_l + n_l,    y_l = H x_l,
    s_l ~ CN(0, P), P = diag(p_k);   n_l ~ CN(0, σ²·I_N).
SNR is per element and per source: SNR = p_k / σ²  (10 dB means σ² = 0.1 when p_k = 1).
It is a power ratio, so σ² = p_k · 10^(-SNR/10); never 10^(SNR/10) applied to amplitudes.
Ground truth: R_true = A P Aᴴ + σ²·I_N, the covariance of x (not of y).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import torch

from core.array import ArrayConfig, steering
from core.configs import build_sections
from core.errors import ConfigError

Combiner = Literal["identity", "random_phase"]
COMBINERS: tuple[str, ...] = ("identity", "random_phase")


def _check_interval(name: str, value, low=-math.inf, high=math.inf, open_low=False) -> None:
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        and value[0] <= value[1]
        and (value[0] > low if open_low else value[0] >= low)
        and value[1] <= high
    )
    if not ok:
        bounds = f"{'(' if open_low else '['}{low}, {high}]"
        raise ConfigError(
            f"{name} must be a finite (low, high) pair with low <= high inside {bounds}, got {name}={value!r}"
        )


@dataclass(frozen=True)
class MeasurementConfig:
    snapshots: int = 16  # L, snapshots per scene
    combiner: Combiner = "identity"  # H: "identity" (M = N, digital) or "random_phase" (hybrid, per scene)
    n_rf: int | None = None  # M, rows of H; None means M = N

    def __post_init__(self) -> None:
        snapshots, combiner, n_rf = self.snapshots, self.combiner, self.n_rf
        if not isinstance(snapshots, int) or snapshots < 1:
            raise ConfigError(f"snapshots (L) must be an integer >= 1, got {snapshots=}")
        if combiner not in COMBINERS:
            raise ConfigError(f"combiner must be one of {COMBINERS}, got {combiner=}")
        if n_rf is not None and (not isinstance(n_rf, int) or n_rf < 1):
            raise ConfigError(f"n_rf (M) must be a positive integer or None, got {n_rf=}")


@dataclass(frozen=True)
class SceneConfig:
    k_max: int = 3  # K_max; each scene draws K ~ U{1..K_max}
    snr_db: tuple[float, float] = (-10.0, 20.0)  # per-scene SNR range, dB, SNR = p_k/σ²
    angle_deg: tuple[float, float] = (-60.0, 60.0)  # θ range from broadside, degrees
    min_separation_deg: float = 6.0  # Δθ_min between sources of one scene, degrees
    range_m: tuple[float, float] | None = None  # r range, metres; None = Fresnel..Fraunhofer of the array
    source_power: float = 1.0  # p_k, equal for all sources (uncorrelated)

    def __post_init__(self) -> None:
        k_max, source_power, min_sep = self.k_max, self.source_power, self.min_separation_deg
        if not isinstance(k_max, int) or k_max < 1:
            raise ConfigError(f"k_max must be an integer >= 1, got {k_max=}")
        _check_interval("snr_db", self.snr_db, -100.0, 100.0)
        _check_interval("angle_deg", self.angle_deg, -90.0, 90.0)
        if self.range_m is not None:
            _check_interval("range_m", self.range_m, 0.0, open_low=True)
        if not (isinstance(min_sep, (int, float)) and math.isfinite(min_sep) and min_sep >= 0):
            raise ConfigError(f"min_separation_deg must be a finite number >= 0, got {min_sep=}")
        if not (isinstance(source_power, (int, float)) and math.isfinite(source_power) and source_power > 0):
            raise ConfigError(f"source_power must be positive and finite, got {source_power=}")
        span = self.angle_deg[1] - self.angle_deg[0]
        if (k_max - 1) * min_sep > span:
            raise ConfigError(
                f"{k_max=} sources at min_separation_deg={min_sep} need {(k_max - 1) * min_sep} degrees, "
                f"but angle_deg={self.angle_deg!r} spans only {span}"
            )


@dataclass(frozen=True)
class ScenarioConfig:
    array: ArrayConfig = field(default_factory=ArrayConfig)  # geometry and wavefront
    measurement: MeasurementConfig = field(default_factory=MeasurementConfig)  # L and H
    scene: SceneConfig = field(default_factory=SceneConfig)  # sources, SNR, angles, ranges

    def __post_init__(self) -> None:
        n = self.array.n_elements
        if self.scene.k_max >= n:
            raise ConfigError(
                f"k_max must be < n_elements={n} for a noise subspace to exist, got k_max={self.scene.k_max}"
            )
        if self.scene.k_max >= self.m:
            raise ConfigError(
                f"k_max must be < n_rf (M) = {self.m}: H must pass a noise subspace, got k_max={self.scene.k_max}"
            )
        if self.m > n:
            raise ConfigError(f"n_rf (M) must be <= n_elements={n}, got n_rf={self.measurement.n_rf}")
        if self.measurement.combiner == "identity" and self.m != n:
            raise ConfigError(f"the identity combiner needs n_rf = n_elements = {n}, got n_rf={self.measurement.n_rf}")

    @property
    def n(self) -> int:
        return self.array.n_elements

    @property
    def m(self) -> int:
        return self.measurement.n_rf or self.array.n_elements

    @property
    def range_m(self) -> tuple[float, float]:
        """(r_min, r_max) in metres, defaulting to the Fresnel and Fraunhofer distances."""
        if self.scene.range_m is not None:
            return tuple(self.scene.range_m)
        return (self.array.fresnel_distance, self.array.fraunhofer_distance)

    @staticmethod
    def from_dict(d: dict) -> ScenarioConfig:
        """Build from {"array": {...}, "measurement": {...}, "scene": {...}}; unknown keys are errors."""
        parts = {"array": ArrayConfig, "measurement": MeasurementConfig, "scene": SceneConfig}
        return ScenarioConfig(**build_sections(d, parts, "scenario"))


@dataclass(frozen=True)
class SceneBatch:
    """A batch of B scenes. Padded source slots (k >= K) have mask False and θ = r = 0."""

    Y: torch.Tensor  # (B, M, L) complex, observed snapshots y_l = H x_l
    H: torch.Tensor  # (B, M, N) complex, measurement matrix
    R_true: torch.Tensor  # (B, N, N) complex, A P Aᴴ + σ² I
    K: torch.Tensor  # (B,) int64, number of sources
    theta: torch.Tensor  # (B, K_max) float, radians
    r: torch.Tensor  # (B, K_max) float, metres
    mask: torch.Tensor  # (B, K_max) bool, True for real sources
    power: torch.Tensor  # (B, K_max) float, p_k (0 in padded slots)
    noise_var: torch.Tensor  # (B,) float, σ²
    snr_db: torch.Tensor  # (B,) float, 10·log10(p_k/σ²)

    def __len__(self) -> int:
        return self.Y.shape[0]

    def __getitem__(self, idx) -> SceneBatch:
        return SceneBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def to(self, device) -> SceneBatch:
        return SceneBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def with_(self, **changes) -> SceneBatch:
        return replace(self, **changes)


def _draw_angles(gen, b, k, k_max, lo, hi, sep, dtype, device) -> torch.Tensor:
    """Sorted angles, uniform over all sets that keep every pair >= sep apart (radians, (B, K_max)).

    The standard gap trick: K uniform points in [lo, hi - (K-1)·sep], sorted, the i-th shifted
    by i·sep. Slots k >= K are left at 0.
    """
    u = torch.rand(b, k_max, generator=gen, dtype=dtype, device=device)
    slot = torch.arange(k_max, device=device)
    valid = slot[None, :] < k[:, None]
    u = torch.where(valid, u, torch.full_like(u, 2.0)).sort(dim=1).values  # padded slots sort last
    span = (hi - lo) - (k[:, None] - 1).to(dtype) * sep
    theta = lo + u * span + slot[None, :].to(dtype) * sep
    return torch.where(valid, theta, torch.zeros_like(theta))


def generate(
    cfg: ScenarioConfig,
    n_scenes: int,
    seed: int,
    *,
    device: torch.device | str | None = None,
    snr_db: float | None = None,
    num_sources: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> SceneBatch:
    """Draw n_scenes reproducible scenes and their snapshots.

    The same (cfg, n_scenes, seed, device) always gives identical tensors. snr_db and
    num_sources, when given, fix the SNR (dB) or K of every scene (evaluation sweeps).
    """
    if not isinstance(n_scenes, int) or n_scenes < 1:
        raise ConfigError(f"n_scenes must be a positive integer, got {n_scenes=}")
    k_max = cfg.scene.k_max
    if num_sources is not None and not (isinstance(num_sources, int) and 1 <= num_sources <= k_max):
        raise ConfigError(f"num_sources must be an integer in [1, {k_max}], got {num_sources=}")
    if snr_db is not None and not math.isfinite(snr_db):
        raise ConfigError(f"snr_db must be finite, got {snr_db=}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    gen = torch.Generator(device=device).manual_seed(int(seed))
    b, n, m, snaps = n_scenes, cfg.n, cfg.m, cfg.measurement.snapshots
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    kw = dict(dtype=dtype, device=device)

    # Scene: K, angles, ranges (uniform in 1/r), powers, noise.
    if num_sources is None:
        k = torch.randint(1, k_max + 1, (b,), generator=gen, device=device)
    else:
        k = torch.full((b,), num_sources, dtype=torch.int64, device=device)
    lo, hi = (math.radians(a) for a in cfg.scene.angle_deg)
    theta = _draw_angles(gen, b, k, k_max, lo, hi, math.radians(cfg.scene.min_separation_deg), dtype, device)
    mask = torch.arange(k_max, device=device)[None, :] < k[:, None]
    r_min, r_max = cfg.range_m
    inv_r = 1 / r_max + torch.rand(b, k_max, generator=gen, **kw) * (1 / r_min - 1 / r_max)
    r = torch.where(mask, 1 / inv_r, torch.zeros_like(inv_r))
    power = mask.to(dtype) * cfg.scene.source_power
    if snr_db is None:
        lo_db, hi_db = cfg.scene.snr_db
        snr = lo_db + torch.rand(b, generator=gen, **kw) * (hi_db - lo_db)
    else:
        snr = torch.full((b,), float(snr_db), **kw)
    noise_var = cfg.scene.source_power * 10 ** (-snr / 10)

    # Measurement matrix H.
    if cfg.measurement.combiner == "identity":
        H = torch.eye(n, dtype=cdtype, device=device).expand(b, n, n).contiguous()
    else:
        phi = 2 * math.pi * torch.rand(b, m, n, generator=gen, **kw)
        H = torch.polar(torch.full_like(phi, 1 / math.sqrt(n)), phi)

    # Snapshots: x = A s + n, y = H x. A uses r = 1 in padded slots only to stay finite; its columns are zeroed.
    A = steering(theta, torch.where(mask, r, torch.ones_like(r)), cfg.array, wavefront="exact")
    A = A * mask[:, None, :]
    s = torch.randn(b, k_max, snaps, generator=gen, dtype=cdtype, device=device) * power.sqrt()[..., None]
    noise = torch.randn(b, n, snaps, generator=gen, dtype=cdtype, device=device) * noise_var.sqrt()[:, None, None]
    Y = H @ (A @ s + noise)

    eye = torch.eye(n, dtype=cdtype, device=device)
    R_true = (A * power[:, None, :]) @ A.mH + noise_var[:, None, None] * eye
    return SceneBatch(
        Y=Y, H=H, R_true=R_true, K=k, theta=theta, r=r, mask=mask, power=power, noise_var=noise_var, snr_db=snr
    )
