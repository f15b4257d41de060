"""A contract stand-in for the Kubeflow Pipelines API server: no KFP backend can run here, so
this local HTTP server answers the v2beta1 REST calls kfp.Client makes for `stablepipe submit`
and `stablepipe schedule`, keeps what they create in memory, and checks every JSON request
body against the models of kfp-server-api (the API's own generated client): a key the model
does not have, or a value of the wrong type, is answered 400 and recorded as a violation.

It is a contract test, not a backend: nothing is scheduled or run (a run is SUCCEEDED at once).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kfp_server_api
import yaml

from tests.support.local_http import QuietHandler, serving

PREFIX = "/apis/v2beta1"
SCALARS = {"str": str, "bool": bool, "int": int, "object": object, "datetime": str}
# int64 fields: the models type them as strings, and the API (protobuf's JSON mapping) takes a
# JSON number or a string of digits
INT64_FIELDS = {"max_concurrency", "interval_second"}


def violations(model: str, value: Any, where: str = "") -> list[str]:
    """What in `value` the kfp-server-api model `model` (a type string of its openapi_types)
    does not allow."""
    if where.rsplit(".", 1)[-1] in INT64_FIELDS:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or str(value).isdigit()
        return [] if ok else [f"{where}: {value!r} is not an int64"]
    if model in SCALARS:
        ok = isinstance(value, SCALARS[model]) and not (model == "int" and isinstance(value, bool))
        return [] if ok else [f"{where or 'body'}: {value!r} is not {model}"]
    if model.startswith("list["):
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [v for i, x in enumerate(value) for v in violations(model[5:-1], x, f"{where}[{i}]")]
    if model.startswith("dict("):
        inner = model[5:-1].split(", ", 1)[1]
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        return [v for k, x in value.items() for v in violations(inner, x, f"{where}.{k}")]
    cls = getattr(kfp_server_api, model, None)
    if cls is None:
        return [f"{where}: kfp-server-api has no model {model}"]
    if hasattr(cls, "allowable_values"):  # an enum: one of its names
        ok = value in cls.allowable_values
        return [] if ok else [f"{where}: {value!r} is not one of {cls.allowable_values}"]
    if not isinstance(value, dict):
        return [f"{where}: not a {model} object"]
    by_key = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    found = []
    for key, item in value.items():
        if key not in by_key:
            found.append(f"{where}.{key}: not a field of {model}")
        else:
            found += violations(cls.openapi_types[by_key[key]], item, f"{where}.{key}")
    return found


def matches(entry: dict[str, Any], query: dict[str, list[str]]) -> bool:
    """Whether `entry` passes the request's v2beta1 filter (EQUALS predicates; the operation
    by name or, as kfp.Client sends it, by number)."""
    if "filter" not in query:
        return True
    predicates = json.loads(query["filter"][0]).get("predicates", [])
    return all(
        p.get("operation") in ("EQUALS", 1) and entry.get(p["key"]) == p.get("stringValue")
        for p in predicates
    )


@dataclass
class KfpApi:
    url: str = ""
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    recurring_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # version id -> its spec
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    broken: list[str] = field(default_factory=list)  # contract violations seen
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self.ids)}"

    def cached_tasks(self, version_id: str) -> list[str]:
        """The tasks of a version's pipeline (nested DAGs too) with KFP's cache on."""
        spec = self.specs[version_id]
        dags = [spec["root"], *spec.get("components", {}).values()]
        return [
            name
            for dag in dags
            for name, task in dag.get("dag", {}).get("tasks", {}).items()
            if task.get("cachingOptions", {}).get("enableCache")
        ]

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.calls if m == method and re.fullmatch(path, p))

    # --- the endpoints ------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        route = path.removeprefix(PREFIX)
        if method == "GET" and route == "/healthz":
            return 200, {"multi_user": False}
        if method == "GET" and route == "/pipelines":
            # a multi-user KFP lists the namespace's pipelines (shared ones without one)
            namespace = query.get("namespace", [""])[0]
            found = [
                p for p in self.pipelines.values()
                if matches(p, query) and p.get("namespace", "") == namespace
            ]  # fmt: skip
            return 200, {"pipelines": found, "total_size": len(found)}
        if method == "POST" and route == "/pipelines/upload":
            pipeline = {"pipeline_id": self.new_id("pipeline"),
                        "display_name": query["name"][0],
                        "description": query.get("description", [""])[0],
                        "namespace": query.get("namespace", [""])[0]}  # fmt: skip
            self.pipelines[pipeline["pipeline_id"]] = pipeline
            self.add_version(pipeline["pipeline_id"], query["name"][0], body)
            return 200, pipeline
        if method == "POST" and route == "/pipelines/upload_version":
            pipeline_id = query["pipelineid"][0]
            if pipeline_id not in self.pipelines:
                return 404, {"message": f"no pipeline {pipeline_id}"}
            return 200, self.add_version(pipeline_id, query["name"][0], body)
        if method == "GET" and (m := re.fullmatch(r"/pipelines/([^/]+)/versions", route)):
            found = [
                v for v in self.versions.values()
                if v["pipeline_id"] == m[1] and matches(v, query)
            ]  # fmt: skip
            return 200, {"pipeline_versions": found, "total_size": len(found)}
        if method == "GET" and route == "/experiments":
            found = [e for e in self.experiments.values() if matches(e, query)]
            return 200, {"experiments": found, "total_size": len(found)}
        if method == "POST" and route == "/experiments":
            return self.create("V2beta1Experiment", body, self.experiments, "experiment_id")
        if method == "POST" and route == "/runs":
            status, run = self.create("V2beta1Run", body, self.runs, "run_id")
            if status == 200:
                run["state"] = "SUCCEEDED"
            return status, run
        if method == "GET" and (m := re.fullmatch(r"/runs/([^/:]+)", route)):
            return (200, self.runs[m[1]]) if m[1] in self.runs else (404, {"message": "no run"})
        if method == "GET" and route == "/recurringruns":
            found = [
                r for r in self.recurring_runs.values()
                if r.get("experiment_id") == query.get("experiment_id", [None])[0]
                and matches(r, query)
            ]  # fmt: skip
            return 200, {"recurringRuns": found, "total_size": len(found)}
        if method == "POST" and route == "/recurringruns":
            status, made = self.create(
                "V2beta1RecurringRun", body, self.recurring_runs, "recurring_run_id"
            )
            if status == 200:
                made["status"] = "ENABLED" if made.pop("mode", "ENABLE") == "ENABLE" else "DISABLED"
                # int64 fields come back as strings, as protobuf's JSON mapping writes them
                made["max_concurrency"] = str(made.get("max_concurrency", "1"))
            return status, made
        if method == "DELETE" and (m := re.fullmatch(r"/recurringruns/([^/:]+)", route)):
            if self.recurring_runs.pop(m[1], None) is None:
                return 404, {"message": "no recurring run"}
            return 200, {}
        return 404, {"message": f"{method} {path} is not a call this stand-in answers"}

    def add_version(self, pipeline_id: str, name: str, package: bytes) -> dict[str, Any]:
        spec = next(yaml.safe_load_all(package.decode()))
        if "pipelineInfo" not in spec or "root" not in spec:
            raise ValueError("the uploaded file is not a KFP pipeline spec")
        version = {"pipeline_id": pipeline_id, "pipeline_version_id": self.new_id("version"),
                   "display_name": name}  # fmt: skip
        self.versions[version["pipeline_version_id"]] = version
        self.specs[version["pipeline_version_id"]] = spec
        return version

    def create(
        self, model: str, body: Any, store: dict[str, dict[str, Any]], id_key: str
    ) -> tuple[int, dict[str, Any]]:
        problems = violations(model, body)
        if not isinstance(body, dict) or not body.get("display_name"):
            problems.append(f"{model}: display_name is required")
        for key in ("pipeline_version_reference",):
            reference = body.get(key) if isinstance(body, dict) else None
            if reference is not None and reference.get("pipeline_version_id") not in self.versions:
                problems.append(f"{model}.{key}: no such pipeline version")
        if problems:
            self.broken += problems
            return 400, {"message": "; ".join(problems)}
        made = {**body, id_key: self.new_id(id_key.removesuffix("_id"))}
        store[made[id_key]] = made
        return 200, made


@contextmanager
def kfp_api() -> Iterator[KfpApi]:
    """The stand-in on a loopback port for the `with` block."""
    api = KfpApi()
    lock = threading.Lock()

    class Handler(QuietHandler):
        def respond(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            kind = self.headers.get("Content-Type", "")
            with lock:
                api.calls.append((method, parts.path))
                try:
                    if kind.startswith("multipart/form-data"):
                        body: Any = uploaded_file(raw, kind)
                    else:
                        body = json.loads(raw) if raw else None
                    status, answer = api.answer(method, parts.path, query, body)
                except (ValueError, KeyError) as error:
                    api.broken.append(f"{method} {parts.path}: {error}")
                    status, answer = 400, {"message": str(error)}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.respond("GET")

        def do_POST(self) -> None:
            self.respond("POST")

        def do_DELETE(self) -> None:
            self.respond("DELETE")

    with serving(Handler) as url:
        api.url = url
        yield api


def uploaded_file(raw: bytes, content_type: str) -> bytes:
    """The `uploadfile` part of a multipart upload (as kfp.Client sends a pipeline)."""
    message = BytesParser(policy=default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "uploadfile":
            return bytes(part.get_payload(decode=True))
    raise ValueError("the upload has no 'uploadfile' part")
