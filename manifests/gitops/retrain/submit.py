"""Submit one run of the compiled stablepipe pipeline to Kubeflow Pipelines: the retraining
trigger of manifests/gitops (a CronJob on a schedule; an Argo CD PostSync hook after a merge).

stablepipe has no `submit` command yet, so this script, mounted from a ConfigMap into the
project image, does it with the project's own code. The run's settings are a stablepipe config
file (the keys `stablepipe run --config` takes); the object store comes from the
`stablepipe-config` ConfigMap (environment variables below); the pipeline parameters are built
as `stablepipe run` builds them (`preflight`: the data's fingerprint and the champion the run
saw), so KFP's cache treats changed data or a new champion as it does locally.

    python submit.py PIPELINE_YAML CONFIG_YAML [--experiment NAME] [--wait SECONDS]

Exit codes as the CLI's: 0 submitted (with --wait: and succeeded), 2 bad configuration (one
line on stderr), 1 the run failed or could not be submitted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.common.config import RunConfig, build_config, load_config_file
from components.common.errors import BadInputError
from components.core.source.database import is_database_url
from pipelines.runner import new_run_id, pipeline_arguments, preflight

# The keys of the `stablepipe-config` ConfigMap this script reads (through envFrom).
ENDPOINT_ENV = "STABLEPIPE_S3_ENDPOINT"
BUCKET_ENV = "STABLEPIPE_S3_BUCKET"
PREFIX_ENV = "STABLEPIPE_S3_PREFIX"
KFP_HOST_ENV = "STABLEPIPE_KFP_HOST"
KFP_NAMESPACE_ENV = "STABLEPIPE_KFP_NAMESPACE"
CONFIG_MAP_KEYS = (ENDPOINT_ENV, BUCKET_ENV, PREFIX_ENV, KFP_HOST_ENV, KFP_NAMESPACE_ENV)
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


def run_config(config_file: str, env: Mapping[str, str]) -> RunConfig:
    """The run's settings: the config file, with the object store from the ConfigMap."""
    values = load_config_file(config_file)
    owned = sorted(set(values) & set(CLUSTER_OWNED_KEYS))
    if owned:
        raise BadInputError(
            f"config file {config_file!r} sets {', '.join(owned)}; on the cluster these come from "
            "the ConfigMap stablepipe-config (or do not apply): remove them"
        )
    if values.get("incremental"):
        raise BadInputError(
            f"config file {config_file!r}: incremental runs need the local runner, which records "
            "the files a run took after it succeeds; got incremental: true"
        )
    source = str(values.get("data", "demo:"))
    if not (source.startswith(("s3://", "demo:")) or is_database_url(source)):
        raise BadInputError(
            f"config file {config_file!r}: data must be an s3:// URI, a database URL or "
            f"demo:<name> (a pod has no local files); got {source!r}"
        )
    schema = str(values.get("schema", ""))
    if schema and not schema.startswith("s3://"):
        raise BadInputError(
            f"config file {config_file!r}: schema must be an s3:// URI on the cluster; "
            f"got {schema!r}"
        )
    flags = {"s3_endpoint": required(env, ENDPOINT_ENV), "store": store_uri(env)}
    return build_config(values, flags)


def run_arguments(config: RunConfig) -> tuple[str, dict[str, Any]]:
    """A new run id and the pipeline parameters, exactly as `stablepipe run` makes them."""
    run_id = new_run_id()
    return run_id, pipeline_arguments(config, preflight(config), run_id)


def submit(
    package: str,
    config: RunConfig,
    env: Mapping[str, str],
    experiment: str,
    wait_seconds: int,
) -> int:
    import kfp
    from kfp.client import ServiceAccountTokenVolumeCredentials

    run_id, arguments = run_arguments(config)
    token = env.get("KF_PIPELINES_SA_TOKEN_PATH", TOKEN_PATH)
    credentials = ServiceAccountTokenVolumeCredentials(token) if Path(token).is_file() else None
    client = kfp.Client(host=required(env, KFP_HOST_ENV), credentials=credentials)
    namespace = env.get(KFP_NAMESPACE_ENV, "").strip() or None
    run = client.create_run_from_pipeline_package(
        package,
        arguments=arguments,
        run_name=f"{config.model_entry()}-{run_id}",
        experiment_name=experiment,
        namespace=namespace,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="submit.py", description=__doc__.splitlines()[0])
    parser.add_argument("package", help="the compiled pipeline (stablepipe compile --output ...)")
    parser.add_argument("config", help="the run's stablepipe config file (YAML)")
    parser.add_argument("--experiment", default="stablepipe", help="KFP experiment name")
    parser.add_argument(
        "--wait", type=int, default=0, help="seconds to wait for the run to finish (0: do not wait)"
    )
    args = parser.parse_args(argv)
    try:
        config = run_config(args.config, os.environ)
        return submit(args.package, config, os.environ, args.experiment, args.wait)
    except BadInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the API refused the run, the run failed, a timeout
        print(f"failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
