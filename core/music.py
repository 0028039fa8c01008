"""Batched near-field MUSIC (DESIGN §5): model order, spectrum, peaks, sub-grid refinement, repair.

`music(C, grid, ...)` runs on any covariance C (B, M, M) of the whitened measurement domain (core.measurement),
with steering vectors b(θ, r) = T a(θ, r), T = W H (B, M, N). For H = I, T is None and C is R itself: b = a,
‖b‖² = N, the plain MUSIC.

    spectrum    s(θ, u) = ‖U_sᴴ b(θ, 1/u)‖² / ‖b‖² on a core.grid (uniform in θ and u = 1/r); MUSIC's pseudo-spectrum
                is 1/(1 − s), so its peaks are the peaks of s. For H = I, ‖b‖² = N is left out (s in [0, N]).
    peaks       block-max non-maximum suppression, blocks sized from the array's resolution (DESIGN §5)
    refinement  Levenberg–Marquardt steps on the null spectrum ‖(I − U_s U_sᴴ) b‖² / ‖b‖² in (θ, u)
    repair      core.peak_repair
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.array import steering_with_derivatives
from core.errors import ConfigError
from core.grid import Grid
from core.linalg import hermitian_coefficients
from core.peak_repair import repair

# ---------------------------------------------------------------- model order


def eigengap_order(eigvals: torch.Tensor, k_max: int, snapshots: int | None = None) -> torch.Tensor:
    """K̂ = argmax over k = 1..K_max of λ_k − λ_{k+1}. eigvals: (B, P) real, descending. Returns (B,) int64.

    snapshots is unused; it keeps the signature of every rule in ORDER_RULES the same."""
    gaps = eigvals[..., :k_max] - eigvals[..., 1 : k_max + 1]
    return gaps.argmax(-1) + 1


def mdl_order(eigvals: torch.Tensor, k_max: int, snapshots: int) -> torch.Tensor:
    """Wax–Kailath MDL over k = 1..K_max; eigvals (B, P) real descending of a sample covariance from L snapshots.

    MDL(k) = −L·(P−k)·log(g_k/a_k) + ½·k·(2P−k)·log L, with g_k, a_k the geometric and arithmetic means
    of the P−k smallest eigenvalues. The likelihood term is scale-free, so trace normalisation is harmless.
    """
    p = eigvals.shape[-1]
    lam = eigvals.to(torch.float64).clamp_min(1e-30)
    k = torch.arange(1, k_max + 1, device=lam.device)
    tail = torch.arange(p, device=lam.device)[None, :] >= k[:, None]  # (K_max, P): eigenvalues k+1..P
    n_tail = (p - k).to(lam.dtype)
    log_g = (lam.log()[..., None, :] * tail).sum(-1) / n_tail
    log_a = ((lam[..., None, :] * tail).sum(-1) / n_tail).log()
    mdl = -snapshots * n_tail * (log_g - log_a) + 0.5 * k * (2 * p - k) * math.log(snapshots)
    return mdl.argmin(-1) + 1


ORDER_RULES = {"eigengap": eigengap_order, "mdl": mdl_order}


def model_order(
    eigvals: torch.Tensor, k_max: int, k: torch.Tensor | None, order: str, snapshots: int | None
) -> torch.Tensor:
    """The model order (B,) int64 in [1, K_max] an estimator uses: k when given (e.g. the truth), otherwise
    ORDER_RULES[order] on eigvals (B, M) real, descending. MDL needs the snapshot count L."""
    if order not in ORDER_RULES:
        raise ConfigError(f"order must be one of {sorted(ORDER_RULES)}, got {order=}")
    if k is None and order == "mdl" and not (isinstance(snapshots, int) and snapshots >= 1):
        raise ConfigError(f"the mdl order rule needs the snapshot count, got {snapshots=}")
    if k is None:
        k = ORDER_RULES[order](eigvals, k_max, snapshots)
    return k.clamp(1, k_max)


# ---------------------------------------------------------------- spectrum, peaks, refinement


SPECTRUM_ROWS = 384  # rows of the (rows, Gθ·Gu) block per GEMM; only bounds memory
# Scenes whose spectrum is searched at once. 4,096 scenes' (B, Gθ·Gu) float32 spectrum is 253 MB, whose fresh pages
# cost more than the GEMM that fills them: on 2 CPU cores spectrum + peaks of 4,096 scenes took 0.28 s in blocks of
# 512 against 0.35 s at once (same values: each scene's spectrum and peaks are its own).
SPECTRUM_SCENES = 512

# For H = I the Hermitian form (below) does N/(4K) times the flops of Σ_k |u_kᴴ a|² but writes one float per grid
# point instead of K complex ones; on 2 CPU cores it was 4× faster at N = 16, 1.3× at N = 32, 3× slower at N = 64
# (K = 3), so it is used while N/(4K) stays at most this.
HERMITIAN_FLOP_RATIO = 3.0


def _grid_power(X: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Σ_p |X[b, p, :] · a_g|² for every grid point g: X (B, P, N) complex -> (B, Gθ·Gu) float32.

    One complex64 GEMM against the grid's shared steering matrix per chunk of scenes."""
    b, p, n = X.shape
    rows = X.to(torch.complex64).reshape(b * p, n)
    chunk = max(1, SPECTRUM_ROWS // p)
    out = torch.empty(b, grid.steering.shape[1], dtype=torch.float32, device=X.device)
    for i in range(0, b, chunk):
        q = rows[i * p : (i + chunk) * p] @ grid.steering
        out[i : i + chunk] = (q.real.square() + q.imag.square()).view(-1, p, q.shape[-1]).sum(1)
    return out


def steering_norms(T: torch.Tensor, grid: Grid) -> torch.Tensor:
    """‖b‖² = ‖T a‖² = aᴴ (TᴴT) a at every grid point, per scene: T (B, M, N) complex -> (B, Gθ·Gu) float32."""
    return hermitian_coefficients(T.mH @ T) @ grid.hermitian_features


def spectrum(
    U_s: torch.Tensor, grid: Grid, T: torch.Tensor | None = None, norms: torch.Tensor | None = None
) -> torch.Tensor:
    """s = ‖U_sᴴ b‖² / ‖b‖² on the grid, (B, Gθ, Gu) float32 in [0, 1]; MUSIC's pseudo-spectrum is 1/(1 − s).

    U_s: (B, M, K) complex, signal eigenvectors of C with unused columns zeroed; T (B, M, N) the operator,
    norms its steering_norms when the caller has them. For T = None (H = I): s = ‖U_sᴴ a‖² in [0, N],
    unnormalised since ‖a‖² = N everywhere; the signal side is used because K ≪ N − K. It is aᴴ (U_s U_sᴴ) a,
    a Hermitian form, for N up to HERMITIAN_FLOP_RATIO·4K, and Σ_k |u_kᴴ a|² over a complex product beyond.
    With T, both ‖U_sᴴ T a‖² and ‖T a‖² are Hermitian forms aᴴ G a with G (N, N), evaluated as one real
    GEMM each against the grid's hermitian_features: ~8× faster on CPU than Σ_m |t_m·a|² over a
    (B·M, G) complex product for M = N/2, and the grid stays shared by every scene.
    """
    if T is None:
        n, k = U_s.shape[-2:]
        if n > HERMITIAN_FLOP_RATIO * 4 * k:
            return _grid_power(U_s.mH, grid).view(-1, *grid.shape)
        return (hermitian_coefficients(U_s @ U_s.mH) @ grid.hermitian_features).view(-1, *grid.shape)
    norms = steering_norms(T, grid) if norms is None else norms
    P = U_s.mH @ T.to(U_s.dtype)  # (B, K, N): U_sᴴ b = (U_sᴴ T) a
    signal = hermitian_coefficients(P.mH @ P) @ grid.hermitian_features
    return (signal / norms.clamp_min(1e-12)).view(-1, *grid.shape)


def _block_max(s: torch.Tensor, block: tuple[int, int]) -> tuple:
    """Each (θ, u) block's maximum of s (B, Gθ, Gu) and the grid indices iθ, iu where it sits, each (B, nθ, nu).

    Edge blocks are cut short by the grid. Two passes, u then θ, each over a view of its input: a pass over blocks
    gathered into one axis would copy the spectrum, ~70% of the peak search's time. The first maximum in (θ, u)
    row-major order wins a tie, as a max over the whole block would."""
    b, gt, gu = s.shape
    bt, bu = block
    full = gu - gu % bu
    v, w = s[..., :full].unflatten(-1, (-1, bu)).max(-1)  # (B, Gθ, Gu // bu), w: the u within its block
    iu = w + torch.arange(0, full, bu, device=s.device)
    if full < gu:
        v_end, w_end = s[..., full:].max(-1, keepdim=True)
        v, iu = torch.cat([v, v_end], -1), torch.cat([iu, w_end + full], -1)
    nt, nu = -(-gt // bt), v.shape[-1]  # nu named, not -1: an empty batch has no size to infer it from
    v = F.pad(v, (0, 0, 0, nt * bt - gt), value=-math.inf).view(b, nt, bt, nu)
    vals, wt = v.max(2)  # (B, nθ, nu), wt: the θ within its block
    it = wt + torch.arange(0, nt * bt, bt, device=s.device)[:, None]
    iu = F.pad(iu, (0, 0, 0, nt * bt - gt)).view(b, nt, bt, nu).gather(2, wt[:, :, None]).squeeze(2)
    return vals, it, iu


def find_peaks(s: torch.Tensor, block: tuple[int, int], reach: tuple[int, int], n_peaks: int) -> tuple:
    """Up to n_peaks peaks per scene by block-max NMS (DESIGN §5), strongest first; s: (B, Gθ, Gu) real.

    block: block edge in cells (θ, u); reach: how many blocks around a block it must beat (θ, u). Block maxima
    cost one pass over s; torch's max_pool2d with windows that long is ~10× slower on CPU.
    Returns grid indices iθ, iu (B, n_peaks) int64 and found (B, n_peaks) bool.
    """
    vals, it_block, iu_block = _block_max(s, block)
    nt, nu = vals.shape[1:]
    window = tuple(2 * min(r, n) + 1 for r, n in zip(reach, (nt, nu), strict=True))
    pooled = F.max_pool2d(vals[:, None], window, 1, tuple(w // 2 for w in window))[:, 0]
    keep = vals >= pooled  # the block beats every block within reach
    score = torch.where(keep, vals, torch.full_like(vals, -math.inf)).flatten(1)
    top, idx = score.topk(min(n_peaks, nt * nu), dim=1)
    it, iu = it_block.flatten(1).gather(1, idx), iu_block.flatten(1).gather(1, idx)
    found = torch.isfinite(top)
    if top.shape[1] < n_peaks:  # fewer blocks than requested peaks: pad with not-found slots
        pad = n_peaks - top.shape[1]
        it, iu, found = F.pad(it, (0, pad)), F.pad(iu, (0, pad)), F.pad(found, (0, pad))
    return it, iu, found


def _null_and_jacobian(U_s, theta, inv_r, array, T=None):
    """Residual e and its derivatives ∂e/∂θ, ∂e/∂u at theta, inv_r (B, J); each (B, M, J) complex.

    H = I (T None): e = (I − U_s U_sᴴ) a, so ‖e‖² is the null spectrum. Otherwise e = (I − U_s U_sᴴ) b / ‖b‖
    with b = T a, the normalised null spectrum, differentiated through T and through ‖b‖ (quotient rule).
    """
    a, da_t, da_r = steering_with_derivatives(theta, 1 / inv_r, array)
    da_u = da_r * (-1 / inv_r.square())[:, None, :]  # r = 1/u, so ∂/∂u = −r²·∂/∂r

    def proj(v):
        return v - U_s @ (U_s.mH @ v)

    if T is None:
        return proj(a), proj(da_t), proj(da_u)
    j = theta.shape[-1]
    bs = T @ torch.cat([a, da_t, da_u], -1)  # b, ∂b/∂θ, ∂b/∂u in one batched product
    (b, db_t, db_u), (e, e_t, e_u) = bs.split(j, -1), proj(bs).split(j, -1)
    n = b.abs().square().sum(-2, keepdim=True)  # ‖b‖², (B, 1, J)
    root = n.sqrt()

    def quotient(de, db):  # ∂(e/‖b‖) = (∂e − e·Re(bᴴ ∂b)/‖b‖²) / ‖b‖
        return (de - e * ((b.conj() * db).sum(-2, keepdim=True).real / n)) / root

    return e / root, quotient(e_t, db_t), quotient(e_u, db_u)


def refine(
    U_s: torch.Tensor, theta: torch.Tensor, inv_r: torch.Tensor, grid: Grid, steps: int, T: torch.Tensor | None = None
) -> tuple:
    """Levenberg–Marquardt on the exact null spectrum f = ‖(I − U_s U_sᴴ) b‖² / ‖b‖², batched over (B, J).

    b = T a(θ, 1/u), or a itself for T = None (H = I; ‖a‖² = N is then left out). U_s (B, M, K) complex128,
    T (B, M, N) complex128. Gauss–Newton is exact at a true null (zero residual). A step is kept only if f
    falls. The estimate stays within one NMS block (at least 1.5 cells) of its grid peak: the ridge is
    tilted, so a grid peak a fraction of a cell off in θ can sit several cells off in 1/r. It also stays
    inside the grid's θ and 1/r intervals, the region searched.
    theta radians, inv_r 1/metres, (B, J) float64.
    """
    step_t = (grid.theta[1] - grid.theta[0]).item()
    step_u = (grid.inv_r[-1] - grid.inv_r[0]).item() / max(grid.shape[1] - 1, 1)
    reach_t, reach_u = (max(1.5, b) * step for b, step in zip(grid.block, (step_t, step_u), strict=True))
    lo_t, hi_t = (theta - reach_t).clamp_min(grid.theta[0].item()), (theta + reach_t).clamp_max(grid.theta[-1].item())
    lo_u, hi_u = (inv_r - reach_u).clamp_min(grid.inv_r[0].item()), (inv_r + reach_u).clamp_max(grid.inv_r[-1].item())
    scale = torch.ones_like(theta)
    e, jt, ju = _null_and_jacobian(U_s, theta, inv_r, grid.array, T)
    f = e.abs().square().sum(-2)
    for _ in range(steps):
        g_t, g_u = (jt.conj() * e).sum(-2).real, (ju.conj() * e).sum(-2).real
        h_tt, h_uu = jt.abs().square().sum(-2), ju.abs().square().sum(-2)
        h_tu = (jt.conj() * ju).sum(-2).real
        h_tt, h_uu = h_tt * 1.001 + 1e-30, h_uu * 1.001 + 1e-30  # Marquardt damping keeps the 2×2 solve regular
        det = h_tt * h_uu - h_tu.square()
        new_t = torch.minimum(torch.maximum(theta - scale * (h_uu * g_t - h_tu * g_u) / det, lo_t), hi_t)
        new_u = torch.minimum(torch.maximum(inv_r - scale * (h_tt * g_u - h_tu * g_t) / det, lo_u), hi_u)
        e_n, jt_n, ju_n = _null_and_jacobian(U_s, new_t, new_u, grid.array, T)
        f_n = e_n.abs().square().sum(-2)
        ok = f_n < f
        theta, inv_r, f = torch.where(ok, new_t, theta), torch.where(ok, new_u, inv_r), torch.where(ok, f_n, f)
        e, jt, ju = (torch.where(ok[:, None, :], new, old) for new, old in ((e_n, e), (jt_n, jt), (ju_n, ju)))
        scale = torch.where(ok, (scale * 2).clamp_max(1.0), scale / 4)
    return theta, inv_r


def _grid_peaks(U_s: torch.Tensor, grid: Grid, T: torch.Tensor | None, norms: torch.Tensor | None, n_peaks: int):
    """find_peaks on the spectrum of U_s (B, M, K), SPECTRUM_SCENES scenes at a time; T and norms as spectrum's.
    Returns grid indices iθ, iu (B, n_peaks) int64 and found (B, n_peaks) bool."""
    parts = []
    for i in range(0, max(U_s.shape[0], 1), SPECTRUM_SCENES):  # B = 0 still makes one pass, as before the blocks
        rows = slice(i, i + SPECTRUM_SCENES)
        s = spectrum(U_s[rows], grid, None if T is None else T[rows], None if norms is None else norms[rows])
        parts.append(find_peaks(s, grid.block, grid.reach, n_peaks))
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


# ---------------------------------------------------------------- end to end


@dataclass(frozen=True)
class MusicResult:
    theta: torch.Tensor  # (B, K_max) float64, radians, strongest peak first; 0 where mask is False
    r: torch.Tensor  # (B, K_max) float64, metres; 0 where mask is False
    mask: torch.Tensor  # (B, K_max) bool, slot < K̂ and a peak was found
    k_hat: torch.Tensor  # (B,) int64, model order used
    eigvals: torch.Tensor  # (B, M) float64, descending eigenvalues of C (M = N for H = I)


def on_device_of(C: torch.Tensor, T: torch.Tensor | None, grid: Grid) -> tuple[torch.Tensor | None, Grid]:
    """T (checked to be (B, M, N) for C (B, M, M) and the grid's array; complex128, detached) and the grid, both
    on C's device: what every estimator on C does first."""
    if T is not None:
        expected = (C.shape[0], C.shape[-1], grid.array.n_elements)  # T maps the grid's array onto C's domain
        if tuple(T.shape) != expected:
            raise ConfigError(f"T must be (B, M, N) = {expected} for this C and grid, got T.shape={tuple(T.shape)}")
        T = T.detach().to(device=C.device, dtype=torch.complex128)
    return T, grid.to(C.device)


def music(
    C: torch.Tensor,
    grid: Grid,
    k_max: int,
    *,
    k: torch.Tensor | None = None,
    order: str = "eigengap",
    snapshots: int | None = None,
    T: torch.Tensor | None = None,
) -> MusicResult:
    """Near-field MUSIC on a covariance C (B, M, M) complex in the measurement domain, on C's device.

    T: (B, M, N) complex, the operator W H of core.measurement (C = T R Tᴴ); None for H = I, where C is
    the array covariance R (B, N, N) itself. k: (B,) model order to use (the truth, for true-K results);
    otherwise `order` picks it from C's eigenvalues ("eigengap" or "mdl"; MDL needs the snapshot count L).
    """
    T, grid = on_device_of(C, T, grid)
    lam, U = torch.linalg.eigh(C.detach().to(torch.complex128))
    lam, U = lam.flip(-1), U.flip(-1)
    k = model_order(lam, k_max, k, order, snapshots).to(C.device)
    slots = torch.arange(k_max, device=C.device)[None, :] < k[:, None]
    U_s = U[..., :k_max] * slots[:, None, :]
    norms = None if T is None else steering_norms(T, grid)  # ‖b‖² on the grid: spectrum and repair share it
    it, iu, found = _grid_peaks(U_s, grid, T, norms, k_max)
    theta, inv_r = grid.theta[it], grid.inv_r[iu]
    if grid.refine_steps:
        theta, inv_r = refine(U_s, theta, inv_r, grid, grid.refine_steps, T)
    mask = slots & found
    if grid.repair:
        theta, inv_r, mask = repair(U_s, theta, inv_r, mask, grid, T, norms)
    zero = torch.zeros_like(theta)
    return MusicResult(torch.where(mask, theta, zero), torch.where(mask, 1 / inv_r, zero), mask, k, lam)
