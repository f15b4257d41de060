"""A pipeline's parameters come from the run settings' declarations (components/common/settings.py)
and the few values the runner computes; its DAG wires each component's parameters by name.

`pipeline_function` makes the function `@dsl.pipeline` compiles: its signature is the settings
of that pipeline (names, types and defaults from the declarations) plus the computed values,
and its docstring describes each of them, which the Kubeflow UI shows beside the field. The DAG
body receives the parameters as `Parameters` and calls `parameters.task(component, ...)`: every
input of the component that is not wired to an upstream output is the pipeline parameter of
the same name, and a component input that is neither is an error at compile time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from components.common.kfp_component import google_docstring
from components.common.settings import pipeline_settings


@dataclass(frozen=True)
class Computed:
    """A pipeline parameter the runner computes (no flag, no config key)."""

    kind: type
    default: Any
    help: str


# The only parameters without a setting: the runner computes them for each run.
COMPUTED: dict[str, Computed] = {
    "data_fingerprint": Computed(
        str,
        "",
        "SHA-256 of the data's content, computed by the runner: part of the cache key, so "
        "changed data under the same name is never served from the cache",
    ),
    "files": Computed(
        list,
        [],
        "incremental runs: the files of the folder or prefix this run takes (relative "
        "names), chosen by the runner; empty: all of them",
    ),
    "schema_version": Computed(
        str,
        "",
        "a digest of the schema file's content, computed by the runner (part of the cache key)",
    ),
    "reference_version": Computed(
        str,
        "",
        "the champion version and schema digest the runner saw (part of the cache key, so a "
        "new champion means a new quality check)",
    ),
    "run_id": Computed(
        str,
        "",
        "the run's id: the registry version a promotion makes (empty: the Kubeflow run's id, "
        "as for a run started in the UI or by a schedule)",
    ),
}


class Parameters(Mapping[str, Any]):
    """A pipeline's parameters inside its DAG, by name."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.given = values

    def __getitem__(self, name: str) -> Any:
        return self.given[name]

    def __iter__(self) -> Any:
        return iter(self.given)

    def __len__(self) -> int:
        return len(self.given)

    def task(self, component: Any, **wired: Any) -> Any:
        """A task of `component`: the `wired` inputs as given, every other input the pipeline
        parameter of its name."""
        names = list(component.component_spec.inputs or {})
        unknown = sorted(set(wired) - set(names))
        missing = [name for name in names if name not in wired and name not in self.given]
        if unknown or missing:
            raise TypeError(
                f"component {component.name!r}: wired inputs it does not have: {unknown}; "
                f"inputs that are neither wired nor a pipeline parameter: {missing}"
            )
        return component(**{name: wired.get(name, self.given.get(name)) for name in names})


def signature_parameters(pipeline: str, computed: list[str]) -> list[inspect.Parameter]:
    """The pipeline's settings, then the computed values, as keyword parameters."""
    declared = [
        inspect.Parameter(
            s.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            # a setting the pipeline requires has no default: a run must give it
            default=inspect.Parameter.empty if pipeline in s.required else s.default,
            annotation=s.kind,
        )
        for s in pipeline_settings(pipeline)
    ]
    return declared + [
        inspect.Parameter(
            name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=COMPUTED[name].default,
            annotation=COMPUTED[name].kind,
        )
        for name in computed
    ]


def descriptions(parameters: list[inspect.Parameter]) -> dict[str, str]:
    """Each parameter's description: its setting's help, or the computed value's."""
    from components.common.settings import BY_NAME

    return {
        p.name: (BY_NAME[p.name].help if p.name in BY_NAME else COMPUTED[p.name].help)
        for p in parameters
    }


def graph_function(
    name: str,
    body: Callable[[Parameters], Any],
    parameters: list[inspect.Parameter],
    returns: Any,
    summary: str,
    described: dict[str, str] | None = None,
) -> Callable[..., Any]:
    """A function with `parameters` as its signature that runs `body` on them: what
    `@dsl.pipeline` turns into a pipeline (KFP reads the signature and the docstring)."""
    names = [p.name for p in parameters]

    def function(*args: Any, **kwargs: Any) -> Any:
        return body(Parameters({**dict(zip(names, args, strict=False)), **kwargs}))

    function.__name__ = function.__qualname__ = name
    function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=returns
    )
    function.__doc__ = google_docstring(summary, described or descriptions(parameters))
    return function


def pipeline_function(
    name: str,
    body: Callable[[Parameters], Any],
    pipeline: str,
    computed: list[str],
    returns: Any,
    summary: str,
) -> Callable[..., Any]:
    """The function of a pipeline whose parameters are the `pipeline`'s settings and the
    `computed` values."""
    return graph_function(name, body, signature_parameters(pipeline, computed), returns, summary)
