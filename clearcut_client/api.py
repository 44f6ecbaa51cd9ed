"""A small JSON-over-HTTP client of the Clearcut API (urllib3: pooled keep-alive connections)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import urllib3

RETRIES_ON_503 = 5


@dataclass
class ApiError(Exception):
    status: int
    problem: dict[str, Any]

    def __str__(self) -> str:
        detail = self.problem.get("detail") or self.problem.get("title") or ""
        return f"{self.status} {self.problem.get('code', '')}: {detail}".strip()


class Api:
    """The API at `base_url` (e.g. http://127.0.0.1:8000/api/v1) with one API key."""

    def __init__(self, base_url: str, api_key: str, *, pool: urllib3.PoolManager) -> None:
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/api/v1") else base + "/api/v1"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self._pool = pool

    def get(self, path: str) -> Any:
        return self._call("GET", path, None)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, json.dumps(body).encode("utf-8"))

    def _call(self, method: str, path: str, body: bytes | None) -> Any:
        for attempt in range(RETRIES_ON_503 + 1):
            response = self._pool.request(
                method,
                self.base_url + path,
                body=body,
                headers=self._headers,
                retries=urllib3.Retry(total=3, connect=3, read=0, status=0, redirect=0),
                timeout=urllib3.Timeout(connect=10, read=120),
            )
            # A 503 (the store down: nothing was counted) is worth waiting out, briefly.
            if response.status == 503 and attempt < RETRIES_ON_503:
                time.sleep(float(response.headers.get("Retry-After", "2")))
                continue
            try:
                payload = json.loads(response.data) if response.data else None
            except ValueError:
                payload = {"detail": response.data[:200].decode("utf-8", "replace")}
            if response.status >= 400:
                raise ApiError(response.status, payload if isinstance(payload, dict) else {})
            return payload
        raise AssertionError("unreachable")
