"""Reading back what was written: YAML and JSON documents, bounded, then checked for shape.

Every file the project reads again (a config or schema file a user wrote, the registry's
champion pointer and history, a model card, a data profile, a watermark, a study's spec) goes
through here, so a damaged or hostile one is one line naming the file and what is wrong
(`DamagedFile`, a `BadInputError`: exit 2), never a traceback or a failed stage:

- `parse_yaml` / `parse_json`: at most `MAX_DOCUMENT_BYTES`, nested at most `MAX_DEPTH` levels
  (checked while YAML is composed, before any object is built), and YAML without anchors and
  aliases, so nested aliases (a "billion laughs") cannot expand.
- `checked(document, Shape, shown)`: pydantic validates the document against a TypedDict
  (`Shape`), so the code that follows reads keys that are there, of the types declared. The
  TypedDicts live beside the code that writes the file.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import yaml

from components.common.errors import BadInputError

MAX_DEPTH = 64  # deeper than any document the project writes or a user edits
MAX_DOCUMENT_BYTES = 64 * 2**20

T = TypeVar("T")


class DamagedFile(BadInputError):
    """A file read back is not what it should be (not parseable, too large, too deep, or of
    the wrong shape)."""


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses aliases and nesting deeper than MAX_DEPTH while it
    composes the node tree (PyYAML composes recursively: 20,000 levels exhausted Python's
    stack)."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not supported", mark
            )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def check_size(size: int, shown: str, limit: int = MAX_DOCUMENT_BYTES) -> None:
    """DamagedFile for a document of more than `limit` bytes (a file's size can be checked
    before it is read)."""
    if size > limit:
        raise DamagedFile(f"{shown} is larger than {limit // 2**20} MiB ({size} bytes)")


def text_of(data: bytes | str, shown: str, limit: int = MAX_DOCUMENT_BYTES) -> str:
    """`data` as UTF-8 text, at most `limit` bytes."""
    check_size(len(data), shown, limit)
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DamagedFile(f"{shown} is not UTF-8 text") from error


def first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return " ".join(lines[:3])[:300] if lines else type(error).__name__


def parse_yaml(data: bytes | str, shown: str) -> Any:
    """The document of YAML text (None for an empty one)."""
    text = text_of(data, shown)
    try:
        return yaml.load(text, Loader=BoundedLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = "; ".join(part for part in (error.context, error.problem) if part)
        raise DamagedFile(f"{shown} is not valid YAML: {what}{where}") from error
    except yaml.YAMLError as error:
        raise DamagedFile(f"{shown} is not valid YAML: {first_line(error)}") from error


def parse_json(
    data: bytes | str, shown: str, max_depth: int = MAX_DEPTH, limit: int = MAX_DOCUMENT_BYTES
) -> Any:
    """The document of JSON text, at most `limit` bytes, nested at most `max_depth` levels."""
    text = text_of(data, shown, limit)
    try:
        document = json.loads(text)
    except RecursionError as error:
        raise DamagedFile(f"{shown} is nested deeper than {max_depth} levels") from error
    except ValueError as error:  # JSONDecodeError included
        raise DamagedFile(f"{shown} is not valid JSON: {first_line(error)}") from error
    if too_deep(document, max_depth):
        raise DamagedFile(f"{shown} is nested deeper than {max_depth} levels")
    return document


def too_deep(document: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and mappings nest deeper than `limit` (walked without recursion)."""
    pending = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in node)
    return False


def checked(document: Any, shape: type[T], shown: str) -> T:
    """`document` validated against the TypedDict `shape` (pydantic), or DamagedFile naming
    where it first differs."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(shape).validate_python(document)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the document"
        raise DamagedFile(f"{shown} is damaged: {where}: {problem['msg']}") from error


def read_json_as(data: bytes | str, shape: type[T], shown: str) -> T:
    """parse_json, then checked."""
    return checked(parse_json(data, shown), shape, shown)
