"""Running on a cluster: `stablepipe submit` sends one training run to Kubeflow Pipelines,
`stablepipe schedule` declares a recurring one, `stablepipe compile --kubernetes-manifest`
writes the pipeline as Kubernetes objects.

Both API commands keep the pipeline in KFP as `stablepipe-training` (`--pipeline-name`) at the
version `<name>-<digest>` of the compiled YAML's content hash, uploaded only when KFP has no
version of that name.

`submit` is the retraining trigger of manifests/gitops (a CronJob on a schedule; an Argo CD PostSync
hook after a merge), and works from a laptop too. The run's settings are a stablepipe config
file (the keys `stablepipe run --config` takes) and flags; the object store comes from the
`stablepipe-config` ConfigMap (the environment variables below); the pipeline's parameters
are planned exactly as `stablepipe run` plans them (pipelines/plan.py: the data's fingerprint
and the champion the run saw), so KFP's cache treats changed data or a new champion as it does
locally. The KFP API's token comes from the pod's projected service-account token.

Exit codes as the CLI's: 0 submitted (with --wait: and succeeded), 2 bad settings (one line on
stderr), 1 the run failed or could not be submitted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.common.errors import BadInputError
from components.common.settings import RunConfig, build_config, load_config_file
from components.core.source import LOCAL, Source
from pipelines.plan import model_entry, pipeline_arguments, plan_run

# The keys of the `stablepipe-config` ConfigMap (through envFrom).
ENDPOINT_ENV = "STABLEPIPE_S3_ENDPOINT"
BUCKET_ENV = "STABLEPIPE_S3_BUCKET"
PREFIX_ENV = "STABLEPIPE_S3_PREFIX"
KFP_HOST_ENV = "STABLEPIPE_KFP_HOST"
KFP_NAMESPACE_ENV = "STABLEPIPE_KFP_NAMESPACE"
# read by the pipeline's notify step (components/notify), not by submit
PUSHGATEWAY_ENV = "STABLEPIPE_PUSHGATEWAY"
CONFIG_MAP_KEYS = (
    ENDPOINT_ENV, BUCKET_ENV, PREFIX_ENV, KFP_HOST_ENV, KFP_NAMESPACE_ENV, PUSHGATEWAY_ENV,
)  # fmt: skip
# Settings the ConfigMap owns or that only make sense for a local run.
CLUSTER_OWNED_KEYS = ("s3_endpoint", "store", "runs_dir", "registry")
DESCRIPTION = "stablepipe: ingest, check, search (Optuna), train, evaluate and promote a model"
# Where the projected ServiceAccount token for a multi-user Kubeflow is mounted.
TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"


def required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise BadInputError(
            f"the environment variable {name} (ConfigMap stablepipe-config) is empty"
        )
    return value


def store_uri(env: Mapping[str, str]) -> str:
    """`s3://<bucket>/<prefix>`: runs and the model registry live under it."""
    prefix = env.get(PREFIX_ENV, "").strip().strip("/")
    bucket = required(env, BUCKET_ENV)
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


def cluster_config(
    config_file: str, env: Mapping[str, str], flags: dict[str, Any] | None = None
) -> RunConfig:
    """The run's settings: the config file, then the flags, with the object store from the
    ConfigMap; refused when the run could not work in a pod."""
    values = load_config_file(config_file) if config_file else {}
    where = f"config file {config_file!r}" if config_file else "the settings"
    owned = sorted(set(values) & set(CLUSTER_OWNED_KEYS))
    if owned:
        raise BadInputError(
            f"{where} sets {', '.join(owned)}; on the cluster these come from the ConfigMap "
            "stablepipe-config (or do not apply): remove them"
        )
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    merged = {**values, **given}
    if merged.get("incremental"):
        raise BadInputError(
            f"{where}: incremental runs need the local runner, which records the files a run "
            "took after it succeeds; got incremental: true"
        )
    source = str(merged.get("data", "demo:"))
    if Source(source).kind == LOCAL:
        raise BadInputError(
            f"{where}: data must be an s3:// URI, a database URL or demo:<name> (a pod has no "
            f"local files); got {source!r}"
        )
    schema = str(merged.get("schema", ""))
    if schema and not schema.startswith("s3://"):
        raise BadInputError(f"{where}: schema must be an s3:// URI on the cluster; got {schema!r}")
    cluster = {"s3_endpoint": required(env, ENDPOINT_ENV), "store": store_uri(env)}
    return build_config(values, {**given, **cluster}, target_from_schema=True)


def run_arguments(config: RunConfig) -> tuple[str, dict[str, Any]]:
    """A new run id and the pipeline parameters, exactly as `stablepipe run` makes them."""
    plan = plan_run(config)
    return plan.run_id, pipeline_arguments(plan)


def kfp_client(env: Mapping[str, str], host: str) -> Any:
    """A kfp.Client for the API at `host`, with the pod's projected token when it has one."""
    import kfp
    from kfp.client import ServiceAccountTokenVolumeCredentials

    token = env.get("KF_PIPELINES_SA_TOKEN_PATH", TOKEN_PATH)
    credentials = ServiceAccountTokenVolumeCredentials(token) if Path(token).is_file() else None
    with warnings.catch_warnings():  # "only works with KFP v2.0.0-beta.2 and later", always
        warnings.simplefilter("ignore", FutureWarning)
        return kfp.Client(host=host, credentials=credentials)


def name_filter(value: str) -> str:
    """A v2beta1 list filter: display_name equals `value`."""
    predicate = {"operation": "EQUALS", "key": "display_name", "stringValue": value}
    return json.dumps({"predicates": [predicate]})


@dataclass(frozen=True)
class PipelineVersion:
    pipeline_id: str
    version_id: str
    name: str
    uploaded: bool  # False: that version was there already


def without_cache(package: Path) -> None:
    """Turn KFP's cache off for every task of the compiled pipeline, the nested ones too (the
    exit handler's and the search's). kfp.Client takes `enable_caching` only with a package,
    never with a pipeline version, so an uncached run needs a version compiled so."""
    documents = list(yaml.safe_load_all(package.read_text()))
    spec = documents[0]
    dags = [spec["root"], *spec.get("components", {}).values()]
    for dag in dags:
        for task in dag.get("dag", {}).get("tasks", {}).values():
            task["cachingOptions"] = {**task.get("cachingOptions", {}), "enableCache": False}
    package.write_text(yaml.safe_dump_all(documents, sort_keys=True))


def ensure_version(
    client: Any, pipeline_name: str, namespace: str, cached: bool = True
) -> PipelineVersion:
    """The pipeline `pipeline_name` at its version `<pipeline_name>-<digest>` (with `cached`
    false, a version with KFP's cache off in every task, another digest), uploaded only when
    the API has no version of that name: an unchanged pipeline is never uploaded again."""
    with tempfile.TemporaryDirectory() as folder:
        package, digest = compile_package(Path(folder))
        if not cached:
            without_cache(package)
            digest = hashlib.sha256(package.read_bytes()).hexdigest()[:DIGEST_CHARS]
        name = f"{pipeline_name}-{digest}"
        # a multi-user KFP keeps the pipeline in the namespace: look for it there
        found_pipelines = client.list_pipelines(
            filter=name_filter(pipeline_name), namespace=namespace or None
        ).pipelines
        pipeline_id = found_pipelines[0].pipeline_id if found_pipelines else None
        if pipeline_id is None:
            pipeline = client.upload_pipeline(
                str(package),
                pipeline_name=pipeline_name,
                description=DESCRIPTION,
                namespace=namespace or None,
            )
            pipeline_id = pipeline.pipeline_id
        found = client.list_pipeline_versions(pipeline_id, filter=name_filter(name))
        if found.pipeline_versions:
            return PipelineVersion(pipeline_id, found.pipeline_versions[0].pipeline_version_id,
                                   name, uploaded=False)  # fmt: skip
        version = client.upload_pipeline_version(
            str(package), pipeline_version_name=name, pipeline_id=pipeline_id
        )
        return PipelineVersion(pipeline_id, version.pipeline_version_id, name, uploaded=True)


def retrain_verdict(config: RunConfig, when: str) -> tuple[bool, str]:
    """Whether to submit under `--when`, and the one line that says why: `new` submits when
    the data differs from the champion's (its SHA-256 against the one the champion pointer
    keeps) or there is no champion; `drift` only when, besides, `stablepipe validate` of the
    data against the champion says it drifted."""
    from components.core.registry import champion_pointer
    from pipelines.local import validate_locally
    from pipelines.plan import plan_run

    plan = plan_run(config)
    pointer = champion_pointer(plan.registry, config.s3_endpoint)
    if pointer is None:
        return True, "retrain check: no champion yet: submitting"
    version, seen = pointer["version"], str(pointer.get("data_fingerprint") or "")
    if seen == plan.fingerprint:
        return False, (
            f"retrain check: the data is the champion's ({version}, sha256 {seen[:12]}): "
            "not submitting"
        )
    change = (
        f"the data changed since the champion ({version}: sha256 {seen[:12] or 'unknown'}, "
        f"now {plan.fingerprint[:12]})"
    )
    if when == "new":
        return True, f"retrain check: {change}: submitting"
    with tempfile.TemporaryDirectory() as folder:
        quality = validate_locally(config, Path(folder) / "data_quality.html").quality
    drift = quality.get("drift", {})
    top = ", ".join(drift.get("top", [])[:3])
    said = f"drift {drift.get('verdict')}" + (f" ({top})" if top else "")
    submitting = drift.get("verdict") == "drift"
    return submitting, (
        f"retrain check: {change}; {said}, quality {quality.get('verdict')}: "
        f"{'submitting' if submitting else 'not submitting'}"
    )


def submit(
    config: RunConfig,
    env: Mapping[str, str],
    api: ApiTarget,
    wait_seconds: int,
    when: str = "always",
) -> int:
    if when != "always":
        submitting, line = retrain_verdict(config, when)
        print(line, file=sys.stderr, flush=True)
        if not submitting:
            return 0
    run_id, arguments = run_arguments(config)
    client = kfp_client(env, api.host)
    # `cache: false` in the config file: a version with KFP's cache off
    version = ensure_version(client, api.pipeline, api.namespace, cached=config.cache)
    said = "uploaded" if version.uploaded else "unchanged"
    print(f"pipeline {api.pipeline} version {version.name} ({said})", file=sys.stderr)
    experiment = client.create_experiment(api.experiment, namespace=api.namespace or None)
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=f"{model_entry(config)}-{run_id}",
        params=arguments,
        pipeline_id=version.pipeline_id,
        version_id=version.version_id,
    )
    print(f"submitted run {run.run_id} (stablepipe run id {run_id})", file=sys.stderr)
    if wait_seconds <= 0:
        return 0
    finished = client.wait_for_run_completion(run.run_id, timeout=wait_seconds)
    state = str(getattr(finished, "state", "UNKNOWN"))
    print(f"run {run.run_id} finished: {state}", file=sys.stderr)
    return 0 if state == "SUCCEEDED" else 1


def kfp_cron(cron: str) -> str:
    """KFP's cron (with a seconds field) from the usual five fields; six are kept."""
    fields = cron.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise BadInputError(
        f"--cron must be a cron expression of five fields (minute hour day month weekday: "
        f"'0 3 * * *') or six (with seconds first); got {cron!r}"
    )


def schedule_arguments(config: RunConfig) -> dict[str, Any]:
    """The parameters of every scheduled run: the settings, with nothing computed for one run
    (the run id is each KFP run's name; the data is read fresh, so the runs are not cached)."""
    from pipelines.parameters import COMPUTED
    from pipelines.plan import pipeline_arguments, plan_run

    arguments = pipeline_arguments(plan_run(config))
    return {**arguments, **{name: COMPUTED[name].default for name in COMPUTED}}


def same_schedule(existing: Any, cron: str, version_id: str, params: dict[str, Any]) -> bool:
    """Whether a recurring run already is the one asked for (the API keeps parameters as JSON
    values)."""
    trigger = getattr(getattr(existing.trigger, "cron_schedule", None), "cron", None)
    reference = existing.pipeline_version_reference
    given = (existing.runtime_config.parameters or {}) if existing.runtime_config else {}
    return (
        trigger == cron
        and reference is not None
        and reference.pipeline_version_id == version_id
        and json.loads(json.dumps(given)) == json.loads(json.dumps(params))
        and existing.status != "DISABLED"
    )


def schedule(
    config: RunConfig | None, env: Mapping[str, str], api: ApiTarget, name: str, cron: str
) -> int:
    """`stablepipe schedule NAME`: make the recurring run NAME what is asked (None: absent).
    Applying the same twice changes nothing; a changed one is replaced (the v2beta1 API has
    no update), keeping its name."""
    client = kfp_client(env, api.host)
    experiment = client.create_experiment(api.experiment, namespace=api.namespace or None)
    found = client.list_recurring_runs(
        experiment_id=experiment.experiment_id, filter=name_filter(name), page_size=100
    )
    existing = list(found.recurring_runs or [])
    if config is None:
        for old in existing:
            client.delete_recurring_run(old.recurring_run_id)
        said = "deleted" if existing else "absent: nothing to delete"
        print(f"schedule {name}: {said}", file=sys.stderr)
        return 0
    # a scheduled run is not planned per run (the same parameters every time): uncached
    version = ensure_version(client, api.pipeline, api.namespace, cached=False)
    params = schedule_arguments(config)
    if len(existing) == 1 and same_schedule(existing[0], cron, version.version_id, params):
        print(f"schedule {name}: unchanged ({cron}, version {version.name})", file=sys.stderr)
        return 0
    # the new one first: a refused creation leaves the old schedule running
    client.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name=name,
        description=f"stablepipe schedule {name}",
        cron_expression=cron,
        max_concurrency=1,
        no_catchup=True,
        params=params,
        pipeline_id=version.pipeline_id,
        version_id=version.version_id,
        enabled=True,
    )
    for old in existing:
        client.delete_recurring_run(old.recurring_run_id)
    said = "updated" if existing else "created"
    print(f"schedule {name}: {said} ({cron}, version {version.name})", file=sys.stderr)
    return 0


def submit_run(
    args: argparse.Namespace, flags: dict[str, Any], env: Mapping[str, str] = os.environ
) -> int:
    """`stablepipe submit`."""
    try:
        wait = int(args.wait)
    except ValueError as error:
        raise BadInputError(f"--wait must be whole seconds; got {args.wait!r}") from error
    config = cluster_config(args.config or "", env, flags)
    return against_the_api(lambda: submit(config, env, api_target(args, env), wait, args.when))


def schedule_run(
    args: argparse.Namespace, flags: dict[str, Any], env: Mapping[str, str] = os.environ
) -> int:
    """`stablepipe schedule`."""
    if args.delete:
        return against_the_api(lambda: schedule(None, env, api_target(args, env), args.name, ""))
    if not args.cron:
        raise BadInputError(f"schedule {args.name}: give --cron '0 3 * * *', or --delete")
    cron = kfp_cron(args.cron)
    config = cluster_config(args.config or "", env, flags)
    return against_the_api(lambda: schedule(config, env, api_target(args, env), args.name, cron))


@dataclass(frozen=True)
class ApiTarget:
    """Where runs go: the KFP API, the namespace, the experiment and the pipeline's name."""

    host: str
    namespace: str
    experiment: str
    pipeline: str


def api_target(args: argparse.Namespace, env: Mapping[str, str]) -> ApiTarget:
    return ApiTarget(
        host=args.host or required(env, KFP_HOST_ENV),
        namespace=args.namespace or env.get(KFP_NAMESPACE_ENV, "").strip(),
        experiment=args.experiment,
        pipeline=args.pipeline_name,
    )


def against_the_api(call: Callable[[], int]) -> int:
    """`call()`, with what the API refuses (or a run that failed, a timeout) as RunFailed."""
    from pipelines.local import RunFailed

    try:
        return call()
    except BadInputError:
        raise
    except Exception as error:
        raise RunFailed(f"{type(error).__name__}: {error}") from error


# A Kubernetes object name: a DNS-1123 subdomain (the namespace: a DNS-1123 label).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DIGEST_CHARS = 12


def compile_package(folder: Path) -> tuple[Path, str]:
    """The compiled pipeline (what `stablepipe compile` writes) in `folder`, and its digest: the
    first hex digits of its SHA-256 (it is byte-identical on every compile, so a new digest is a
    changed pipeline, code or image)."""
    from kfp import compiler

    from pipelines.training import cluster_pipeline

    package = folder / "pipeline.yaml"
    compiler.Compiler().compile(cluster_pipeline, str(package))
    return package, hashlib.sha256(package.read_bytes()).hexdigest()[:DIGEST_CHARS]


def pipeline_digest() -> str:
    with tempfile.TemporaryDirectory() as folder:
        return compile_package(Path(folder))[1]


def write_kubernetes_manifest(output: Path, namespace: str) -> str:
    """Write the pipeline as a `Pipeline` and a `PipelineVersion` object (KFP's
    Kubernetes-native mode, through the SDK's own option) and return the version's name:
    `<pipeline>-<digest>`, so an unchanged pipeline is the same object and a changed one a new
    version that Argo CD applies from a merge."""
    from kfp import compiler
    from kfp.compiler import KubernetesManifestOptions

    from components.common.kfp_component import PACKAGE_VERSION
    from pipelines.training import PIPELINE_NAME, cluster_pipeline

    if namespace and not DNS_LABEL.match(namespace):
        raise BadInputError(
            f"--namespace must be a Kubernetes namespace (lowercase letters, digits and '-'); "
            f"got {namespace!r}"
        )
    digest = pipeline_digest()
    version = f"{PIPELINE_NAME}-{digest}"
    options = KubernetesManifestOptions(
        pipeline_name=PIPELINE_NAME,
        pipeline_display_name="stablepipe training",
        pipeline_version_name=version,
        pipeline_version_display_name=f"stablepipe {PACKAGE_VERSION} ({digest})",
        namespace=namespace or None,
        include_pipeline_manifest=True,
    )
    compiler.Compiler().compile(
        cluster_pipeline,
        str(output),
        kubernetes_manifest_options=options,
        kubernetes_manifest_format=True,
    )
    return version
