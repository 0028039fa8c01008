"""Scenario configs and the batched, seeded generator of near-field scenes and snapshots (DESIGN §2).

x_l = A s_l + n_l, y_l = H x_l, s_l ~ CN(0, P), n_l ~ CN(0, σ²·I_N); SNR = p_k/σ², a power ratio, so
σ² = p_k·10^(−SNR/10). R_true = A P Aᴴ + σ²·I_N, the covariance of x (not of y).

P = D^½ Γ D^½ with D = diag(p_k) and Γ = (1 − c)·I + c·u uᴴ, u_k = e^{jφ_k}: c = 0 uncorrelated sources,
c = 1 coherent ones (one waveform, rank-1 P). s_l = D^½ (√(1−c)·z_l + √c·u·w_l) with z_l, w_l white has
exactly that covariance, and for c = 0 it is the uncorrelated draw itself, so c = 0 scenes are bit for bit
those of a scenario without the setting. L (snapshots) may be below K: R_samp then has rank ≤ L.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Annotated, Literal

import torch
from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from core.array import ArrayConfig, steering
from core.configs import Config
from core.errors import ConfigError

Combiner = Literal["identity", "random_phase"]
MAX_SEED = 2**64 - 1  # the largest seed torch.Generator.manual_seed takes; every scene and model seed is checked on it
# Snapshot vectors one draw holds (scenes × L): a million scenes of the default L = 16, gigabytes already. Scenes and
# L are each bounded where they are set; their product is what the memory holds (L = 10**8 asked for 154 GB).
MAX_DRAWN = 1_000_000 * 16


def check_drawable(n_scenes: int, snapshots: int, what: str = "n_scenes") -> None:
    """A ConfigError naming both when `n_scenes` scenes of `snapshots` snapshots exceed MAX_DRAWN."""
    if n_scenes * snapshots > MAX_DRAWN:
        raise ConfigError(
            f"{what} × snapshots must be <= {MAX_DRAWN:,} (the scenes are drawn at once), got "
            f"{n_scenes:,} × {snapshots:,}"
        )


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ValueError("must be a (low, high) pair with low <= high")
    return pair


def _as_pair(value):
    """A single number as the range (value, value)."""
    return (value, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Ordered = AfterValidator(_ordered)
Db = Annotated[float, Field(ge=-100, le=100)]  # an SNR, dB
Degrees = Annotated[float, Field(ge=-90, le=90)]  # an angle from broadside
Metres = Annotated[float, Field(gt=0)]  # a range from the array centre
Share = Annotated[float, Field(ge=0, le=1)]  # a source correlation c


class MeasurementConfig(Config):
    snapshots: int = Field(16, ge=1)  # L, snapshots per scene
    combiner: Combiner = "identity"  # H: "identity" (M = N, digital) or "random_phase" (hybrid, per scene)
    n_rf: int | None = Field(None, ge=1)  # M, rows of H; None means M = N


class SceneConfig(Config):
    k_max: int = Field(3, ge=1)  # K_max; each scene draws K ~ U{1..K_max}
    snr_db: Annotated[tuple[Db, Db], Ordered] = (-10.0, 20.0)  # per-scene SNR range, dB, SNR = p_k/σ²
    angle_deg: Annotated[tuple[Degrees, Degrees], Ordered] = (-60.0, 60.0)  # θ range from broadside, degrees
    min_separation_deg: float = Field(6.0, ge=0)  # Δθ_min between sources of one scene, degrees
    range_m: Annotated[tuple[Metres, Metres], Ordered] | None = None  # r range, m; None = Fresnel..Fraunhofer
    source_power: float = Field(1.0, gt=0)  # p_k, equal for all sources
    # c: source correlation, a value or a (low, high) range drawn per scene; 0 uncorrelated, 1 coherent
    correlation: Annotated[tuple[Share, Share], BeforeValidator(_as_pair), Ordered] = (0.0, 0.0)

    @model_validator(mode="after")
    def _room_for_k_max_sources(self) -> SceneConfig:
        k_max, min_sep = self.k_max, self.min_separation_deg
        span = self.angle_deg[1] - self.angle_deg[0]
        if (k_max - 1) * min_sep > span:
            raise ConfigError(
                f"{k_max=} sources at min_separation_deg={min_sep} need {(k_max - 1) * min_sep} degrees, "
                f"but angle_deg={self.angle_deg!r} spans only {span}"
            )
        return self


class ScenarioConfig(Config):
    array: ArrayConfig = ArrayConfig()  # geometry and wavefront
    measurement: MeasurementConfig = MeasurementConfig()  # L and H
    scene: SceneConfig = SceneConfig()  # sources, SNR, angles, ranges

    @model_validator(mode="after")
    def _noise_subspace_exists(self) -> ScenarioConfig:
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
        return self

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
    source_cov: torch.Tensor  # (B, K_max, K_max) complex, P = D^½ Γ D^½ (0 in padded rows and columns)
    noise_var: torch.Tensor  # (B,) float, σ²
    snr_db: torch.Tensor  # (B,) float, 10·log10(p_k/σ²)

    def __len__(self) -> int:
        return self.Y.shape[0]

    def __getitem__(self, idx) -> SceneBatch:
        return SceneBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def to(self, device) -> SceneBatch:
        return SceneBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @staticmethod
    def cat(batches: list[SceneBatch]) -> SceneBatch:
        """One batch of all scenes of `batches`, in order (same K_max, M, N, L)."""
        return SceneBatch(**{f.name: torch.cat([getattr(b, f.name) for b in batches]) for f in fields(SceneBatch)})


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
    num_sources, when given, fix the SNR (dB) or K of every scene (evaluation sweeps). The
    correlation's draws (c when a range, the phases u, the common waveform w) come after all
    others, so they change no other draw, and c = 0 draws nothing.
    """
    if not isinstance(n_scenes, int) or n_scenes < 1:
        raise ConfigError(f"n_scenes must be a positive integer, got {n_scenes=}")
    check_drawable(n_scenes, cfg.measurement.snapshots)
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
    A = steering(theta, torch.where(mask, r, torch.ones_like(r)), cfg.array, wavefront="exact") * mask[:, None, :]
    z = torch.randn(b, k_max, snaps, generator=gen, dtype=cdtype, device=device)
    noise = torch.randn(b, n, snaps, generator=gen, dtype=cdtype, device=device) * noise_var.sqrt()[:, None, None]
    P = torch.diag_embed(power.to(cdtype))
    c_lo, c_hi = cfg.scene.correlation
    if c_hi > 0:
        c = torch.full((b,), c_lo, **kw)
        if c_hi > c_lo:
            c = c_lo + torch.rand(b, generator=gen, **kw) * (c_hi - c_lo)
        u = torch.polar(mask.to(dtype), 2 * math.pi * torch.rand(b, k_max, generator=gen, **kw))  # 0 in padded slots
        w = torch.randn(b, 1, snaps, generator=gen, dtype=cdtype, device=device)  # the shared waveform
        z = (1 - c).sqrt()[:, None, None] * z + c.sqrt()[:, None, None] * u[..., None] * w
        gamma = (1 - c)[:, None, None] * torch.eye(k_max, **kw) + c[:, None, None] * (
            u[:, :, None] * u[:, None, :].conj()
        )
        P = power.sqrt()[:, :, None] * gamma * power.sqrt()[:, None, :]
    s = z * power.sqrt()[..., None]
    Y = H @ (A @ s + noise)

    if c_hi > 0:
        R_true = A @ P @ A.mH
    else:  # the diagonal P as a column scaling: the uncorrelated scenes' R_true, bit for bit
        R_true = (A * power[:, None, :]) @ A.mH
    R_true = R_true + noise_var[:, None, None] * torch.eye(n, dtype=cdtype, device=device)
    return SceneBatch(
        Y=Y,
        H=H,
        R_true=R_true,
        K=k,
        theta=theta,
        r=r,
        mask=mask,
        power=power,
        source_cov=P,
        noise_var=noise_var,
        snr_db=snr,
    )
