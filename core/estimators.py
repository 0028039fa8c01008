"""The localisers a pipeline can run on a measurement-domain covariance C, by name (DESIGN §5).

Each takes (C (B, M, M) complex, grid, k_max, *, k, order, snapshots, T) and returns a core.music.MusicResult, so
every method goes through the same scoring. PipelineConfig.estimator names the one inference runs on C(R_blend);
the search objective and the calibrated blend compare it with the same estimator on the classic C, so that β = 1
is that classic method exactly.

    music   near-field MUSIC (core.music): needs rank(P) = K
    dml     deterministic ML by alternating projection (core.dml): survives coherent sources and L < K, at
            ~15 MUSIC runs per scene
"""

from __future__ import annotations

from core.dml import dml
from core.music import music

ESTIMATORS = {"music": music, "dml": dml}
