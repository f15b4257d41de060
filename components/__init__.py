"""stablepipe pipeline stages: one subpackage per stage, plus `common`."""
