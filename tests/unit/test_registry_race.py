"""Ten processes promoting into one registry at once, on a local folder and on a real S3
server (SeaweedFS): the champion switch is a compare-and-swap, so of the runs that compared
with the same champion exactly one wins, the others leave nothing behind, every version is
complete, the champion names a complete version, and the history is one unbroken chain."""

from __future__ import annotations

import itertools
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from components.common.storage import open_storage
from components.core.registry import (
    COMPLETE,
    Superseded,
    champion_pointer,
    history,
    publish_version,
)
from tests.conftest import make_bucket

RUNS = 10
BUCKET = "registry-race"
_prefixes = itertools.count()


@pytest.fixture(params=["local", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(registry URI, endpoint)."""
    if request.param == "local":
        return str(tmp_path / "registry"), ""
    server = request.getfixturevalue("s3_env")
    make_bucket(server, BUCKET)
    return f"s3://{BUCKET}/race{next(_prefixes)}", server.endpoint


def evaluation(version: str, compared_with: str | None) -> dict[str, Any]:
    verdict = {"decision": "promote", "metric": "roc_auc", "challenger": 0.9}
    return {"run_id": version, "verdict": {**verdict, "champion_version": compared_with}}


def promote_once(registry: str, endpoint: str, model_dir: str, version: str) -> str:
    """Compared with v0, as every run of the first round was: 'won' or 'superseded'."""
    try:
        publish_version(registry, model_dir, version, evaluation(version, "v0"), endpoint)
    except Superseded:
        return "superseded"
    return "won"


def promote_until_champion(registry: str, endpoint: str, model_dir: str, version: str) -> str:
    """A run that is evaluated again against whichever champion it finds, until it wins."""
    for attempt in range(1, 200):
        found = champion_pointer(registry, endpoint)
        try:
            publish_version(
                registry,
                model_dir,
                version,
                evaluation(version, found and found["version"]),
                endpoint,
            )
        except Superseded:
            continue
        return f"won after {attempt}"
    return "never won"


def in_process(job: Any, barrier: Any, results: Any, *args: str) -> None:
    barrier.wait()  # all ten start their promotion together
    results.put((args[-1], job(*args)))


def race(job: Any, registry: str, endpoint: str, model_dir: Path, prefix: str) -> dict[str, str]:
    """`job` in RUNS processes started together (spawned: a fresh interpreter each, as runs
    are); version name -> what the job returned."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(RUNS), context.Queue()
    processes = [
        context.Process(
            target=in_process,
            args=(job, barrier, results, registry, endpoint, str(model_dir), f"{prefix}{i}"),
        )
        for i in range(RUNS)
    ]
    for process in processes:
        process.start()
    outcome = dict(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return outcome


def assert_whole(registry: str, endpoint: str) -> list[str]:
    """Every version complete, none left over, the champion one of them, and the history one
    chain from the champion back to the first promotion; returns the chain, oldest first."""
    store = open_storage(registry, endpoint)
    folders = {key.split("/")[1] for key in store.keys("versions")}
    complete = {v for v in folders if store.exists(f"versions/{v}/{COMPLETE}")}
    assert folders == complete, f"versions left incomplete: {sorted(folders - complete)}"
    for version in complete:
        assert store.exists(f"versions/{version}/model/model.skops")
    pointer = champion_pointer(registry, endpoint)
    assert pointer is not None and pointer["version"] in complete
    entries = {entry["version"]: entry for entry in history(registry, endpoint)}
    assert set(entries) == complete
    chain: list[str] = []
    at: str | None = pointer["version"]
    while at is not None:
        chain.append(at)
        at = entries[at]["previous"]
    assert sorted(chain) == sorted(entries), "the history is not one chain"
    assert [e["version"] for e in history(registry, endpoint)] == chain[::-1]  # in time order
    return chain[::-1]


@pytest.mark.timeout(600)
def test_ten_runs_promoting_at_once(registry: tuple[str, str], trained) -> None:
    uri, endpoint = registry
    model_dir = trained[3]
    publish_version(uri, model_dir, "v0", evaluation("v0", None), endpoint)

    # ten runs that all compared with v0: one switches the champion, nine were superseded
    first = race(promote_once, uri, endpoint, model_dir, "a")
    winners = [version for version, outcome in first.items() if outcome == "won"]
    assert len(winners) == 1, first
    assert assert_whole(uri, endpoint) == ["v0", winners[0]]

    # ten runs that compare again with whatever champion they find: all end promoted, in turn
    second = race(promote_until_champion, uri, endpoint, model_dir, "b")
    assert all(outcome.startswith("won") for outcome in second.values()), second
    chain = assert_whole(uri, endpoint)
    assert chain[:2] == ["v0", winners[0]] and sorted(chain[2:]) == sorted(second)
