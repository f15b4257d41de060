"""Planning a run: from its settings to what the pipeline is given.

The plan settles, before anything starts, what a run needs that the settings alone do not say:
the target (taken from the schema file when only the schema names it), the files an incremental
run takes, the data's fingerprint, the schema file to check against (and its digest), and the
champion the run saw. It fails early, with one line, on a source, schema file or store that
cannot be used. `pipeline_arguments` then gives the pipeline's parameters: the settings the
pipeline takes, under their names, and the computed values.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.errors import BadInputError
from components.common.settings import TRAINING, RunConfig, pipeline_settings
from components.common.storage import S3_PREFIX, Storage, open_parent, open_storage, parse_s3_uri
from components.core.registry import (
    champion_pointer,
    check_registry_root,
    entry_name,
    registry_uri,
)
from components.core.source import KAFKA, Source, source_kind
from components.core.source.files import ReadOptions


class NothingToDo(Exception):
    """An incremental run found no new files: not an error, nothing was run (exit code 0)."""


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def registry_location(config: RunConfig) -> str:
    """Where the run's champion lives: `<store>/models/<entry>`, else `<registry>/<entry>`
    with the registry folder made absolute (the stages may run in another folder)."""
    if config.store:
        return registry_uri(config.registry, config.store, config.model_name, config.target)
    registry = str(Path(config.registry).resolve())
    check_registry_root(registry, config.s3_endpoint)
    return registry_uri(registry, config.store, config.model_name, config.target)


def model_entry(config: RunConfig) -> str:
    """The registry entry's name (the model name, else the target's)."""
    return entry_name(config.model_name, config.target)


def records_store(config: RunConfig) -> Storage:
    """Where run records (and incremental watermarks) live: the --store prefix, else the runs
    folder."""
    return open_storage(config.store or str(Path(config.runs_dir).resolve()), config.s3_endpoint)


def schema_location(schema: str) -> str:
    """--schema as an absolute path or an s3://bucket/key URI; BadInputError for a folder, a
    missing parent folder, or an S3 URI without a key."""
    if schema.startswith(S3_PREFIX):
        _, key = parse_s3_uri(schema)
        if not key or schema.endswith("/"):
            raise BadInputError(f"--schema must name a file, s3://bucket/key.yaml; got {schema!r}")
        return schema
    if "://" in schema:
        raise BadInputError(f"--schema must be a local file or an s3:// URI; got {schema!r}")
    path = Path(schema).resolve()
    if path.is_dir():
        raise BadInputError(f"--schema must be a file, not a folder; got {schema!r}")
    if not path.parent.is_dir():
        raise BadInputError(f"--schema file's folder does not exist: {schema!r}")
    return str(path)


def existing_schema(config: RunConfig) -> tuple[str, bytes]:
    """The --schema file's location and content when it exists ('' and b'' when it does not
    yet: the run writes it)."""
    if not config.schema:
        return "", b""
    location = schema_location(config.schema)
    store, name = open_parent(location, config.s3_endpoint)
    if not store.exists(name):
        return "", b""
    return location, store.get_bytes(name)


def with_target(config: RunConfig) -> RunConfig:
    """The config with its target: given, or the existing --schema file's (a config built with
    `target_from_schema` leaves it empty until here)."""
    if config.target:
        return config
    from components.core.schema import parse_schema

    location, content = existing_schema(config)
    if not location:
        raise BadInputError(
            f"--target is required with --data {config.data!r}: the --schema file "
            f"{config.schema!r} does not exist yet, so it cannot name the target"
        )
    target = parse_schema(content, location)["target"]
    if not target:
        raise BadInputError(
            f"--target is required with --data {config.data!r}: the --schema file "
            f"{config.schema!r} names no target"
        )
    config.target = target
    return config


@dataclass
class Plan:
    """A run, settled before it starts."""

    config: RunConfig
    run_id: str
    fingerprint: str
    files: list[str]
    schema_file: str  # the --schema file to check against ('' when there is none yet)
    schema_version: str  # the schema file's digest
    reference_version: str  # the champion and schema digest the run saw (the check's cache key)
    registry: str  # where the champion lives
    # an incremental run: the files it takes and the watermark to advance when it succeeds
    incremental: dict[str, Any] | None = field(default=None)

    @property
    def read_options(self) -> ReadOptions:
        return ReadOptions.of(self.config, self.files)


def incremental_selection(config: RunConfig) -> dict[str, Any]:
    """The files an incremental run takes: the new ones and the `window` latest earlier ones;
    NothingToDo when there is no new file."""
    from components.core.source import incremental

    current = Source(config.data, config.s3_endpoint).listing()
    watermark = incremental.load_watermark(records_store(config), config.data)
    chosen = incremental.select(current, watermark, config.window)
    if not chosen.new:
        raise NothingToDo(
            f"no new files under {config.data!r} since run {watermark.get('last_run')!r} "
            f"({len(current)} file(s) already taken); nothing to train"
        )
    return {
        "new_files": chosen.new,
        "window_files": chosen.window,
        "current": current,
        "watermark": watermark,
        "files": chosen.files,
    }


def kafka_selection(config: RunConfig) -> dict[str, Any]:
    """What a run reads of a Kafka topic: the offsets up to each partition's end now, from the
    beginning or (--incremental) from the consumer group's committed offsets, with --window
    earlier records; NothingToDo when an incremental run finds no new record."""
    from components.core.registry import entry_name
    from components.core.source import kafka

    group = ""
    if config.incremental:
        group = config.group or f"stablepipe-{entry_name(config.model_name, config.target)}"
    snapshot = kafka.take_snapshot(config.data, group, config.incremental, config.window)
    if config.incremental and not snapshot.new_records:
        raise NothingToDo(
            f"no new records in Kafka topic {snapshot.topic.topic!r} since consumer group "
            f"{group!r} last committed; nothing to train"
        )
    return {
        "kafka_group": group,
        "kafka_ends": snapshot.ends(),
        "files": snapshot.parts,
        "new_records": snapshot.new_records,
        "window_records": sum(r.records for r in snapshot.window),
        "skipped_by_retention": snapshot.skipped,
    }


def plan_run(config: RunConfig) -> Plan:
    """Settle the run's inputs; fail early on a source, schema file or store that cannot be
    used."""
    config = with_target(config)
    if source_kind(config.data) == KAFKA:  # a snapshot of offsets, incremental or not
        progress: dict[str, Any] | None = kafka_selection(config)
    else:
        progress = incremental_selection(config) if config.incremental else None
    files = progress["files"] if progress else []
    if progress is not None and not config.incremental:
        progress = None  # a whole-topic snapshot: nothing to commit when it succeeds
    # fails early on a missing or non-table file, and on a store that cannot be reached
    fingerprint = Source(config.data, config.s3_endpoint).fingerprint(ReadOptions.of(config, files))
    if config.store:
        open_storage(config.store, config.s3_endpoint).keys("runs/none")
    schema_file, content = existing_schema(config)
    schema_sha = hashlib.sha256(content).hexdigest() if schema_file else ""
    registry = registry_location(config)
    pointer = champion_pointer(registry, config.s3_endpoint)
    champion = pointer["version"] if pointer else ""
    return Plan(
        config=config,
        run_id=new_run_id(),
        fingerprint=fingerprint,
        files=files,
        schema_file=schema_file,
        schema_version=schema_sha,
        reference_version=f"champion={champion};schema={schema_sha}",
        registry=registry,
        incremental=progress,
    )


def pipeline_arguments(plan: Plan) -> dict[str, Any]:
    """The training pipeline's parameters: its settings, under their names, and the computed
    values (no credential is ever among them). The registry folder is made absolute and the
    schema file is given only once it exists (a first run writes it)."""
    config = plan.config
    arguments = {s.name: getattr(config, s.name) for s in pipeline_settings(TRAINING)}
    if not config.store:
        arguments["registry"] = str(Path(config.registry).resolve())
    arguments["schema"] = plan.schema_file
    return {
        **arguments,
        "data_fingerprint": plan.fingerprint,
        "files": plan.files,
        "schema_version": plan.schema_version,
        "reference_version": plan.reference_version,
        "run_id": plan.run_id,
    }
