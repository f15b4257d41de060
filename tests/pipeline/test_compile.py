"""The compiled KFP IR YAML: deterministic, and runnable under kfp.local as it is."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from kfp import components, local

from tests.pipeline.conftest import one_class_csv, stablepipe
from tests.support.webhook import webhook


def test_compile_is_byte_identical_and_names_the_project_image(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert stablepipe("compile", "--output", str(first)).code == 0
    assert stablepipe("compile", "--output", str(second)).code == 0
    assert first.read_bytes() == second.read_bytes()
    spec = next(yaml.safe_load_all(first.read_text()))
    executors = spec["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {"ghcr.io/stablepipe/stablepipe:0.1.0"}
    assert not any("pip install" in json.dumps(e) for e in executors.values())
    # the training pipeline inside an exit handler, whose notify step runs however it ended
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"exit-handler-1", "notify"}
    assert root["notify"]["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert root["notify"]["dependentTasks"] == ["exit-handler-1"]
    handler = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert set(handler) == {"stablepipe-training"}
    tasks = spec["components"]["comp-stablepipe-training"]["dag"]["tasks"]
    assert {
        "ingest",
        "validate",
        "split",
        "preprocess",
        "features",
        "create-study",
        "stablepipe-search",
        "train",
        "refit",
        "evaluate",
        "condition-1",
    } <= set(tasks)
    search = spec["components"]["comp-stablepipe-search"]["dag"]["tasks"]
    assert "iteratorPolicy" in json.dumps(search) or "parameterIterator" in json.dumps(search)
    # credentials come from Kubernetes Secrets by name; no value is in the YAML
    platform = json.dumps(list(yaml.safe_load_all(first.read_text()))[1:])
    assert "stablepipe-s3" in platform and "AWS_SECRET_ACCESS_KEY" in platform
    assert "stablepipe-optuna" in platform and "STABLEPIPE_OPTUNA_STORAGE" in platform
    assert "stablepipe-notify" in platform and "STABLEPIPE_NOTIFY_URL" in platform
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    # (series_key names columns, not a credential)
    credential_words = ("secret", "password", "passwd", "access_key", "token")
    assert not any(word in name for name in parameters for word in credential_words)


def test_compiled_yaml_runs_under_kfp_local(tmp_path: Path, monkeypatch) -> None:
    """The YAML a cluster gets, run as it is: a run that succeeds posts no alert, one that fails
    in a stage gets the notify step's message (the cluster's path of tests/pipeline/test_alerts)."""
    path = tmp_path / "pipeline.yaml"
    assert stablepipe("compile", "--output", str(path)).code == 0
    pipeline = components.load_component_from_file(str(path))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "out"))
    quick = {"trials": 4, "workers": 1, "cv_folds": 3, "registry": str(tmp_path / "registry")}
    with webhook() as hook:
        monkeypatch.setenv("STABLEPIPE_NOTIFY_URL", hook.url)
        pipeline(data="demo:wine", run_id="yaml-run", **quick)
        assert hook.received == []
        one_class_csv(tmp_path / "one_class.csv")
        with pytest.raises(RuntimeError, match="validate"):
            pipeline(data=str(tmp_path / "one_class.csv"), run_id="failed-run", **quick)
    # the registry is a root: the champion of the target "target" lives in registry/target
    pointer = json.loads((tmp_path / "registry" / "target" / "champion.json").read_text())
    assert pointer["version"] == "yaml-run"
    version = tmp_path / "registry" / "target" / "versions" / "yaml-run"
    evaluation = json.loads((version / "evaluation.json").read_text())
    assert set(evaluation["metrics"]["test"]) == {"roc_auc", "accuracy", "f1_macro", "log_loss"}
    (message,) = hook.received
    assert message["run_id"] == "failed-run" and message["pipeline"] == "stablepipe-training"
    assert message["model"] == "target" and message["exit_code"] == 1


CRDS = Path(__file__).resolve().parents[1] / "support" / "kfp_crds"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def crd_schema(kind: str) -> dict:
    """The openAPIV3Schema of KFP's CRD for `kind` (tests/support/kfp_crds, KFP 2.17.0)."""
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            (version,) = crd["spec"]["versions"]
            return {"apiVersion": f"{crd['spec']['group']}/{version['name']}", **version}
    raise AssertionError(f"no CRD for {kind}")


def test_pipelines_as_kubernetes_objects_pass_kfps_crd_schemas(tmp_path: Path) -> None:
    plain, first, second = (tmp_path / n for n in ("plain.yaml", "a.yaml", "b.yaml"))
    assert stablepipe("compile", "--output", str(plain)).code == 0
    done = stablepipe(
        "compile", "--kubernetes-manifest", "--namespace", "ml-prod", "--output", str(first)
    )
    assert done.code == 0, done.stderr
    assert stablepipe("compile", "--kubernetes-manifest", "--namespace", "ml-prod",
                      "--output", str(second)).code == 0  # fmt: skip
    assert first.read_bytes() == second.read_bytes()  # an unchanged pipeline: the same objects
    digest = hashlib.sha256(plain.read_bytes()).hexdigest()[:12]
    pipeline, version = yaml.safe_load_all(first.read_text())
    assert (pipeline["kind"], version["kind"]) == ("Pipeline", "PipelineVersion")
    assert version["metadata"]["name"] == f"stablepipe-training-{digest}"
    assert f"PipelineVersion stablepipe-training-{digest}" in done.stderr
    assert version["spec"]["pipelineName"] == pipeline["metadata"]["name"] == "stablepipe-training"
    for document in (pipeline, version):
        crd = crd_schema(document["kind"])
        assert document["apiVersion"] == crd["apiVersion"]
        jsonschema.validate(document, crd["schema"]["openAPIV3Schema"])
        name = document["metadata"]["name"]
        assert len(name) <= 253 and DNS_SUBDOMAIN.match(name), name
        assert document["metadata"]["namespace"] == "ml-prod"
    # the version holds the pipeline a cluster runs, with its Secrets: what compile writes
    spec, platform = yaml.safe_load_all(plain.read_text())
    assert version["spec"]["pipelineSpec"] == spec
    assert version["spec"]["platformSpec"] == platform
    # a name the API server would refuse is refused here
    bad = stablepipe("compile", "--kubernetes-manifest", "--namespace", "ML_Prod", "--output",
                     str(tmp_path / "c.yaml"))  # fmt: skip
    assert bad.code == 2 and bad.stderr.startswith("error: --namespace must be a Kubernetes")
    alone = stablepipe("compile", "--namespace", "ml", "--output", str(tmp_path / "d.yaml"))
    assert alone.code == 2 and "--namespace needs --kubernetes-manifest" in alone.stderr
