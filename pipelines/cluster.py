"""Running on a cluster: `stablepipe submit` sends one training run to Kubeflow Pipelines.

It is the retraining trigger of manifests/gitops (a CronJob on a schedule; an Argo CD PostSync
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
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


def submit(
    config: RunConfig,
    env: Mapping[str, str],
    host: str,
    namespace: str,
    experiment: str,
    wait_seconds: int,
) -> int:
    import kfp
    from kfp.client import ServiceAccountTokenVolumeCredentials

    from pipelines.training import cluster_pipeline

    run_id, arguments = run_arguments(config)
    token = env.get("KF_PIPELINES_SA_TOKEN_PATH", TOKEN_PATH)
    credentials = ServiceAccountTokenVolumeCredentials(token) if Path(token).is_file() else None
    client = kfp.Client(host=host, credentials=credentials)
    run = client.create_run_from_pipeline_func(
        cluster_pipeline,
        arguments=arguments,
        run_name=f"{model_entry(config)}-{run_id}",
        experiment_name=experiment,
        namespace=namespace or None,
        # `cache: false` in the config file turns KFP's cache off for this run
        enable_caching=None if config.cache else False,
    )
    print(f"submitted run {run.run_id} (stablepipe run id {run_id})", file=sys.stderr)
    if wait_seconds <= 0:
        return 0
    finished = client.wait_for_run_completion(run.run_id, timeout=wait_seconds)
    state = str(getattr(finished, "state", "UNKNOWN"))
    print(f"run {run.run_id} finished: {state}", file=sys.stderr)
    return 0 if state == "SUCCEEDED" else 1


def submit_run(
    args: argparse.Namespace, flags: dict[str, Any], env: Mapping[str, str] = os.environ
) -> int:
    """`stablepipe submit`."""
    from pipelines.local import RunFailed

    try:
        wait = int(args.wait)
    except ValueError as error:
        raise BadInputError(f"--wait must be whole seconds; got {args.wait!r}") from error
    config = cluster_config(args.config or "", env, flags)
    host = args.host or required(env, KFP_HOST_ENV)
    namespace = args.namespace or env.get(KFP_NAMESPACE_ENV, "").strip()
    try:
        return submit(config, env, host, namespace, args.experiment, wait)
    except BadInputError:
        raise
    except Exception as error:  # the API refused the run, the run failed, a timeout
        raise RunFailed(f"{type(error).__name__}: {error}") from error


# A Kubernetes object name: a DNS-1123 subdomain (the namespace: a DNS-1123 label).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DIGEST_CHARS = 12


def pipeline_digest() -> str:
    """The first hex digits of the SHA-256 of the compiled pipeline (byte-identical on every
    compile): a new digest is a changed pipeline, code or image."""
    from kfp import compiler

    from pipelines.training import cluster_pipeline

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pipeline.yaml"
        compiler.Compiler().compile(cluster_pipeline, str(path))
        return hashlib.sha256(path.read_bytes()).hexdigest()[:DIGEST_CHARS]


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
