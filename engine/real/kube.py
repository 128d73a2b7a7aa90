"""A small Kubernetes API client over the standard library: the local cluster's kubeconfig names
certificate files, and the checks need only discovery, server-side apply and delete."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FIELD_MANAGER = "platform-engine"
# API groups Kubernetes itself serves (no CRD behind them).
BUILT_IN_GROUPS = frozenset(
    ("", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io", "scheduling.k8s.io", "storage.k8s.io")
    + ("node.k8s.io", "admissionregistration.k8s.io", "coordination.k8s.io", "discovery.k8s.io")
)


@dataclass
class Response:
    status: int
    body: Any
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        """The server's own words for a failed request (a Status object's message)."""
        if isinstance(self.body, dict) and self.body.get("message"):
            return str(self.body["message"])
        return f"HTTP {self.status}: {str(self.body)[:500]}"


@dataclass(frozen=True)
class ApiResource:
    plural: str
    namespaced: bool


class NoSuchApi(LookupError):
    """The server serves no such apiVersion/kind (a CRD that is not installed, a removed API)."""


class Kube:
    def __init__(self, kubeconfig: Path):
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        url = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        self.context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.context.load_cert_chain(user["client-certificate"], user["client-key"])
        self._discovery: dict[str, dict[str, ApiResource]] = {}

    def request(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None, content_type: str = "application/json") -> Response:
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=60)
        try:
            conn.request(method, path, body=data, headers={"Content-Type": content_type, "Accept": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
            warnings = [_warning_text(w) for w in resp.headers.get_all("Warning") or []]
        finally:
            conn.close()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Response(resp.status, parsed, warnings)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                resp = self.request("GET", "/readyz")
                if resp.ok:
                    return
                last = resp.message
            except OSError as err:
                last = str(err)
            time.sleep(1)
        raise TimeoutError(f"kube-apiserver not ready after {timeout:.0f}s: {last}")

    def resources(self, api_version: str) -> dict[str, ApiResource]:
        """kind -> resource for one group/version, from the server's discovery."""
        if api_version not in self._discovery:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            resp = self.request("GET", path)
            found = {}
            if resp.ok:
                for r in resp.body.get("resources", []):
                    if "/" not in r["name"]:
                        found[r["kind"]] = ApiResource(r["name"], r["namespaced"])
            self._discovery[api_version] = found
        return self._discovery[api_version]

    def forget(self, api_version: str) -> None:
        self._discovery.pop(api_version, None)

    def path(self, obj: dict[str, Any], named: bool = True) -> str:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        resource = self.resources(api_version).get(kind)
        if resource is None:
            raise NoSuchApi(f"the server serves no {kind} in {api_version}")
        prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        meta = obj.get("metadata", {})
        ns = f"/namespaces/{meta.get('namespace') or 'default'}" if resource.namespaced else ""
        return f"{prefix}{ns}/{resource.plural}" + (f"/{meta['name']}" if named else "")

    def apply(self, obj: dict[str, Any], dry_run: bool = False) -> Response:
        """Server-side apply with strict field validation: unknown or duplicate fields are errors."""
        query = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            query["dryRun"] = "All"
        return self.request("PATCH", self.path(obj), obj, query, content_type="application/apply-patch+yaml")

    def get(self, obj: dict[str, Any]) -> Response:
        return self.request("GET", self.path(obj))

    def list_names(self, path: str) -> list[str]:
        resp = self.request("GET", path)
        return [i["metadata"]["name"] for i in resp.body.get("items", [])] if resp.ok else []


def _warning_text(header: str) -> str:
    """A Warning header is `299 - "text"`; the text is what kubectl prints."""
    match = re.match(r'\s*\d{3}\s+\S+\s+"(.*)"\s*$', header)
    return match.group(1).replace('\\"', '"') if match else header
