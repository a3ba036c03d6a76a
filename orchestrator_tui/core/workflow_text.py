"""Reading the text of a workflow file: YAML (safely) or JSON, duplicate keys refused, each
mapping remembering its line for error messages. Pure: no file I/O here."""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from orchestrator_tui.core.errors import WorkflowError

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class LineMap(dict[Any, Any]):
    """A YAML mapping that remembers the line it starts on, for error messages."""
    __slots__ = ("line",)
    line: int


class _Loader(_BaseLoader):
    """Safe YAML loading that refuses duplicate keys and records mapping lines."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[LineMap]:
    data = LineMap()
    data.line = node.start_mark.line + 1
    yield data
    own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)
    inherited = len(node.value) - own
    seen: set[Hashable] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=False)
        if not isinstance(key, Hashable) or key in seen:
            what = "duplicate" if isinstance(key, Hashable) else "unhashable"
            raise ConstructorError(None, None, f"found {what} key {key!r}", key_node.start_mark)
        if index >= inherited:
            seen.add(key)
        data[key] = loader.construct_object(value_node, deep=False)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise ValueError(f"found duplicate key {twice!r}")
    return data


def load_json(text: str, *, source: str) -> object:
    """The JSON document in `text`; duplicate keys are an error, as in YAML files."""
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg}", file=source) from exc
    except ValueError as exc:
        raise WorkflowError(f"invalid JSON: {exc}", file=source) from exc


def load_yaml(text: str, *, source: str) -> object:
    """The YAML document in `text`, safely loaded; duplicate keys are an error."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or exc
        raise WorkflowError(f"invalid YAML{where}: {problem}", file=source) from exc
