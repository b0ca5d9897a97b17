"""The pages: plain HTML, CSS and JavaScript served by the package, no build
step. The pages are public; what they show comes from the API, which is not."""

from __future__ import annotations

from pathlib import Path

from litestar import get
from litestar.response import File

__all__ = ["PAGES", "STATIC"]

STATIC = Path(__file__).parent / "static"
_PUBLIC = {"public": True}


def _page(name: str) -> File:
    return File(STATIC / name, content_disposition_type="inline", media_type="text/html")


@get("/", opt=_PUBLIC, include_in_schema=False)
async def login_page() -> File:
    """Log in; an agent goes on to the desktop, everyone else to the wallboard."""
    return _page("login.html")


@get("/desktop", opt=_PUBLIC, include_in_schema=False)
async def desktop_page() -> File:
    """The agent desktop: offers, the conversation, the customer across channels."""
    return _page("desktop.html")


@get("/wallboard", opt=_PUBLIC, include_in_schema=False)
async def wallboard_page() -> File:
    """The supervisor wallboard: live figures, agents, the day by interval."""
    return _page("wallboard.html")


PAGES = [login_page, desktop_page, wallboard_page]
