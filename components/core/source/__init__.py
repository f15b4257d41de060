"""A data source: what `--data` names (its kind), its files, its fingerprint, and reading it."""
