"""The two APIs the promotion gates read: Prometheus' HTTP API and the Kubernetes API of the staging cluster.

Both fail closed: anything but a well-formed answer (no connection, a timeout, a TLS or HTTP error,
a body that is not the API's JSON) raises Unreachable, naming the API, the address and the cause,
and the promotion stops. A Kubernetes object that does not exist (404) is an answer: None.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional

TIMEOUT_SECONDS = 10


class Unreachable(Exception):
    def __init__(self, api: str, url: str, cause: str):
        super().__init__(f"{api} at {url} did not answer ({cause}); the promotion gate fails closed: no gate is taken as passed")
        self.api = api


def _get(api: str, url: str, headers: dict[str, str], context: Optional[ssl.SSLContext], missing_ok: bool = False) -> Optional[Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        if missing_ok and err.code == 404:
            return None
        raise Unreachable(api, url, f"HTTP {err.code}: {err.read()[:300].decode(errors='replace')}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise Unreachable(api, url, str(getattr(err, "reason", err))) from None
    try:
        return json.loads(body)
    except ValueError:
        raise Unreachable(api, url, "the answer is not JSON") from None


@dataclass(frozen=True)
class Prometheus:
    """Instant queries against /api/v1/query. `url` is Prometheus' base address, e.g. the API server's
    service proxy .../api/v1/namespaces/monitoring/services/kube-prometheus-stack-prometheus:9090/proxy."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    context: Optional[ssl.SSLContext] = None

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        url = f"{self.url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
        answer = _get("Prometheus", url, dict(self.headers), self.context)
        if not isinstance(answer, dict) or answer.get("status") != "success" or not isinstance(answer.get("data"), dict):
            raise Unreachable("Prometheus", url, f"not a successful query answer: {str(answer)[:300]}")
        result = answer["data"].get("result")
        if answer["data"].get("resultType") != "vector" or not isinstance(result, list):
            raise Unreachable("Prometheus", url, f"expected an instant vector, got {answer['data'].get('resultType')!r}")
        return result


@dataclass(frozen=True)
class Kubernetes:
    """GETs against the Kubernetes API (the staging cluster's), with a bearer token."""

    url: str
    token: Optional[str] = None
    context: Optional[ssl.SSLContext] = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str) -> Optional[dict[str, Any]]:
        """One object, or None when it does not exist."""
        found = _get("the Kubernetes API", f"{self.url.rstrip('/')}{path}", self._headers(), self.context, missing_ok=True)
        if found is not None and not isinstance(found, dict):
            raise Unreachable("the Kubernetes API", self.url + path, "the answer is not an object")
        return found

    def list(self, path: str, label_selector: str) -> list[dict[str, Any]]:
        """The items of a collection (a collection that does not exist, e.g. a CRD not installed, fails closed)."""
        url = f"{self.url.rstrip('/')}{path}?" + urllib.parse.urlencode({"labelSelector": label_selector})
        found = _get("the Kubernetes API", url, self._headers(), self.context)
        if not isinstance(found, dict) or not isinstance(found.get("items"), list):
            raise Unreachable("the Kubernetes API", url, "not a list answer")
        return found["items"]


def tls_context(ca_file: Optional[str]) -> Optional[ssl.SSLContext]:
    return ssl.create_default_context(cafile=ca_file) if ca_file else None
