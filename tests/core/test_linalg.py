"""The signal projector: exact gradient where eigenvalues are apart, finite gradient where they repeat."""

from __future__ import annotations

import pytest
import torch

from core.linalg import eigh_signal_projector, stable_signal_projector


def _hermitian_with_spectrum(eigvals, seed=0, dtype=torch.complex128):
    gen = torch.Generator().manual_seed(seed)
    n = len(eigvals)
    X = torch.randn(n, n, generator=gen, dtype=dtype)
    Q, _ = torch.linalg.qr(X)
    return (Q * torch.tensor(eigvals, dtype=dtype)) @ Q.mH


def test_projector_is_the_top_k_eigenprojector():
    R = _hermitian_with_spectrum([5.0, 3.0, 1.0, 0.5, 0.2])[None]
    P = stable_signal_projector(R, torch.tensor([2])).P
    _, U = torch.linalg.eigh(R)
    expected = U[..., -2:] @ U[..., -2:].mH
    torch.testing.assert_close(P, expected)


def test_backward_matches_float64_finite_differences_on_separated_spectrum():
    R0 = _hermitian_with_spectrum([6.0, 4.0, 2.5, 1.0, 0.4, 0.1], seed=1)
    W = _hermitian_with_spectrum([1.0, -2.0, 0.5, 3.0, -1.0, 0.7], seed=2)

    def f(X):
        R = R0 + 0.5 * (X + X.mH)
        P = stable_signal_projector(R[None], torch.tensor([3]), 1e-12).P[0]
        return (P * W.conj()).sum().real

    X = torch.zeros(6, 6, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(f, (X,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("k", [2, 3])  # k = 3 also puts a zero eigenvalue in the signal set: the K/K+1 gap is 0
def test_backward_is_finite_on_rank_deficient_input_where_plain_eigh_is_not(k):
    R = torch.diag(torch.tensor([4.0, 2.0, 0, 0, 0, 0, 0, 0])).to(torch.complex64)[None]  # six exact zeros
    grads = {}
    for name, proj in {"stable": stable_signal_projector, "eigh": eigh_signal_projector}.items():
        Rg = R.clone().requires_grad_(True)
        proj(Rg, torch.tensor([k])).P.real.sum().backward()
        grads[name] = Rg.grad
    assert torch.isfinite(grads["stable"]).all()
    assert not torch.isfinite(grads["eigh"]).all()


def test_backward_is_finite_on_identity():
    R = torch.eye(6, dtype=torch.complex64).expand(3, 6, 6).clone().requires_grad_(True)
    stable_signal_projector(R, torch.tensor([1, 2, 3])).P.abs().square().sum().backward()
    assert torch.isfinite(R.grad).all()


def test_eigenvalues_come_out_descending_with_their_exact_gradient():
    R0 = _hermitian_with_spectrum([6.0, 4.0, 2.5, 1.0, 0.4, 0.1], seed=3)
    w = torch.tensor([0.3, -1.0, 2.0, 0.5, -0.7, 1.1], dtype=torch.float64)

    def f(X):
        S = stable_signal_projector((R0 + 0.5 * (X + X.mH))[None], torch.tensor([2]), 1e-12)
        return (S.eigvals[0] * w).sum() + (S.P[0] * R0.conj()).sum().real  # both outputs in one backward

    X = torch.zeros(6, 6, dtype=torch.complex128, requires_grad=True)
    torch.testing.assert_close(
        stable_signal_projector(R0[None], torch.tensor([2])).eigvals[0],
        torch.tensor([6.0, 4.0, 2.5, 1.0, 0.4, 0.1], dtype=torch.float64),
    )
    assert torch.autograd.gradcheck(f, (X,), eps=1e-6, atol=1e-6)
