"""Deterministic maximum likelihood by alternating projection (Ziskind & Wax 1988): the classic estimator that
keeps working where MUSIC loses the signal subspace (DESIGN §5).

MUSIC needs rank(P) = K: coherent sources (one waveform) and fewer snapshots than sources (L < K) leave the
sample covariance with fewer signal eigenvectors than sources. The deterministic ML estimate

    θ̂, r̂ = argmax tr(P_B C),   P_B the projector onto span{b(θ_1, r_1) … b(θ_K, r_K)},   b = T a

needs no rank at all: the data only have to lie in the span of K steering vectors. The textbook decorrelators
do not carry over to a near-field ULA: forward–backward averaging maps a(θ, r) to conj(a(−θ, r)), which is off
the manifold, and the Fresnel phase k·x²·cos²θ/(2r) makes a shifted subarray see a source-dependent linear
phase, so spatial smoothing averages different steering matrices. Alternating projection maximises one source
at a time with the others fixed, where adding b to span(Q) adds

    f(b) = bᴴ Π⊥ C Π⊥ b / bᴴ Π⊥ b,   Π⊥ = I − Q (QᴴQ)⁻¹ Qᴴ,

to the trace. Both forms are Hermitian forms aᴴ G a in the array's steering vector, so the whole grid costs one
real GEMM against the grid's hermitian_features (as core.music's spectrum does). Sources start greedily from
beamformer peaks and from MUSIC's estimate, rounds of alternating projection re-place each one, the start with
the largest criterion wins, and joint Newton steps move its sources off the grid.
"""

from __future__ import annotations

import math

import torch

from core.array import steering
from core.grid import Grid
from core.linalg import hermitian_coefficients
from core.music import MusicResult, find_peaks, model_order, music, on_device_of, steering_norms

STARTS = 2  # alternating projections from this many beamformer peaks; the best criterion on the grid wins
SWEEPS = 4  # alternating-projection rounds after the greedy start; each re-places every source on the grid
POLISH_STEPS = 8  # joint Newton steps off the grid
FD_STEP = 0.05  # finite-difference step, in grid steps: the criterion is smooth on the scale of the resolution
MAX_STEP = 3.0  # the largest Newton move of one coordinate, in grid steps
BACKTRACK = 4  # step halvings tried before a Newton step is given up
RESOLVED = 0.05  # a grid point whose b keeps less than this share of ‖b‖² off span(Q) is one already taken
RANK_FLOOR = 1e-5  # eigenvalues below this share of the largest are float32 rounding: C's numerical rank ends there


def _complement(cols: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    """Π⊥ (B, M, M) onto the complement of the used (B, K_max) columns of cols (B, M, K_max)."""
    cols = cols * used[:, None, :]
    gram = cols.mH @ cols + torch.diag_embed((~used).to(cols.dtype))  # identity where a column is unused
    eye = torch.eye(cols.shape[-2], dtype=cols.dtype, device=cols.device)
    return eye - cols @ torch.linalg.solve(gram, cols.mH)


def _grid_gain(C, proj, grid, T, norms) -> torch.Tensor:
    """f on every grid point (B, Gθ·Gu) float32; −inf where b lies (almost) in span(Q).

    Numerator and denominator are Hermitian forms aᴴ G a, one real GEMM each against the grid's
    hermitian_features: the (B, G) outputs stay small, where a product with the steering matrix itself would
    write M complex values per scene and grid point."""
    X = proj if T is None else proj @ T  # Π⊥ T: (B, M, N)
    num = hermitian_coefficients(X.mH @ C @ X) @ grid.hermitian_features
    den = hermitian_coefficients(X.mH @ X) @ grid.hermitian_features
    return (num / den.clamp_min(1e-30)).masked_fill_(den <= RESOLVED * norms, -math.inf)


def _vectors(theta, inv_r, grid, T) -> torch.Tensor:
    """b = T a(θ, 1/u) (..., M, J) complex128 for theta, inv_r (..., J)."""
    a = steering(theta, 1 / inv_r, grid.array).to(torch.complex128)
    return a if T is None else T @ a


def _explained(C, theta, inv_r, used, grid, T) -> torch.Tensor:
    """tr(P_B C), the DML criterion, for candidate source sets theta, inv_r (B, J, K_max): (B, J) float64.

    Columns of unused slots are zeroed and the Gram matrix gets 1 there, so they add nothing."""
    Tj = None if T is None else T[:, None]
    b = _vectors(theta, inv_r, grid, Tj) * used[:, None, None, :]  # (B, J, M, K_max)
    gram = b.mH @ b + torch.diag_embed((~used).to(b.dtype))[:, None]
    return torch.linalg.solve(gram, b.mH @ C[:, None] @ b).diagonal(dim1=-2, dim2=-1).real.sum(-1)


def criterion(C, theta, r, used, grid: Grid, T=None) -> torch.Tensor:
    """tr(P_B C), what dml() maximises, at each scene's sources theta, r (B, K_max: radians, metres) where used
    (B, K_max) bool, for C (B, M, M): (B,) float64. At dml()'s estimate it is at least its value at the true sources
    when the search found the maximum; an error left there is the estimator's, not the search's."""
    C = C.detach().to(torch.complex128)
    T, grid = on_device_of(C, T, grid)
    inv_r = torch.where(used, 1 / r.to(torch.float64).clamp_min(1e-9), grid.inv_r[0].to(torch.float64))
    return _explained(C, theta.to(torch.float64)[:, None], inv_r[:, None], used, grid, T)[:, 0]


def _polish(C, theta, inv_r, used, grid, T):
    """Newton ascent of tr(P_B C) in all 2·K_max coordinates at once (sources couple, coherent ones strongly),
    from the grid's estimate: gradient and Hessian by central differences, the Hessian made negative definite,
    the step halved until the criterion rises. theta, inv_r (B, K_max); returns them moved."""
    b, k = theta.shape
    steps = torch.tensor([(grid.theta[1] - grid.theta[0]).item()] * k + [
        (grid.inv_r[-1] - grid.inv_r[0]).item() / max(grid.shape[1] - 1, 1) or 1.0] * k, dtype=torch.float64,
        device=C.device)  # fmt: skip
    lo = torch.cat([grid.theta[0].expand(k), grid.inv_r[0].expand(k)]).to(torch.float64) / steps
    hi = torch.cat([grid.theta[-1].expand(k), grid.inv_r[-1].expand(k)]).to(torch.float64) / steps
    live = torch.cat([used, used], -1).to(torch.float64)  # (B, 2K): unused slots never move
    n = 2 * k
    eye = torch.eye(n, dtype=torch.float64, device=C.device)
    pairs = torch.triu_indices(n, n, 1, device=C.device)
    signs = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64, device=C.device)
    # Offsets (in grid steps) of every point the differences need: 0, ±h·e_i, and ±h·e_i ± h·e_j for i < j.
    cross = (signs[:, None, :, None] * eye[pairs].transpose(0, 1)[None]).sum(-2).reshape(-1, n)  # (4·P, n)
    offsets = torch.cat([torch.zeros(1, n, dtype=torch.float64, device=C.device), eye, -eye, cross]) * FD_STEP

    def value(x, rows):  # x (R, J, 2K) in grid steps, of the scenes `rows`
        y = x * steps
        return _explained(C[rows], y[..., :k], y[..., k:], used[rows], grid, None if T is None else T[rows])

    x = torch.cat([theta, inv_r], -1) / steps
    rows = torch.arange(b, device=C.device)
    for _ in range(POLISH_STEPS):
        xr, lr = x[rows], live[rows]
        f = value(xr[:, None, :] + offsets * lr[:, None, :], rows)
        f0, plus, minus, quad = f[:, 0], f[:, 1 : n + 1], f[:, n + 1 : 2 * n + 1], f[:, 2 * n + 1 :]
        grad = (plus - minus) / (2 * FD_STEP)
        hess = torch.diag_embed((plus - 2 * f0[:, None] + minus) / FD_STEP**2)
        q = quad.view(len(rows), 4, pairs.shape[1])  # P named, not -1: no rows left has no size to infer it from
        off = (q[:, 0] - q[:, 1] - q[:, 2] + q[:, 3]) / (4 * FD_STEP**2)
        hess[:, pairs[0], pairs[1]] = off
        hess[:, pairs[1], pairs[0]] = off
        hess = hess * lr[:, :, None] * lr[:, None, :] - torch.diag_embed(1 - lr)  # frozen slots: −1, g = 0
        lam, V = torch.linalg.eigh(hess)
        floor = 1e-6 * lam.abs().amax(-1, keepdim=True).clamp_min(1e-30)
        lam = torch.minimum(lam, -floor)  # ascent direction even where f is not concave
        step = -(V @ ((V.mT @ (grad * lr)[..., None]) / lam[..., None]))[..., 0]
        step = step * (MAX_STEP / step.abs().amax(-1, keepdim=True).clamp_min(MAX_STEP))
        moved = torch.zeros_like(f0, dtype=torch.bool)
        for _ in range(BACKTRACK):
            cand = torch.minimum(torch.maximum(xr + step, lo), hi)
            better = value(cand[:, None, :], rows)[:, 0] > f0
            xr, moved = torch.where(better[:, None], cand, xr), moved | better
            step = torch.where(better[:, None], torch.zeros_like(step), step / 2)
        x[rows] = xr
        # a scene no halving improved is where it was, and the same step would fail again: later steps skip it
        rows = rows[moved]
        if len(rows) == 0:
            break
    y = x * steps
    return y[:, :k], y[:, k:]


def dml(
    C: torch.Tensor,
    grid: Grid,
    k_max: int,
    *,
    k: torch.Tensor | None = None,
    order: str = "eigengap",
    snapshots: int | None = None,
    T: torch.Tensor | None = None,
) -> MusicResult:
    """Alternating-projection DML on a covariance C (B, M, M) of the measurement domain; the arguments and the
    result are those of core.music.music, so both run through the same scoring. k (B,): the model order to use;
    otherwise `order` picks it from C's eigenvalues, as for MUSIC."""
    C = C.detach().to(torch.complex128)
    T, grid = on_device_of(C, T, grid)
    lam = torch.linalg.eigvalsh(C).flip(-1)
    k = model_order(lam, k_max, k, order, snapshots).to(C.device)
    b, m = C.shape[:2]
    slot = torch.arange(k_max, device=C.device)
    wanted = slot[None, :] < k[:, None]
    norms = (
        torch.full((1, grid.steering.shape[1]), float(grid.array.n_elements), device=C.device)
        if T is None
        else steering_norms(T, grid)
    )
    a_grid, gu = grid.steering.to(torch.complex128), grid.shape[1]
    C32, T32 = C.to(torch.complex64), None if T is None else T.to(torch.complex64)  # the grid search's precision

    every = slice(None)

    def gain(cols, others, rows=every):  # f on the grid for the scenes `rows`, the others' columns fixed: (R, G)
        proj = _complement(cols, others).to(torch.complex64)
        return _grid_gain(C32[rows], proj, grid, None if T is None else T32[rows], norms if T is None else norms[rows])

    def column(index, rows=every):  # b at grid points index (R,) of the scenes `rows`: (R, M)
        a = a_grid[:, index].mT[..., None]
        return (a if T is None else T[rows] @ a)[..., 0]

    def alternate(start, placed):  # AP from the grid points start (B, K_max) where placed (B, K_max): indices, used
        a = a_grid[:, start].permute(1, 0, 2)  # (B, N, K_max)
        cols = torch.where(placed[:, None, :], a if T is None else T @ a, 0)
        index, used = torch.where(placed, start, 0), placed.clone()

        def place(j, rows=every):
            g = gain(cols[rows], (used & (slot != j))[rows], rows)
            best = g.argmax(-1)
            ok = wanted[rows, j] & torch.isfinite(g.gather(1, best[:, None])[:, 0])
            index[rows, j] = torch.where(ok, best, index[rows, j])
            cols[rows, :, j] = torch.where(ok[:, None], column(best, rows), cols[rows, :, j])
            used[rows, j] = used[rows, j] | ok

        for j in range(k_max):  # greedy: each missing source where it adds most to what the others explain
            if not bool((wanted[:, j] & ~used[:, j]).any()):
                continue
            keep = used[:, j].clone()
            before_index, before_col = index[:, j].clone(), cols[..., j].clone()
            place(j)
            index[:, j] = torch.where(keep, before_index, index[:, j])
            cols[..., j] = torch.where(keep[:, None], before_col, cols[..., j])
        # A sweep that leaves a scene as it was would leave it so again: later sweeps re-place the others only
        rows = torch.arange(b, device=C.device)
        for _ in range(SWEEPS):
            before = index[rows].clone(), used[rows].clone()
            for j in range(k_max):
                place(j, rows)
            rows = rows[(index[rows] != before[0]).any(-1) | (used[rows] != before[1]).any(-1)]
            if len(rows) == 0:
                break
        return index, used

    # Starts: source 0 at each of the STARTS strongest beamformer peaks (NMS as in MUSIC), so that a coherent mix
    # whose strongest peak lies between its sources still has starts at the sources themselves; and MUSIC's own
    # estimate, so that where MUSIC is right (uncorrelated sources, high SNR) DML's criterion is at least as high.
    first = gain(torch.zeros(b, m, k_max, dtype=torch.complex128, device=C.device), wanted & False)
    it, iu, found = find_peaks(first.view(b, *grid.shape), grid.block, grid.reach, STARTS)
    peaks = torch.where(found, it * gu + iu, first.argmax(-1, keepdim=True))
    one = slot[None, :] == 0
    starts = [(peaks[:, s : s + 1].expand(b, k_max), one.expand(b, k_max)) for s in range(STARTS)]
    # MUSIC's start only for the sources C's rank supports: past it (L < K) MUSIC would take a signal vector from the
    # null space, an arbitrary choice that float rounding flips, e.g. between C(R_samp) and the classic C; the
    # greedy step of `alternate` places the rest
    rank = (lam > RANK_FLOOR * lam[:, :1]).sum(-1).to(k.device)
    est = music(C, grid, k_max, k=torch.minimum(k, rank.clamp_min(1)), T=T)
    step_t = (grid.theta[1] - grid.theta[0]).item()
    step_u = (grid.inv_r[-1] - grid.inv_r[0]).item() / max(gu - 1, 1) or 1.0
    i_t = ((est.theta - grid.theta[0]) / step_t).round().long().clamp(0, grid.shape[0] - 1)
    i_u = ((1 / est.r.clamp_min(1e-9) - grid.inv_r[0]) / step_u).round().long().clamp(0, gu - 1)
    starts.append((i_t * gu + i_u, est.mask & wanted))
    best_value = torch.full((b,), -math.inf, dtype=torch.float64, device=C.device)
    for s, (start, placed) in enumerate(starts):
        index, used = alternate(start, placed)
        theta, inv_r = grid.theta[index // gu], grid.inv_r[index % gu]
        value = _explained(C, theta[:, None], inv_r[:, None], used, grid, T)[:, 0]
        better = (value > best_value)[:, None]
        if s == 0:
            best = (theta, inv_r, used)
        best = tuple(torch.where(better, new, old) for new, old in zip((theta, inv_r, used), best, strict=True))
        best_value = torch.where(better[:, 0], value, best_value)
    theta, inv_r, used = best
    theta, inv_r = _polish(C, theta.clone(), inv_r.clone(), used, grid, T)
    zero = torch.zeros_like(theta)
    return MusicResult(torch.where(used, theta, zero), torch.where(used, 1 / inv_r, zero), used, k, lam)
