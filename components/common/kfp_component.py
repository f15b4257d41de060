"""The one place that decides how stage functions become KFP components.

Every stage is built with `install_kfp_package=False` and no `packages_to_install`: on the
cluster the project's own image (which has kfp and the project installed) runs it, and locally
kfp.local's SubprocessRunner(use_venv=False) runs it in the current environment, so a task costs
a Python start-up and no pip run. The image can be overridden at compile time with
`STABLEPIPE_IMAGE` (for a private registry mirror).

A component parameter that is a run setting (components/common/settings.py) has the setting's
name and type, and its description comes from the setting's help: the component's docstring
describes only its artifacts and the values the pipeline computes.
"""

from __future__ import annotations

import inspect
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


def google_docstring(
    summary: str, arguments: dict[str, str], returns: str | None = None, body: str = ""
) -> str:
    """A Google-style docstring (what KFP parses into the spec's descriptions)."""

    def indented(text: str) -> str:
        return "\n        ".join(text.strip().splitlines())

    parts = [summary.strip()]
    if body.strip():
        parts.append(body.strip())
    if arguments:
        described = (f"    {name}: {indented(text)}" for name, text in arguments.items())
        parts.append("Args:\n" + "\n".join(described))
    if returns:
        parts.append(f"Returns:\n    {indented(returns)}")
    return "\n\n".join(parts) + "\n"


def with_setting_descriptions(func: Callable[..., Any]) -> str:
    """`func`'s docstring with every parameter that is a setting described by its help."""
    import docstring_parser

    from components.common.settings import BY_NAME

    parsed = docstring_parser.parse(inspect.getdoc(func) or "")
    described = {param.arg_name: param.description or "" for param in parsed.params}
    arguments: dict[str, str] = {}
    for name in inspect.signature(func).parameters:
        if name in described:
            arguments[name] = described[name]
        elif name in BY_NAME:
            arguments[name] = BY_NAME[name].help[0].upper() + BY_NAME[name].help[1:] + "."
    returns = parsed.returns.description if parsed.returns else None
    return google_docstring(
        parsed.short_description or "", arguments, returns, parsed.long_description or ""
    )


def check_names(func: Callable[..., Any]) -> None:
    """A parameter named like a setting must be that setting (its type), never an artifact:
    the component passes its settings to its stage's entry function by name."""
    from components.common.settings import BY_NAME

    for name, parameter in inspect.signature(func).parameters.items():
        if name in BY_NAME and parameter.annotation is not BY_NAME[name].kind:
            raise TypeError(
                f"{func.__name__}: the parameter {name!r} is the setting of that name, of type "
                f"{BY_NAME[name].kind.__name__}; got {parameter.annotation!r}: rename it"
            )


def stage_component(func: Callable[..., Any]) -> Any:
    """Turn a stage's adapter function into a KFP lightweight component on the project image.

    Inside a running task kfp's executor exposes only its runtime part of `kfp.dsl` (no
    `dsl.component`); there the stage packages are imported for their logic only, so the plain
    function is returned.
    """
    if not hasattr(dsl, "component"):
        return func
    check_names(func)
    func.__doc__ = with_setting_descriptions(func)
    return dsl.component(func, base_image=IMAGE, install_kfp_package=False)
