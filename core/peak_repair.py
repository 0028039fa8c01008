"""Repair of MUSIC peaks that leave part of the signal subspace unexplained: one RAP-MUSIC step (DESIGN §5).

    residual(Â) = ‖(I − P_Â) U_s‖_F²          P_Â the projector onto the estimated steering vectors
    s_j(g) = ‖U_sᴴ P⊥ a(g)‖² / ‖P⊥ a(g)‖²     P⊥ = I − P_Â₋ⱼ: the estimates other than slot j projected out

A scene whose residual exceeds RESIDUAL_FLAG is re-searched slot by slot at the peak of s_j, refined below the grid
step by a parabola on each axis. Everything is batched over the flagged scenes. Numerator and denominator of s_j
are Hermitian forms in a, aᴴ (P⊥U_s)(P⊥U_s)ᴴ a and aᴴ P⊥ a, so each is one real GEMM against the grid's
hermitian_features (core.linalg), with no (scenes, K, grid) complex intermediates. In the measurement domain
(T = W H given) b = T a replaces a, U_s is C's, the forms are lifted to the array by Tᴴ · T, and ‖b‖² (per scene
and grid point, from core.music) replaces N.
"""

from __future__ import annotations

import torch

from core.array import steering
from core.linalg import hermitian_coefficients

RESIDUAL_FLAG = 0.5  # subspace-fit residual above which a scene is re-searched (≈ 1 per missed source)
ACCEPT_RATIO = 0.5  # a replacement must at least halve the residual
MIN_LEAKAGE = 0.25  # grid points whose ‖P⊥b‖²/‖b‖² is below this sit on an estimate already held: skipped
CHUNK = 256  # flagged scenes per batch of grid work, bounds memory: a few (CHUNK, Gθ·Gu) float32


def _gram_solve(A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """(AᴴA + εI)⁻¹ X for A (B, N, K) with possibly zeroed columns, X (B, K, G); a zero column adds nothing.

    The K×K system is solved for the identity and then applied: a batched solve with G right-hand sides is
    several times slower than one small solve and a GEMM."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    gram = A.mH @ A + 1e-9 * A.shape[-2] * eye
    inv, info = torch.linalg.solve_ex(gram, eye.expand_as(gram))
    singular = info != 0
    if singular.any():
        # Two estimates on the same point make AᴴA singular, and ε is below complex64's resolution: those
        # scenes take the pseudo-inverse (the repeated column then counts once); the others keep the solve.
        inv[singular] = torch.linalg.pinv(gram[singular], hermitian=True)
    return inv @ X


def _sq(z: torch.Tensor) -> torch.Tensor:
    """|z|² without the square root of abs()."""
    return z.real.square() + z.imag.square()


def fit_residual(U_s: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """‖(I − P_A) U_s‖_F² per scene: U_s (B, N, K) with unused columns zeroed, A (B, N, K) likewise. (B,) real."""
    C = A.mH @ U_s
    explained = (C.conj() * _gram_solve(A, C)).sum((-2, -1)).real
    return _sq(U_s).sum((-2, -1)) - explained


def _steer(theta: torch.Tensor, inv_r: torch.Tensor, grid, T: torch.Tensor | None) -> torch.Tensor:
    """Steering vectors of the domain: a (B, N, J), or b = T a (B, M, J) for T (B, M, N) given."""
    a = steering(theta, 1 / inv_r, grid.array)
    return a if T is None else T.to(a.dtype) @ a


def repair(
    U_s: torch.Tensor,
    theta: torch.Tensor,
    inv_r: torch.Tensor,
    active: torch.Tensor,
    grid,
    T: torch.Tensor | None = None,
    norms: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Re-search the scenes whose estimates leave the signal subspace unexplained.

    U_s (B, M, K_max) complex128 with inactive columns zeroed; theta, inv_r (B, K_max) float64 radians and 1/m;
    active (B, K_max) bool, the slots holding an estimate; grid: core.grid.Grid. T (B, M, N) complex128, the
    measurement operator, with norms (B, Gθ·Gu) = ‖T a‖² on the grid; both None for H = I (M = N, ‖a‖² = N).
    Returns theta, inv_r, active with the repaired scenes' slots re-estimated.
    """
    A = _steer(theta, inv_r, grid, T).to(U_s.dtype) * active[:, None, :]
    flagged = (fit_residual(U_s, A) > RESIDUAL_FLAG).nonzero()[:, 0]
    theta, inv_r, active = theta.clone(), inv_r.clone(), active.clone()
    used = _sq(U_s).sum(-2) > 0  # (B, K_max): slots below the model order
    norms = A.shape[-2] if T is None else norms  # ‖a‖² = N for H = I
    for idx in flagged.split(CHUNK):
        t, u, a = _rap_search(U_s[idx], A[idx], used[idx], grid, *_of_scenes(T, norms, idx))
        theta[idx], inv_r[idx] = torch.where(a, t, theta[idx]), torch.where(a, u, inv_r[idx])
        active[idx] |= a
    return theta, inv_r, active


def _of_scenes(T: torch.Tensor | None, norms, rows: torch.Tensor) -> tuple:
    """T and norms (see _rap_search) of the scenes `rows`: for H = I, (None, N), which holds for every scene."""
    return (None, norms) if T is None else (T[rows], norms[rows])


def _rap_spectrum(U_s, A, j: int, grid, T, norms) -> torch.Tensor:
    """s_j(g) = ‖U_sᴴ P⊥ b(g)‖² / ‖P⊥ b(g)‖² with slot j left out of A; (F, G), 0 on the held estimates.

    U_s (F, M, K), A (F, M, K_max) in the domain's precision; norms: ‖b(g)‖², N (an int) for H = I or (F, G)."""
    keep = torch.ones(A.shape[-1], dtype=A.dtype, device=A.device)
    keep[j] = 0
    A_j = A * keep
    perp = torch.eye(A.shape[-2], dtype=A.dtype, device=A.device) - A_j @ _gram_solve(A_j, A_j.mH)  # P⊥ (F, M, M)
    X = perp @ U_s  # U_sᴴ P⊥ b = (P⊥ U_s)ᴴ b: P⊥ is Hermitian
    if T is not None:  # forms in b = T a, lifted to forms in a
        X, perp = T.mH.to(X.dtype) @ X, T.mH.to(X.dtype) @ perp @ T.to(X.dtype)
    features = grid.hermitian_features
    leak = hermitian_coefficients(perp) @ features  # ‖P⊥ b‖²
    # in place: each (F, Gθ·Gu) temporary is megabytes of fresh pages, which cost as much as a GEMM here; ~(>)
    # keeps torch.where's rule for a NaN leak (0)
    s = (hermitian_coefficients(X @ X.mH) @ features).div_(leak.clamp_min(1e-9))
    return s.masked_fill_(~(leak > MIN_LEAKAGE * norms), 0.0)


def _peak(s: torch.Tensor, grid) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax of s (F, Gθ·Gu) with a parabola through its neighbours on each axis: θ (F,) radians, 1/r (F,) 1/m.

    The estimate stays inside the grid's θ and 1/r intervals (at an edge the parabola would step half a cell out).
    """
    gt, gu = grid.shape
    s = s.view(-1, gt, gu)
    g = s.flatten(1).argmax(-1)
    it, iu = g // gu, g % gu
    rows = torch.arange(s.shape[0], device=s.device)

    def offset(lo, mid, hi):
        curv = lo - 2 * mid + hi
        return torch.where(curv < 0, 0.5 * (lo - hi) / curv.clamp_max(-1e-12), torch.zeros_like(mid)).clamp(-0.5, 0.5)

    mid = s[rows, it, iu]
    d_t = offset(s[rows, (it - 1).clamp_min(0), iu], mid, s[rows, (it + 1).clamp_max(gt - 1), iu])
    d_u = offset(s[rows, it, (iu - 1).clamp_min(0)], mid, s[rows, it, (iu + 1).clamp_max(gu - 1)])
    step_t = grid.theta[1] - grid.theta[0]
    step_u = grid.inv_r[1] - grid.inv_r[0] if gu > 1 else torch.zeros_like(step_t)
    theta = (grid.theta[it] + d_t * step_t).clamp(grid.theta[0], grid.theta[-1])
    return theta, (grid.inv_r[iu] + d_u * step_u).clamp(grid.inv_r[0], grid.inv_r[-1])


def _replacement(U_s, A, j: int, grid, T, norms) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slot j's RAP re-estimate in each scene, the other slots projected out: θ, 1/r (F,) and its steering vector
    (F, M) in A's dtype. Arguments as _rap_spectrum's."""
    t, u = _peak(_rap_spectrum(U_s, A, j, grid, T, norms), grid)
    return t, u, _steer(t[:, None], u[:, None], grid, T)[..., 0].to(A.dtype)


def _rap_search(U_s, A, used, grid, T, norms):
    """RAP re-search of a chunk of flagged scenes: (θ, 1/r) and the replaced-slot mask, each (F, K_max).

    A (F, M, K_max): the domain's estimated steering vectors; T (F, M, N) or None, norms (F, G) or N: see repair.
    The slot whose RAP replacement lowers the residual most is replaced; then, in the scenes where that
    halved the residual, one sweep re-estimates every used slot with the others projected out (a merged
    peak sits between its two sources until its partner has been found)."""
    f, _, k_max = A.shape
    before = fit_residual(U_s, A)
    best, choice = before.clone(), torch.full((f,), -1, dtype=torch.int64, device=A.device)
    theta = torch.zeros(f, k_max, dtype=torch.float64, device=A.device)
    inv_r = torch.ones_like(theta)
    for j in range(k_max):
        # only the scenes whose model order uses slot j: the grid GEMMs are the repair's cost, and slot j of a
        # scene with K <= j is never replaced
        rows = used[:, j].nonzero()[:, 0]
        U_j, A_j = U_s[rows], A[rows]
        t, u, A_j[:, :, j] = _replacement(U_j, A_j, j, grid, *_of_scenes(T, norms, rows))
        res = fit_residual(U_j, A_j)
        better = res < best[rows]
        best[rows], choice[rows] = torch.where(better, res, best[rows]), torch.where(better, j, choice[rows])
        theta[rows, j] = torch.where(better, t, theta[rows, j])
        inv_r[rows, j] = torch.where(better, u, inv_r[rows, j])
    ok = (choice >= 0) & (best < ACCEPT_RATIO * before)
    replaced = torch.nn.functional.one_hot(choice.clamp_min(0), k_max).bool() & ok[:, None]
    swept = used & ok[:, None]
    # The sweep runs in the scenes whose replacement was accepted only: few of the flagged ones (3 of 195 among
    # 2,000 classic scenes), and each slot's re-search costs two grid GEMMs per scene.
    keep = ok.nonzero()[:, 0]
    if len(keep) == 0:
        return theta, inv_r, swept | replaced
    U_k, (T_k, norms_k) = U_s[keep], _of_scenes(T, norms, keep)
    th, ir, on = theta[keep], inv_r[keep], swept[keep]
    A_k = torch.where(replaced[keep, None, :], _steer(th, ir, grid, T_k).to(A.dtype), A[keep])
    for j in range(k_max):
        t, u, a_j = _replacement(U_k, A_k, j, grid, T_k, norms_k)
        A_k[:, :, j] = torch.where(on[:, j, None], a_j, A_k[:, :, j])
        th[:, j], ir[:, j] = torch.where(on[:, j], t, th[:, j]), torch.where(on[:, j], u, ir[:, j])
    theta[keep], inv_r[keep] = th, ir
    return theta, inv_r, swept | replaced
