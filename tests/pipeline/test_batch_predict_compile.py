"""The batch-prediction pipeline compiles to deterministic KFP IR YAML on the project image
(its run under kfp.local is in test_predict_parity.py)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from kfp import compiler

from components.common.kfp_component import IMAGE
from pipelines.batch_predict import PIPELINE_NAME, batch_predict_pipeline


def test_batch_predict_compiles_byte_identical_on_the_project_image(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    compiler.Compiler().compile(batch_predict_pipeline, str(first))
    compiler.Compiler().compile(batch_predict_pipeline, str(second))
    assert first.read_bytes() == second.read_bytes()
    documents = list(yaml.safe_load_all(first.read_text()))
    spec = documents[0]
    assert spec["pipelineInfo"]["name"] == PIPELINE_NAME
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {IMAGE}
    assert not any("pip install" in json.dumps(e) for e in executors.values())
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"load-rows", "resolve-model", "batch-predict"}
    # the rows and the champion pointer change under the same names: never served from cache
    assert tasks["load-rows"]["cachingOptions"] == {}
    assert tasks["resolve-model"]["cachingOptions"] == {}
    parameters = set(spec["root"]["inputDefinitions"]["parameters"])
    # the batch-prediction settings, under their flags' names (and the reading settings)
    assert parameters == {
        "data",
        "model",
        "s3_endpoint",
        "decimal",
        "max_read_mb",
        "query_timeout",
        "table",
        "query",
        "delimiter",
        "encoding",
        "header",
        "sheet",
    }
    platform = json.dumps(documents[1:])
    assert "stablepipe-s3" in platform and "AWS_SECRET_ACCESS_KEY" in platform
