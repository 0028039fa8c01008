"""The evaluation report's schema (docs/design.md §5), checked on what `hpo evaluate` writes: a test helper."""

from __future__ import annotations

from core.evaluation import METHODS, ORDER_METHODS, ORDER_RULE_NAMES, SCHEMA_NAME, SCHEMA_VERSION

NMSE_METHODS: tuple[str, ...] = ("learned", "music_samp")  # the N×N covariances, with an NMSE against R_true


def check_schema(report: dict) -> None:
    """Raise AssertionError naming the first missing or mistyped entry of a report (e.g. one read from JSON)."""

    def need(d, key, kind, where):
        if not isinstance(d, dict) or key not in d or not isinstance(d[key], kind):
            raise AssertionError(f"evaluation report: {where}{key} missing or not {kind}")
        return d[key]

    def need_all(d, keys, kind, where):
        for key in keys:
            need(d, key, kind, where)

    if need(report, "schema_version", int, "") != SCHEMA_VERSION or report.get("schema") != SCHEMA_NAME:
        raise AssertionError(f"evaluation report: expected {SCHEMA_NAME} version {SCHEMA_VERSION}")
    num = (int, float, type(None))
    need(report, "loc_gain_db", num, "")
    config = need(report, "config", dict, "")
    methods, rules = config.get("methods", METHODS), config.get("order_rules", ORDER_RULE_NAMES)
    if "dml" in methods:
        need(report, "loc_gain_vs_best_classic_db", num, "")
    rmses = ("angle_rmse_deg", "range_rmse_m")
    for i, row in enumerate(need(report, "rows", list, "")):
        at = f"rows[{i}]."
        need_all(row, ("snr_db", "mean_beta"), (int, float), at)
        need_all(need(row, "crb", dict, at), rmses, num, at + "crb.")
        for name in methods:
            m = need(need(row, "methods", dict, at), name, dict, at + "methods.")
            where = f"{at}methods.{name}."
            keys = (*rmses, "angle_rmse_clipped_deg", "gross_rate", "angle_crb_ratio", "range_crb_ratio")
            need_all(m, (*keys, "nmse_db") if name in NMSE_METHODS else keys, num, where)
            need_all(m, ("angle_rmse_ci95", "range_rmse_ci95"), (list, type(None)), where)
            for rule in rules if name in ORDER_METHODS else ():
                need(need(m, "k_accuracy", dict, where), rule, float, where + "k_accuracy.")
                est = need(need(m, "estimated_k", dict, where), rule, dict, where + "estimated_k.")
                need_all(est, rmses, num, f"{where}estimated_k.{rule}.")
