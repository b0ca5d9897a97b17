"""``omniroute serve``: the open API over HTTP, with who may do what (``docs/server.md``)."""

from omniroute.server.access import ROLE_SCOPES, SCOPES, Access, Principal
from omniroute.server.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "ROLE_SCOPES", "SCOPES", "Access", "Principal", "create_app"]
