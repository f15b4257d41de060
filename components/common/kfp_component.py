"""The one place that decides how stage functions become KFP components.

Every stage is built with `install_kfp_package=False` and no `packages_to_install`: on the
cluster the project's own image (which has kfp and the project installed) runs it, and locally
kfp.local's SubprocessRunner(use_venv=False) runs it in the current environment, so a task costs
a Python start-up and no pip run. The image can be overridden at compile time with
`STABLEPIPE_IMAGE` (for a private registry mirror).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from kfp import dsl

try:
    PACKAGE_VERSION = version("stablepipe")
except PackageNotFoundError:  # running from a source tree that is not installed
    PACKAGE_VERSION = "0.0.0"

DEFAULT_IMAGE = f"ghcr.io/stablepipe/stablepipe:{PACKAGE_VERSION}"
IMAGE = os.environ.get("STABLEPIPE_IMAGE", DEFAULT_IMAGE)


def stage_component(func: Callable[..., Any]) -> Any:
    """Turn a stage's adapter function into a KFP lightweight component on the project image.

    Inside a running task kfp's executor exposes only its runtime part of `kfp.dsl` (no
    `dsl.component`); there the stage packages are imported for their logic only, so the plain
    function is returned.
    """
    if not hasattr(dsl, "component"):
        return func
    return dsl.component(func, base_image=IMAGE, install_kfp_package=False)
