"""The Optuna layer: study specs, objectives, storage, runner and the `hpo` CLI. Builds on core/."""
