"""The one base for platform addons installed with Helm.

An addon is one file under components/addons/ holding one subclass of `Addon`: its name in `stacks/<stack>.yaml`,
its namespace, the addons it requires, a typed `Settings` model, and `install()`, which calls `self.helm(...)`
for each chart and adds its own objects. Subclasses register; the registry installs them in dependency order.

Per-stack Helm overrides (`addons.<name>.values`) are deep-merged over what `install()` passes, so
every value that reaches a chart goes through `helm()` and is visible to the values test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Optional

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.core.v1 import ConfigMap, Namespace
from pulumi_kubernetes.helm.v3 import Release, RepositoryOptsArgsDict

from components.contracts import Contracts, IstioContract, MonitoringContract, TracingContract
from components.monitoring.scrape import Metrics
from components.security import pod_security_labels
from components.spec import Declarations, deep_merge
from components.spec import catalog
from components.spec.base import Spec
from components.spec.stack import AddonSpec
from components.versions import Chart

from . import flows as net
from .gitops import METADATA_KEYS, gitops_metadata  # noqa: F401 (the program imports them from here)


Level = Literal["restricted", "baseline", "privileged"]


class NoSettings(Spec):
    """This addon has no settings beyond its Helm values."""


# The addon that brings Prometheus and the ServiceMonitor/PodMonitor CRDs.
MONITORING_ADDON = "prometheus"


@dataclass
class AddonContext:
    """What every addon may use: the declarations, the cluster, and the addons installed before it."""

    decl: Declarations
    region: str
    cluster_name: str
    provider: k8s.Provider
    oidc_provider_arn: pulumi.Output[str]
    installed: dict[str, "Addon"] = field(default_factory=dict)
    # What the enabled addons publish for the others (components/contracts.py), set before any installs.
    contracts: Contracts = field(default_factory=Contracts)
    # The stack's public zone (components/aws/dns.py) when it declares `dns`.
    dns_zone: Any = None

    @property
    def environment(self) -> str:
        return self.decl.environment

    @property
    def prod(self) -> bool:
        return self.decl.environment == "prod"


class Addon(pulumi.ComponentResource):
    name: ClassVar[str]
    namespace: ClassVar[str]
    # Namespaces the addon creates besides its own (e.g. Istio's ingress namespace). Together with
    # `namespace` they are reserved: no team may be named after them (components/spec/tenancy.py).
    extra_namespaces: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()
    Settings: ClassVar[type[Spec]] = NoSettings
    # The Pod Security Standard enforced on the addon's namespaces: restricted unless its pods
    # cannot pass it, and then `pod_security_reason` says why (a test fails on a lower level without one).
    pod_security: ClassVar[Level] = "restricted"
    pod_security_reason: ClassVar[str] = ""
    # An addon that describes the others (Argo CD's cluster secret carries every addon's namespace,
    # service account and IAM role) is installed after them, without depending on them.
    describes_others: ClassVar[bool] = False
    # Installed before this one when enabled, not required nor waited for (install order only).
    installs_after: ClassVar[tuple[str, ...]] = ()
    multi_chart: ClassVar[bool] = False

    # Every addon says whether it exposes metrics and how they are scraped (None: it exposes none).
    metrics: ClassVar[Optional[Metrics]]

    registry: ClassVar[dict[str, type["Addon"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            if not callable(cls.__dict__.get("install")):
                raise TypeError(f"addon {cls.__name__} must define install()")
            if "metrics" not in cls.__dict__:
                raise TypeError(f"addon {cls.__name__} must declare metrics: a Metrics saying how Prometheus scrapes it, or None if it exposes none")
            if cls.name in Addon.registry:
                raise TypeError(f"addon name {cls.name!r} is used by both {Addon.registry[cls.name].__name__} and {cls.__name__}")
            Addon.registry[cls.name] = cls
            catalog.register(catalog.AddonEntry(cls.name, cls.requires, cls.Settings, cls.__name__, cls.namespaces()))

    def __init__(self, ctx: AddonContext, spec: AddonSpec, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(f"platform:addons:{type(self).__name__}", self.name, None, opts)
        self.ctx = ctx
        # Typed by each addon where it reads them (`s: IstioSettings = self.settings`).
        self.settings: Any = self.validated(spec, ctx.environment, ctx.region)
        self._overrides = spec.values
        # An addon starts after everything it requires is in place (CRDs, webhooks, services).
        self._after = [resource for r in self.after(ctx.decl.spec.addon_enabled) for resource in ctx.installed[r].ready]
        self.ready: list[pulumi.Resource] = []
        self.created_namespaces: dict[str, Namespace] = {}
        self.namespace_resource = self.create_namespace(self.namespace, self.namespace_labels())
        self.install()
        self.network_policies()
        self.register_outputs(self.outputs())

    @classmethod
    def validated(cls, spec: AddonSpec, environment: str, region: Optional[str] = None) -> Spec:
        # The environment and region are context: some settings are required only in prod, or name regional resources.
        return cls.Settings.model_validate(spec.settings, context={"environment": environment, "region": region})

    @classmethod
    def after(cls, enabled: Callable[[str], bool]) -> tuple[str, ...]:
        """The addons installed before this one: what it requires, and Prometheus when the chart's monitors are on."""
        return cls.requires + ((MONITORING_ADDON,) if cls.monitored_by_chart(enabled) and MONITORING_ADDON not in cls.requires else ())

    @classmethod
    def monitored_by_chart(cls, enabled: Callable[[str], bool]) -> bool:
        return cls.metrics is not None and bool(cls.metrics.charts) and cls.name != MONITORING_ADDON and enabled(MONITORING_ADDON)

    # -- what subclasses implement: install(self) -> None, and optionally the rest -------------
    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> Optional[object]:
        """What this addon offers others (a components/contracts.py dataclass, published before any addon installs); None: nothing."""
        return None

    def install(self) -> None:
        """Every addon defines it (checked at class creation): its charts and its own objects."""
        raise NotImplementedError

    def namespace_labels(self) -> dict[str, str]:
        """Extra labels on the addon's namespace, e.g. the mesh's sidecar-injection label."""
        return {}

    def outputs(self) -> dict[str, Any]:
        """Outputs for the stack's gitops metadata: namespace, service account, IAM role."""
        return {"namespace": self.namespace}

    def flows(self) -> list[net.Flow]:
        """What the addon's pods must reach and be reached by (components/addons/flows.py); every
        namespace of the addon denies everything else, and may resolve names."""
        return []

    @property
    def vpc_cidr(self) -> str:
        return self.ctx.decl.spec.network.cidr

    def scraped(
        self, ports: tuple[int, ...], selector: Optional[dict[str, str]] = None, namespace: Optional[str] = None, name: str = "scrape"
    ) -> list[net.Flow]:
        """Prometheus scrapes these ports, when the stack has Prometheus (its contract names its pods)."""
        monitoring = self.ctx.contracts.get(MonitoringContract)
        return [net.scraped(monitoring.prometheus, ports, selector, namespace, name)] if monitoring else []

    def sidecar(self, namespace: str) -> list[net.Flow]:
        """The flows of a namespace whose pods get Istio's sidecar (read from the mesh's contracts)."""
        monitoring = self.ctx.contracts.get(MonitoringContract)
        return net.sidecar(
            namespace, self.ctx.contracts.require(IstioContract), monitoring.prometheus if monitoring else None, self.ctx.contracts.get(TracingContract)
        )

    def network_policies(self) -> None:
        """Default-deny in each of the addon's namespaces, then one allow per declared flow."""
        declared = self.flows()
        names = [(f.namespace or self.namespace, f.name) for f in declared]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TypeError(f"addon {self.name!r} declares flows {dupes} more than once")
        for namespace, created in self.created_namespaces.items():
            self.network_policy(namespace, "default-deny", net.default_deny(), created)
            self.network_policy(namespace, "allow-dns", net.dns(namespace).spec(), created)
        for f in declared:
            namespace = f.namespace or self.namespace
            self.network_policy(namespace, f"allow-{f.name}", f.spec(), self.created_namespaces.get(namespace))
            if f.both_ends:
                mirror = f.mirrored(self.namespace)
                self.network_policy(mirror.namespace or self.namespace, f"allow-{self.name}-{f.name}", mirror.spec(), self.created_namespace(mirror.namespace))

    def created_namespace(self, namespace: Optional[str]) -> Optional[Namespace]:
        """The Namespace object of this addon or of one installed before it (a mirrored flow's peer)."""
        for addon in (self, *self.ctx.installed.values()):
            if namespace in addon.created_namespaces:
                return addon.created_namespaces[namespace]
        return None

    def network_policy(self, namespace: str, name: str, spec: Any, created: Optional[pulumi.Resource]) -> k8s.networking.v1.NetworkPolicy:
        metadata: Any = {"name": name, "namespace": namespace}
        return k8s.networking.v1.NetworkPolicy(
            f"{self.name}-{namespace}-{name}",
            metadata=metadata,
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, provider=self.ctx.provider, depends_on=[created] if created else list(self._after)),
        )

    # -- helpers -------------------------------------------------------------------------------
    @property
    def k8s(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self.ctx.provider, depends_on=[self.namespace_resource, *self._after])

    def opts(self, depends_on: tuple = (), **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions.merge(self.k8s, pulumi.ResourceOptions(depends_on=list(depends_on), **kwargs))

    @classmethod
    def namespaces(cls) -> tuple[str, ...]:
        return (cls.namespace, *cls.extra_namespaces)

    def create_namespace(self, namespace: str, labels: Optional[dict[str, str]] = None, level: Optional[Level] = None) -> Namespace:
        """One of the addon's namespaces, at the addon's Pod Security level or `level` (a namespace for one privileged part)."""
        if namespace not in self.namespaces():
            # An undeclared namespace would not be reserved, and a team could claim it.
            raise TypeError(f"addon {self.name!r} creates namespace {namespace!r} without declaring it in extra_namespaces")
        self.created_namespaces[namespace] = k8s.core.v1.Namespace(
            f"{self.name}-{namespace}",
            metadata={
                "name": namespace,
                "labels": {**pod_security_labels(level or self.pod_security, self.ctx.decl.spec.pod_security_version), **(labels or {})},
            },
            opts=pulumi.ResourceOptions(parent=self, provider=self.ctx.provider),
        )
        return self.created_namespaces[namespace]

    def values_for(self, chart: Chart, values: dict[str, Any]) -> dict[str, Any]:
        """The addon's values, with the chart's monitors turned on when Prometheus runs, and the stack's overrides merged over them."""
        if self.metrics is not None and self.monitored_by_chart(self.ctx.decl.spec.addon_enabled):
            values = deep_merge(values, self.metrics.charts.get(chart.name, {}))
        overrides = self._overrides.get(chart.name, {}) if self.multi_chart else self._overrides
        return deep_merge(values, overrides)

    def helm(
        self, chart: Chart, values: dict[str, Any], release: Optional[str] = None, namespace: Optional[str] = None, depends_on: tuple = (), **kwargs: Any
    ) -> Release:
        """A Helm release of a pinned chart. helm.v3.Release runs hooks and waits for the release,
        which the addons here rely on (CRD installs, webhooks ready before their objects)."""
        repo: Optional[RepositoryOptsArgsDict] = None if chart.oci else {"repo": chart.repository}
        created = k8s.helm.v3.Release(
            f"{self.name}-{release or chart.name}",
            name=release or chart.name,
            chart=chart.chart_ref,
            version=chart.version,
            repository_opts=repo,
            namespace=namespace or self.namespace,
            values=self.values_for(chart, values),
            opts=self.opts(depends_on, **kwargs),
        )
        self.ready.append(created)
        return created

    def manifest(
        self,
        api_version: str,
        kind: str,
        name: str,
        spec: dict[str, Any],
        namespace: Optional[str] = None,
        depends_on: tuple = (),
        labels: Optional[dict[str, str]] = None,
        **fields: Any,
    ) -> CustomResource:
        """A custom resource owned by this addon, created after its releases (CRDs and webhooks)."""
        metadata = {"name": name, **({"namespace": namespace} if namespace else {}), **({"labels": labels} if labels else {})}
        return k8s.apiextensions.CustomResource(
            f"{self.name}-{kind.lower()}-{name}",
            api_version=api_version,
            kind=kind,
            metadata=metadata,
            spec=spec,
            opts=self.opts((*self.ready, *depends_on)),
            **fields,
        )

    def grafana_datasource(self, datasource: dict[str, Any]) -> ConfigMap:
        """A Grafana datasource provisioned from code: a ConfigMap Grafana's datasource sidecar loads, so
        each addon brings its own. Grafana expands $VAR in provisioning files: a literal $ is written $$."""
        monitoring = self.ctx.contracts.require(MonitoringContract)
        uid = datasource["uid"]
        return k8s.core.v1.ConfigMap(
            f"{self.name}-grafana-datasource-{uid}",
            metadata={"name": f"grafana-datasource-{uid}", "namespace": monitoring.grafana_namespace, "labels": dict(monitoring.datasource_label)},
            data={f"{uid}.yaml": yaml.safe_dump({"apiVersion": 1, "datasources": [datasource]}, sort_keys=False)},
            opts=self.k8s,
        )
