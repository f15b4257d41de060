"""promote: the model registry and the champion switch, on any storage (a local folder or S3).

    <registry>/
      versions/<version>/model/...        the promoted model folder (pipeline + card)
      versions/<version>/evaluation.json  test metrics and the verdict that promoted it
      versions/<version>/MODEL_CARD.md    a short card for people
      versions/<version>/schema.yaml      the data schema later runs are checked against
      versions/<version>/data_profile.json  statistics of its data: the drift reference
      versions/<version>/version.json     written last: the version is complete
      champion.json                       {"version", "run_id", "metric", "score", "previous", ...}
      history/<promoted_at>-<version>.json  one object per promotion

The version's files are written first and the champion pointer last (one object, replaced
whole), so a run that dies midway leaves the champion exactly as it was. Each run writes only
under its own version and its own history object, and the pointer is switched by a
compare-and-swap (a folder lock locally, a conditional write on S3) against the champion the
run was evaluated against: of runs promoting at once exactly one wins per champion; the others
remove their version and report that they were superseded, so nothing they wrote remains.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, NotRequired

from typing_extensions import TypedDict

from components.common.errors import BadInputError
from components.common.readback import read_json_as
from components.common.settings import RunConfig
from components.common.storage import Storage, open_storage
from components.core.model_file import (
    CARD_FILE,
    LEGACY_MODEL_FILE,
    LegacyModelError,
    LoadedModel,
    card_of,
    load_model,
    read_card,
)

POINTER = "champion.json"
COMPLETE = "version.json"
# What promote stores beside a version's model for later runs: the data schema they are checked
# against and the statistics of the version's data, the drift reference.
SCHEMA_FILE = "schema.yaml"
PROFILE_FILE = "data_profile.json"


class ChampionPointer(TypedDict):
    """champion.json, a version's version.json and each history entry: a promotion."""

    version: str
    run_id: str
    metric: str
    score: float | None
    previous: str | None
    promoted_at: str
    # the SHA-256 of the data the version was trained on ('' when the run had none computed,
    # as a UI or scheduled run); absent in a pointer written before it was kept
    data_fingerprint: NotRequired[str]


setattr(ChampionPointer, "__pydantic_config__", {"extra": "allow"})  # noqa: B010


def entry_name(model_name: str, target: str) -> str:
    """The registry entry's name: the model name, else the target's name made path-safe."""
    name = model_name or re.sub(r"[^A-Za-z0-9_.-]+", "-", target).strip("-")
    return name if name not in ("", ".", "..") else "model"  # never a folder outside


def registry_uri(registry: str, store: str, model_name: str, target: str) -> str:
    """Where a run's champion lives: `<store>/models/<entry>` with a store, else
    `<registry>/<entry>`."""
    root = f"{store.rstrip('/')}/models" if store else registry.rstrip("/")
    return f"{root}/{entry_name(model_name, target)}"


def settings_registry(settings: RunConfig) -> str:
    """Where the champion of a run with these settings lives (see registry_uri), after
    checking that `registry` is a registry's root."""
    if not settings.store:
        check_registry_root(settings.registry, settings.s3_endpoint)
    return registry_uri(settings.registry, settings.store, settings.model_name, settings.target)


def check_registry_root(registry: str, endpoint: str = "") -> None:
    """`registry` is the root that holds the entries (`<registry>/<entry>/champion.json`); one
    holding a champion itself is an entry given where the root belongs (the pipeline's
    `registry` parameter named the entry in stablepipe 0.1.0's first layout), which would put
    the champion one folder down, out of sight of the one it should be compared with."""
    if open_storage(registry, endpoint).exists(POINTER):
        raise BadInputError(
            f"--registry {registry!r} holds a champion itself ({POINTER}): the registry is the "
            "folder of the entries, each champion in <registry>/<model-name, else the "
            "target's name>; give its parent folder (and --model-name for the entry)"
        )


def champion_attachments(
    registry: str | Path, endpoint: str = ""
) -> tuple[str, dict[str, bytes]] | None:
    """The champion's version and the files promote stored beside its model (SCHEMA_FILE,
    PROFILE_FILE; one promoted before they were kept lacks them); None without a champion."""
    pointer = champion_pointer(registry, endpoint)
    if pointer is None:
        return None
    store = open_storage(str(registry), endpoint)
    version = str(pointer["version"])
    found = {}
    for name in (SCHEMA_FILE, PROFILE_FILE):
        key = f"versions/{version}/{name}"
        if store.exists(key):
            found[name] = store.get_bytes(key)
    return version, found


def champion_pointer(registry: str | Path, endpoint: str = "") -> dict[str, Any] | None:
    """The champion pointer of a registry, or None when it has no champion yet."""
    store = open_storage(str(registry), endpoint)
    current = store.read_tagged(POINTER)
    return parse_pointer(store, current[0]) if current else None


def load_version(
    store: Storage, version: str, legacy_ok: bool = False, judged: bool = False
) -> LoadedModel:
    """A registry version's model (with `judged`, the Pipeline its test metrics were measured
    on: see load_model). With `legacy_ok`, a legacy pickle (model.joblib) comes back unloaded:
    its card, no pipeline, and why in `refused`; otherwise LegacyModelError."""
    with tempfile.TemporaryDirectory(prefix="stablepipe-model-") as scratch:
        store.get_dir(f"versions/{version}/model", scratch)
        try:
            shown = store.uri_of(f"versions/{version}/model")
            model = load_model(scratch, shown=shown, judged=judged)
        except LegacyModelError:
            if not legacy_ok:
                raise
            reason = f"{LEGACY_MODEL_FILE} (a pickle from an earlier stablepipe)"
            model = LoadedModel(pipeline=None, card=read_card(scratch), refused=reason)
    model.version = version
    return model


def load_champion(registry: str | Path, endpoint: str = "") -> LoadedModel | None:
    """The current champion as a later run judges it, or None when the registry has none: the
    Pipeline its test metrics were measured on, which never saw its test split (a refitted
    champion's served model did, and those rows are mostly in the next run's test split too).
    A legacy champion (model.joblib, never unpickled) comes back with its card and no
    pipeline: evaluate cannot score it and lets the new model replace it."""
    pointer = champion_pointer(registry, endpoint)
    if pointer is None:
        return None
    store = open_storage(str(registry), endpoint)
    return load_version(store, pointer["version"], legacy_ok=True, judged=True)


def champion_configuration(
    registry: str | Path, endpoint: str, target: str, task: str
) -> dict[str, Any] | None:
    """The champion's model family and parameters (its card's `best`), read from the card
    alone; None without a champion or when it predicts another target or task."""
    pointer = champion_pointer(registry, endpoint)
    if pointer is None:
        return None
    store = open_storage(str(registry), endpoint)
    key = f"versions/{pointer['version']}/model/{CARD_FILE}"
    card = card_of(store.get_bytes(key), store.uri_of(key))
    if card.get("target") != target or card.get("task") != task:
        return None
    return dict(card.get("best", {})) or None


def fetch_model(location: str, endpoint: str = "") -> LoadedModel:
    """A model from a run's model folder, `<registry>/champion`, or the same on S3."""
    if not is_champion(location) and not location.startswith("s3://"):
        return load_model(location)
    with tempfile.TemporaryDirectory(prefix="stablepipe-model-") as scratch:
        return download_model(location, Path(scratch) / "model", endpoint)


def is_champion(location: str) -> bool:
    """`<registry>/champion` names the registry's current champion (unless such a folder
    exists)."""
    return location.rstrip("/").rpartition("/")[2] == "champion" and not Path(location).exists()


def download_model(location: str, folder: str | Path, endpoint: str = "") -> LoadedModel:
    """Copy a model (a run's model folder, `<registry>/champion`, or the same on S3) into the
    new local `folder` and load it from there (`version` is set for a registry's champion)."""
    version = None
    if is_champion(location):
        parent = location.rstrip("/").rpartition("/")[0]
        pointer = champion_pointer(parent, endpoint)
        if pointer is None:
            raise BadInputError(f"--model: the registry {parent!r} has no champion yet")
        version, store = str(pointer["version"]), open_storage(parent, endpoint)
        shown = store.uri_of(f"versions/{version}/model")
        store.get_dir(f"versions/{version}/model", str(folder))
    elif location.startswith("s3://"):
        shown = location
        open_storage(location, endpoint).get_dir("", str(folder))
    else:
        shown = location
        if not Path(location).is_dir():
            raise BadInputError(f"--model must be a model folder; got {location!r}")
        shutil.copytree(location, folder)
    model = load_model(folder, shown=shown)
    model.version = version
    return model


def model_card(version: str, card: dict[str, Any], evaluation: dict[str, Any]) -> str:
    """A short Markdown card: what the model predicts, from what, and how well."""
    metrics = evaluation.get("metrics", {}).get("test", {})
    best = card.get("best", {})
    lines = [
        f"# {card['target']} ({card['task']}) — version {version}",
        "",
        f"- model family: {best.get('model', '?')}, "
        f"parameters: `{json.dumps(best.get('params', {}))}`",
        f"- trained on {card.get('training_rows', '?')} rows"
        + (
            f" (refitted on all rows; the test metrics are of the model fitted on "
            f"{card['refit']['judged_rows']}, kept as judged.skops)"
            if card.get("refit")
            else ""
        )
        + "; input columns: "
        + ", ".join(f"`{c}`" for c in card.get("input_columns", [])),
        "- test metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
        f"- promotion: {evaluation.get('verdict', {}).get('reason', '')}",
    ]
    return "\n".join(lines) + "\n"


class Superseded(Exception):
    """Another run made a different model the champion after this run's evaluation compared
    with the one before it: the comparison no longer holds, so nothing is switched."""

    def __init__(self, compared_with: str | None, champion: dict[str, Any] | None) -> None:
        now = champion["version"] if champion else None
        super().__init__(
            f"another run made version {now} the champion after this run was compared with "
            f"{f'version {compared_with}' if compared_with else 'no champion'}; this model "
            "was not promoted: run again to compare with the new champion"
        )
        self.compared_with, self.champion = compared_with, champion


def publish_version(
    registry: str | Path,
    model_dir: str | Path,
    version: str,
    evaluation: dict[str, Any],
    endpoint: str = "",
    attachments: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """Publish the model as the version `version` (with `attachments`: file name -> content,
    such as the schema and data profile), then switch the champion pointer to it, and return
    the new pointer.

    The switch is a compare-and-swap against the champion the evaluation compared with
    (`verdict["champion_version"]`, None for the first model): when another run switched it
    in between, this version is removed again and Superseded is raised, so of many runs
    promoting at once exactly one wins per champion, every pointer names a complete version
    and the history is one chain. Any other failure also removes the version (where the store
    still answers) and leaves the champion as it was."""
    store = open_storage(str(registry), endpoint)
    verdict = evaluation["verdict"]
    compared_with = verdict.get("champion_version")
    # milliseconds: history objects are named by it, and promotions can come within a second
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    promoted_at = now.replace("+00:00", "Z")
    pointer = {
        "version": version,
        "run_id": evaluation.get("run_id", version),
        "metric": verdict["metric"],
        "score": verdict["challenger"],
        "previous": compared_with,
        "promoted_at": promoted_at,
        "data_fingerprint": str(evaluation.get("data_fingerprint", "")),
    }
    try:
        if (already := champion_pointer(str(registry), endpoint)) and already["version"] == version:
            switched = already  # a retried promote: an earlier attempt switched the pointer
        else:
            write_version(store, model_dir, version, evaluation, pointer, attachments or {})
            switched = switch_champion(store, pointer, compared_with)
    except BaseException:
        with contextlib.suppress(Exception):  # the store may be the very thing that failed
            remove_version(store, version)
        raise
    # keyed by the switch's own time: a retried promote rewrites the same entry
    store.put_bytes(
        json.dumps(switched).encode(), f"history/{switched['promoted_at']}-{version}.json"
    )
    return switched


def write_version(
    store: Storage,
    model_dir: str | Path,
    version: str,
    evaluation: dict[str, Any],
    pointer: dict[str, Any],
    attachments: dict[str, bytes],
) -> None:
    """The version's files, version.json last: its presence means the version is complete."""
    for name, content in attachments.items():
        store.put_bytes(content, f"versions/{version}/{name}")
    card = read_card(model_dir)
    store.put_dir(model_dir, f"versions/{version}/model")
    store.put_bytes(
        json.dumps(evaluation, indent=2).encode(), f"versions/{version}/evaluation.json"
    )
    store.put_bytes(
        model_card(version, card, evaluation).encode(), f"versions/{version}/MODEL_CARD.md"
    )
    store.put_bytes(json.dumps(pointer, indent=2).encode(), f"versions/{version}/{COMPLETE}")


def switch_champion(
    store: Storage, pointer: dict[str, Any], compared_with: str | None
) -> dict[str, Any]:
    """champion.json replaced by `pointer` if it still names `compared_with`; the pointer in
    force afterwards. A retried promote finds its own version already champion and is done."""
    current = store.read_tagged(POINTER)
    champion = parse_pointer(store, current[0]) if current else None
    if champion is not None and champion["version"] == pointer["version"]:
        return champion
    if (champion["version"] if champion else None) != compared_with:
        raise Superseded(compared_with, champion)
    body = json.dumps(pointer, indent=2).encode()
    if not store.replace_if(body, POINTER, current[1] if current else None):
        replaced = store.read_tagged(POINTER)
        raise Superseded(compared_with, parse_pointer(store, replaced[0]) if replaced else None)
    return pointer


def remove_version(store: Storage, version: str) -> None:
    """A version that did not become the champion: version.json first, so a removal cut short
    never leaves a version that looks complete. The champion itself is never removed (a
    retried promote that failed after an earlier attempt switched the pointer)."""
    current = store.read_tagged(POINTER)
    if current and parse_pointer(store, current[0])["version"] == version:
        return
    store.delete(f"versions/{version}/{COMPLETE}")
    store.delete_prefix(f"versions/{version}")


def parse_pointer(store: Storage, data: bytes) -> dict[str, Any]:
    shown = f"the champion pointer {store.uri_of(POINTER)!r}"
    return dict(read_json_as(data, ChampionPointer, shown))


def is_published(registry: str | Path, version: str, endpoint: str = "") -> bool:
    """Whether `version` was promoted: its version.json exists (a superseded or failed
    promotion removes it)."""
    return open_storage(str(registry), endpoint).exists(f"versions/{version}/{COMPLETE}")


def history(registry: str | Path, endpoint: str = "") -> list[dict[str, Any]]:
    """Every promotion of the registry, oldest first."""
    store = open_storage(str(registry), endpoint)
    return [
        dict(
            read_json_as(
                store.get_bytes(key), ChampionPointer, f"the history entry {store.uri_of(key)!r}"
            )
        )
        for key in store.keys("history")
    ]
