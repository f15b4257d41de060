"""The compiled pipeline through the KFP backend's own compiler (backend/src/v2/compiler/
argocompiler, the package the API server turns a run into an Argo Workflow with), built with Go
from tests/support/argocompiler (a small wrapper module) and cached in .venv/argocompiler.

Skipped only when that module cannot be fetched or built; the reason is the Go tool's own last
line. On the machines this project was built on, the Go module proxy serves the KFP root module
at 2.14.3 but not its `api` module at the same commit (the backend builds with
`replace => ./api`), so the build stops there (see the closing note of issue 17)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.pipeline.conftest import stablepipe

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "tests" / "support" / "argocompiler"
CACHE = ROOT / ".venv" / "argocompiler"
OUR_IMAGE = "ghcr.io/stablepipe/stablepipe:"


@pytest.fixture(scope="session")
def argocompiler() -> Path:
    """The built wrapper, rebuilt when its sources change."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain on this machine")
    digest = hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(WRAPPER.glob("*")) if p.is_file())
    ).hexdigest()[:16]
    binary = CACHE / f"argocompiler-{digest}"
    if binary.is_file():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    built = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=WRAPPER,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    (WRAPPER / "go.sum").unlink(missing_ok=True)  # written by -mod=mod; not part of the tree
    if built.returncode != 0:
        said = [line for line in built.stderr.splitlines() if line.strip() and line[0] != "\t"]
        reason = said[-1] if said else f"go build exited {built.returncode}"
        pytest.skip(f"the KFP backend's compiler could not be fetched or built: {reason}")
    return binary


def test_the_backends_compiler_turns_the_pipeline_into_the_workflow_we_expect(
    argocompiler: Path, tmp_path: Path
) -> None:
    package = tmp_path / "pipeline.yaml"
    assert stablepipe("compile", "--output", str(package)).code == 0
    compiled = subprocess.run(
        [str(argocompiler)], input=package.read_text(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    workflow = yaml.safe_load(compiled.stdout)
    assert workflow["kind"] == "Workflow"
    text = json.dumps(workflow)
    # the steps run the project's image; the Secrets reach them by name only
    assert OUR_IMAGE in text
    for secret in ("stablepipe-s3", "stablepipe-optuna", "stablepipe-notify"):
        assert secret in text
    # the exit handler: the notify step runs however the run ended
    assert workflow["spec"].get("onExit")
    # retries on the steps that set them, the search's fan-out and the condition around promote
    assert '"retryStrategy"' in text
    assert "withParam" in text or "withItems" in text
    assert "promote" in text and '"when"' in text
