"""Charts written to a file: PNG or SVG by the file's suffix, drawn on an Agg
canvas of their own (no pyplot, no global backend, no display).

::

    fmt = chart_format(path)          # a bad suffix fails before any drawing
    fig = figure(figsize=(12, 5))
    ax = fig.add_subplot()
    ...
    save_chart(fig, path, fmt)

matplotlib is imported on the first :func:`figure`, so checking a suffix costs nothing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from omniroute.errors import InvalidInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CHART_SUFFIXES", "chart_format", "figure", "save_chart"]

CHART_SUFFIXES: tuple[str, ...] = (".png", ".svg")


def chart_format(path: str | os.PathLike[str]) -> str:
    """``png`` or ``svg`` from the file's suffix (any case); anything else is an error."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in CHART_SUFFIXES:
        raise InvalidInputError(
            f"chart: {os.fspath(path)!r} ends in {suffix or 'no suffix'}; "
            f"a chart is {' or '.join(CHART_SUFFIXES)}"
        )
    return suffix[1:]


def figure(**kwargs: Any) -> Figure:
    """A matplotlib ``Figure(**kwargs)`` (constrained layout unless told otherwise) bound to an Agg
    canvas of its own: nothing to close afterwards, and no backend chosen for the whole process."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**{"layout": "constrained", **kwargs})
    FigureCanvasAgg(fig)
    return fig


def save_chart(fig: Figure, path: str | os.PathLike[str], fmt: str) -> None:
    """Write ``fig`` to ``path`` as ``fmt`` (from :func:`chart_format`) at 100 dpi; an SVG carries
    no date, so the same chart is the same file."""
    metadata = {"Date": None} if fmt == "svg" else None
    fig.savefig(os.fspath(path), format=fmt, dpi=100, metadata=metadata)
