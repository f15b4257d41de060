"""promote: the local model registry and the champion switch.

    <registry>/
      versions/<version>/model/       the promoted model folder (pipeline + card)
      versions/<version>/evaluation.json
      champion.json                   {"version": ..., "run_id": ..., "metric": ..., "score": ...}
      history.jsonl                   one line per promotion

A version folder is written completely under a temporary name and renamed into place; the
champion pointer is replaced last, atomically (os.replace), so a run that dies midway leaves the
registry exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from components.train.model_io import LoadedModel, load_model

POINTER = "champion.json"


def champion_pointer(registry: str | Path) -> dict[str, Any] | None:
    path = Path(registry) / POINTER
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text(encoding="utf-8")))


def load_champion(registry: str | Path) -> LoadedModel | None:
    """The current champion model, or None when the registry has none."""
    pointer = champion_pointer(registry)
    if pointer is None:
        return None
    model = load_model(Path(registry) / "versions" / pointer["version"] / "model")
    model.version = pointer["version"]
    return model


def resolve_model_path(path: str | Path) -> Path:
    """`<registry>/champion` means the champion's model folder; other paths are used as given."""
    candidate = Path(path)
    if candidate.name == "champion" and not candidate.exists():
        pointer = champion_pointer(candidate.parent)
        if pointer is not None:
            return candidate.parent / "versions" / pointer["version"] / "model"
    return candidate


def promote(
    registry: str | Path,
    model_dir: str | Path,
    version: str,
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """Publish the model as a new version, then switch the champion pointer to it."""
    root = Path(registry)
    versions = root / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    final = versions / version
    partial = versions / f".{version}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(model_dir, partial / "model")
    (partial / "evaluation.json").write_text(json.dumps(evaluation, indent=2), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    verdict = evaluation["verdict"]
    pointer = {
        "version": version,
        "run_id": evaluation.get("run_id", version),
        "metric": verdict["metric"],
        "score": verdict["challenger"],
        "previous": verdict.get("champion_version"),
        "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    staged = root / f".{POINTER}.{os.getpid()}.tmp"
    staged.write_text(json.dumps(pointer, indent=2), encoding="utf-8")
    os.replace(staged, root / POINTER)
    with open(root / "history.jsonl", "a", encoding="utf-8") as history:
        history.write(json.dumps(pointer) + "\n")
    return pointer
