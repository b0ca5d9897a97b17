"""What the providers' connectors share: an HTTP client, error answers, the right retry."""

from __future__ import annotations

from typing import Any

import httpx

from omniroute.channels import DeliveryError

__all__ = ["Provider"]


class Provider:
    """One provider's REST API: a client made on first use, and its answers as delivery errors."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def post(self, url: str, **kwargs: Any) -> dict[str, Any]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            reply = await self._client.post(url, **kwargs)
        except httpx.HTTPError as e:
            raise DeliveryError(f"{url}: {e!r}", retry=True) from e
        if reply.status_code >= 500 or reply.status_code == 429:
            raise DeliveryError(f"{url}: answered {reply.status_code}", retry=True)
        if reply.status_code >= 400:
            # The provider refused the message itself (a wrong number, no consent):
            # sending it again will not help.
            raise DeliveryError(f"{url}: answered {reply.status_code}: {reply.text[:300]}", retry=False)
        try:
            answer = reply.json()
        except ValueError as e:
            raise DeliveryError(f"{url}: answered {reply.status_code} without JSON", retry=False) from e
        if not isinstance(answer, dict):
            raise DeliveryError(
                f"{url}: answered {reply.status_code} with {type(answer).__name__}", retry=False
            )
        return answer
