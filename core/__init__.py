"""Physics, the aligned covariance pipeline, losses, models, training and inference.

Nothing in core/ imports optuna: the HPO layer (hpo/) builds on it, never the reverse.
"""
