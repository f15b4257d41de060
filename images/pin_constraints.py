"""Write images/constraints.txt: the installed versions of stablepipe's runtime dependency closure.

Run inside the environment the tests passed in (`make constraints`); the image installs with
these exact versions, so what runs on the cluster is what was tested.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

HEADER = (
    "# Exact versions of the image's runtime dependencies (the closure of pyproject.toml's\n"
    "# [project.dependencies]), the set the test suite ran with. Regenerate: make constraints\n"
)


def runtime_closure(root: str = "stablepipe") -> dict[str, str]:
    pinned: dict[str, str] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in pinned:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        pinned[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    pinned.pop(root, None)
    return pinned


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("constraints.txt"))
    pins = runtime_closure()
    out.write_text(HEADER + "".join(f"{k}=={v}\n" for k, v in sorted(pins.items())))
    print(f"pinned {len(pins)} packages in {out}")
