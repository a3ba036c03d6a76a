"""Where the files that ship with the tool are: in the wheel, or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def shipped_dir(name: str) -> Path:
    """The shipped folder `name` (`agents`, `styles` or `workflows`).

    An installed wheel carries them inside the package under `_shipped/`; a source checkout
    (an editable install) has them at the top of the repository.
    """
    installed = _PACKAGE / "_shipped" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


def default_workflow() -> Path:
    """The workflow used when the user names none."""
    return shipped_dir("workflows") / "default.yaml"
