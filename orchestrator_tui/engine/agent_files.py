"""Reading one agent file leniently: bytes to text, front matter to a mapping, and problems.

Agent files in the wild are messy. The front matter is read with strict YAML first; when
that fails, a line-based `key: value` reader takes over (unquoted colons, unindented
continuation lines, `<example>` blocks, literal `\\n`, `- item` and `[a, b]` lists, block
scalars) and the YAML error is reported with its line in the file. Nothing here raises for
a bad file: what is wrong becomes a `Problem` with the file and the line (1-based, the
opening `---` being line 1; line 0 means the file as a whole).
"""

from __future__ import annotations

import re
import stat
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_READ_BYTES = 1024 * 1024
"""The head of a file that is read; a longer file keeps its front matter, its prompt is cut."""

SEVERITIES = ("error", "warning", "note")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one agent file, with where it is.

    `severity` is "error" (the file or a field was ignored), "warning" (read, but not as
    written) or "note" (read as written; worth knowing).
    """

    path: Path
    line: int
    message: str
    severity: str = "warning"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line > 0 else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class AgentFile:
    """What one file holds: its front matter, the line of each key, and its body (prompt)."""

    path: Path
    meta: dict[str, Any]
    lines: dict[str, int]
    body: str
    has_front_matter: bool


def read_agent_file(path: Path, problems: list[Problem]) -> AgentFile | None:
    """Read one agent file, appending what is wrong to `problems`; None if unreadable."""
    text = read_head(path, problems)
    if text is None:
        return None
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return AgentFile(path, {}, {}, text.strip(), has_front_matter=False)
    close = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if close is None:
        problems.append(Problem(path, 1, "front matter opened by '---' is never closed by a "
                                         "'---' line; the whole file is read as the prompt",
                                "error"))
        return AgentFile(path, {}, {}, text.strip(), has_front_matter=False)
    header = lines[1:close]
    meta, key_lines = read_front_matter(header, path, problems)
    body = "\n".join(lines[close + 1:]).strip()
    return AgentFile(path, meta, key_lines, body, has_front_matter=True)


def read_head(path: Path, problems: list[Problem]) -> str | None:
    """The text of the first `MAX_READ_BYTES` of a regular file, or None (reported)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            problems.append(Problem(path, 0, "not a regular file; skipped", "error"))
            return None
        with path.open("rb") as handle:
            data = handle.read(MAX_READ_BYTES + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        problems.append(Problem(path, 0, f"cannot read the file: {reason}; skipped", "error"))
        return None
    truncated = len(data) > MAX_READ_BYTES
    if truncated:
        data = data[:MAX_READ_BYTES]
        data = data[:data.rfind(b"\n") + 1] or data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        problems.append(Problem(path, line, "not valid UTF-8 (first bad byte on this line); "
                                            "undecodable bytes were replaced", "warning"))
        text = data.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if truncated:
        cut = text.count("\n") + 1
        problems.append(Problem(path, cut, f"file is {info.st_size / 1e6:.1f} MB; only its "
                                           f"first {MAX_READ_BYTES // 1024} KiB are read, so "
                                           "the prompt is cut at this line", "warning"))
    return text


def read_front_matter(header: list[str], path: Path,
                      problems: list[Problem]) -> tuple[dict[str, Any], dict[str, int]]:
    """The mapping of the front matter lines (file line 2 onwards) and each key's line."""
    entries = _entries(header)
    key_lines: dict[str, int] = {}
    for entry in entries:
        if entry.key in key_lines:
            problems.append(Problem(path, entry.line, f"key {entry.key!r} appears again (first "
                                                      f"on line {key_lines[entry.key]}); this "
                                                      "one is used"))
        key_lines[entry.key] = entry.line
    if not "".join(header).strip():
        return {}, key_lines
    try:
        loaded = yaml.load("\n".join(header), Loader=_LOADER)  # a safe loader (C if built)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 2 if mark is not None else 2
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        problems.append(Problem(path, line, f"front matter is not valid YAML ({reason}); "
                                            "read line by line instead", "warning"))
        return {entry.key: _value(entry) for entry in entries}, key_lines
    if loaded is None:
        return {}, key_lines
    if not isinstance(loaded, dict):
        problems.append(Problem(path, 2, f"front matter is a {_kind(loaded)}, not a mapping "
                                         "of `key: value` lines; ignored", "error"))
        return {}, {}
    return {str(key): value for key, value in loaded.items()}, key_lines


# A key at the start of a line: `name:` followed by a space, a tab or the end of the line.
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*:(?:[ \t]+(.*))?$")
_BLOCK = ("|", "|-", "|+", ">", ">-", ">+")
_PLAIN_TOKEN = re.compile(r"[\w.+-]+")


@dataclass
class _Entry:
    """One top-level key as written: its line, the text after the colon, the lines below."""

    key: str
    line: int
    head: str
    more: list[str] = field(default_factory=list)
    open_examples: int = 0

    def add(self, text: str) -> None:
        """Count the `<example>` blocks `text` opens and closes (`head` is added first)."""
        self.open_examples += text.count("<example>") - text.count("</example>")


def _entries(header: list[str]) -> list[_Entry]:
    """The top-level keys of front matter lines; other lines continue the key above them.

    A line inside an unclosed `<example>` block continues the value even when it looks
    like a key (`user: ...`), as such blocks are prose.
    """
    entries: list[_Entry] = []
    for number, raw in enumerate(header, start=2):
        line = raw.rstrip()
        match = _KEY.match(line)
        current = entries[-1] if entries else None
        if match and not (current and current.open_examples > 0):
            current = _Entry(match[1], number, (match[2] or "").strip())
            current.add(current.head)
            entries.append(current)
        elif current is not None and not line.startswith("#"):
            current.more.append(line)
            current.add(line)
    return entries


def _value(entry: _Entry) -> Any:
    """The value of one loosely read key."""
    more = entry.more
    while more and not more[-1].strip():
        more = more[:-1]
    if entry.head in _BLOCK:
        return _block(entry.head, more)
    if not entry.head and more:
        nested = _nested(more)
        if nested is not None:
            return nested
    return _scalar(" ".join([entry.head, *(line.strip() for line in more if line.strip())]))


def _block(indicator: str, lines: list[str]) -> str:
    """A `|` (kept lines) or `>` (folded lines) block scalar."""
    text = textwrap.dedent("\n".join(lines)).strip("\n")
    if indicator.startswith(">"):
        paragraphs = re.split(r"\n\s*\n", text)
        text = "\n\n".join(" ".join(part.split("\n")) for part in paragraphs)
    return text


def _nested(lines: list[str]) -> Any:
    """An indented list or mapping under a key, or None if the lines are plain text."""
    try:
        loaded = yaml.safe_load(textwrap.dedent("\n".join(lines)))
    except yaml.YAMLError:
        loaded = None
    if isinstance(loaded, (list, dict)):
        return loaded
    stripped = [line.strip() for line in lines if line.strip()]
    if stripped and all(line == "-" or line.startswith("- ") for line in stripped):
        return [_scalar(line[1:].strip()) for line in stripped]
    return None


def _scalar(text: str) -> Any:
    """One loosely read value: a flow list, a quoted string, a bool or number, or text."""
    if text.startswith("[") and text.endswith("]"):
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            return [_unquote(part.strip()) for part in text[1:-1].split(",") if part.strip()]
        return loaded
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            return text[1:-1]
        return loaded if isinstance(loaded, str) else text[1:-1]
    if _PLAIN_TOKEN.fullmatch(text):
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, (bool, int, float)):
            return loaded
    return text.replace("\\n", "\n")


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _kind(value: object) -> str:
    return {list: "list", str: "text", int: "number", float: "number",
            bool: "boolean"}.get(type(value), type(value).__name__)
