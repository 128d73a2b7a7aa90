"""Logs: Loki in the shape each stack declares (single binary on disk, or scalable on S3 through
Pod Identity), the node agent shipping container logs to Loki's OTLP endpoint, and Grafana's datasource."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml
from conftest import ROOT
from test_addon_tracing import release, removed_keys, dig
from engine import reference
from engine.chart_values import coalesce

from components.addons import logging as logs
from components.addons import prometheus, tracing
from components.spec import SpecError, load
from components.versions import KUBE_PROMETHEUS_STACK, LOKI, OPENTELEMETRY_COLLECTOR
from engine import chart_values
from engine.stacks import run

S3 = "aws:s3/"
BUCKET = "shop-prod-loki-eu-west-1"


def loki(rec) -> dict:
    return release(rec, logs.LOKI_RELEASE).inputs["values"]


def agent(rec) -> dict:
    return release(rec, logs.AGENT_RELEASE).inputs["values"]


def test_both_charts_are_pinned_loki_and_its_agents_in_namespaces_of_their_own(stack):
    for name, chart, namespace in ((logs.LOKI_RELEASE, LOKI, "logging"), (logs.AGENT_RELEASE, OPENTELEMETRY_COLLECTOR, "logging-agent")):
        inputs = release(stack, name).inputs
        assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (chart.name, chart.version, namespace)
        assert chart_values.unknown_keys(chart, inputs["values"]) == []


# -- Loki -------------------------------------------------------------------------------------


def test_dev_runs_one_loki_on_its_own_disk(dev):
    values = loki(dev)
    assert values["deploymentMode"] == "SingleBinary"
    assert values["singleBinary"]["replicas"] == 1
    assert [values[t]["replicas"] for t in ("read", "write", "backend")] == [0, 0, 0]
    assert values["singleBinary"]["persistence"] == {"storageClass": "gp3", "size": "10Gi"}
    assert values["loki"]["storage"] == {"type": "filesystem"}
    assert values["loki"]["commonConfig"]["replication_factor"] == 1
    assert values["loki"]["schemaConfig"]["configs"][0]["object_store"] == "filesystem"
    assert values["loki"]["compactor"]["delete_request_store"] == "filesystem"
    # No bucket, no AWS identity: nothing leaves the cluster.
    assert not [r for r in dev if r.type.startswith(S3) and r.name.startswith("logging-")]
    assert "storage_config" not in values["loki"]
    assert not [r for r in dev.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if r.inputs["namespace"] == "logging"]


def test_prod_runs_read_write_backend_on_s3(prod):
    values = loki(prod)
    assert values["deploymentMode"] == "SimpleScalable"
    assert values["singleBinary"]["replicas"] == 0
    assert [values[t]["replicas"] for t in ("read", "write", "backend")] == [3, 3, 3]
    assert values["loki"]["commonConfig"]["replication_factor"] == 3
    assert values["loki"]["storage"] == {"type": "s3", "s3": {"region": "eu-west-1"}}
    # The chart reads the chunks bucket from storage_config.aws when storage.bucketNames is absent.
    assert values["loki"]["storage_config"] == {"aws": {"bucketnames": BUCKET, "region": "eu-west-1"}}
    assert values["loki"]["schemaConfig"]["configs"][0]["object_store"] == "s3"
    assert values["chunksCache"] == {"enabled": True, "allocatedMemory": 2048} and values["resultsCache"] == {"enabled": True}


def test_loki_config_is_valid_for_its_chart(stack):
    values = loki(stack)
    merged = coalesce(chart_values.defaults(LOKI), values)
    # templates/validate.yaml: a schema is required, single binary and scalable targets are exclusive,
    # scalable targets need object storage, and the helm test needs the canary.
    assert merged["loki"]["schemaConfig"]["configs"] and not merged["loki"]["useTestSchema"]
    single, scalable = merged["singleBinary"]["replicas"], [merged[t]["replicas"] for t in ("read", "write", "backend")]
    assert (single > 0) != any(scalable)
    assert not any(scalable) or merged["loki"]["storage"]["type"] == "s3"
    assert merged["test"]["enabled"] <= merged["lokiCanary"]["enabled"]
    # Schema v13 on TSDB is what OTLP ingestion (structured metadata) needs.
    config = merged["loki"]["schemaConfig"]["configs"][0]
    assert (config["store"], config["schema"]) == ("tsdb", "v13") and merged["loki"]["limits_config"]["allow_structured_metadata"]
    # One tenant: the agent sends no X-Scope-OrgID.
    assert merged["loki"]["auth_enabled"] is False


def test_retention_is_the_stacks(dev, prod):
    for rec, hours in ((dev, 7 * 24), (prod, 30 * 24)):
        config = loki(rec)["loki"]
        assert config["limits_config"]["retention_period"] == f"{hours}h"
        assert config["compactor"]["retention_enabled"] is True


def test_bucket_is_private_encrypted_versioned_and_tls_only(prod):
    [bucket] = [b for b in prod.of_type("aws:s3/bucket:Bucket") if b.name.startswith("logging-")]
    assert bucket.inputs["bucket"] == BUCKET and bucket.protect and not bucket.inputs.get("forceDestroy")
    guard = lambda kind: prod.named("logging-loki", f"aws:s3/{kind}").inputs
    assert guard("bucketPublicAccessBlock:BucketPublicAccessBlock") | {"bucket": None} == {
        "bucket": None,
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    [rule] = guard("bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    assert guard("bucketVersioning:BucketVersioning")["versioningConfiguration"] == {"status": "Enabled"}
    [lifecycle] = guard("bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]
    assert lifecycle["noncurrentVersionExpiration"] == {"noncurrentDays": 7} and lifecycle["status"] == "Enabled"
    policy = json.loads(prod.named("logging-loki-tls-only", "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    [deny, only] = policy["Statement"]
    assert (deny["Effect"], deny["Action"], deny["Condition"]) == ("Deny", "s3:*", {"Bool": {"aws:SecureTransport": "false"}})
    assert (only["Sid"], only["Effect"], only["Resource"]) == ("OnlyTheBucketsPrincipals", "Deny", deny["Resource"])
    assert deny["Resource"] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]


def test_loki_reaches_its_bucket_alone_through_pod_identity(prod):
    role = prod.named("logging-loki", "aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"} and set(trust["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    statements = json.loads(prod.named("logging-loki-s3", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
    assert statements == [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{BUCKET}"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"arn:aws:s3:::{BUCKET}/*"},
    ]
    identity = prod.named("logging-loki", "aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert (identity["namespace"], identity["serviceAccount"], identity["clusterName"]) == ("logging", logs.SERVICE_ACCOUNT, "shop-prod")
    assert loki(prod)["serviceAccount"]["name"] == logs.SERVICE_ACCOUNT
    # The pods find their bucket, credentials and permissions on first start.
    deps = set(release(prod, logs.LOKI_RELEASE).dependencies)
    for name, kind in (
        ("logging-loki", "aws:eks/podIdentityAssociation:PodIdentityAssociation"),
        ("logging-loki-s3", "aws:iam/rolePolicy:RolePolicy"),
        ("logging-loki", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"),
    ):
        assert prod.named(name, kind).urn in deps, name


# -- the node agent ---------------------------------------------------------------------------


def test_agent_values_pass_the_charts_schema(stack):
    merged = coalesce(chart_values.defaults(OPENTELEMETRY_COLLECTOR), agent(stack))
    jsonschema.Draft7Validator(reference.chart_schema(OPENTELEMETRY_COLLECTOR)).validate(merged)
    defaults = chart_values.defaults(OPENTELEMETRY_COLLECTOR)
    assert all(dig(defaults, path) is not None for path in removed_keys(agent(stack)))


def test_agent_ships_every_nodes_container_logs_to_lokis_otlp_endpoint(stack):
    values = agent(stack)
    merged = coalesce(chart_values.defaults(OPENTELEMETRY_COLLECTOR), values)
    assert merged["mode"] == "daemonset"
    assert merged["presets"]["logsCollection"]["enabled"] and merged["presets"]["logsCollection"]["storeCheckpoints"]
    assert merged["presets"]["kubernetesAttributes"]["enabled"]
    # The preset appends the file log receiver; nothing else feeds the pipeline, nothing else runs.
    assert merged["config"]["service"]["pipelines"] == {"logs": {"receivers": [], "processors": ["memory_limiter", "batch"], "exporters": ["otlp_http/loki"]}}
    assert merged["config"]["receivers"] == {} and set(merged["config"]["exporters"]) == {"otlp_http/loki"}
    # Loki 3's native OTLP ingestion is /otlp/v1/logs; the OTLP/HTTP exporter appends /v1/logs.
    endpoint = merged["config"]["exporters"]["otlp_http/loki"]["endpoint"]
    assert endpoint + "/v1/logs" == "http://loki-gateway.logging.svc.cluster.local/otlp/v1/logs"
    # The gateway Service is <release>-gateway on the chart's port.
    assert chart_values.defaults(LOKI)["gateway"]["service"]["port"] == 80 and logs.LOKI_GATEWAY == f"{logs.LOKI_RELEASE}-gateway"
    assert merged["tolerations"] == [{"operator": "Exists"}]


def test_agent_opens_no_host_port(stack):
    merged = coalesce(chart_values.defaults(OPENTELEMETRY_COLLECTOR), agent(stack))
    with_host_port = {name for name, port in chart_values.defaults(OPENTELEMETRY_COLLECTOR)["ports"].items() if "hostPort" in port}
    assert with_host_port and all(not merged["ports"][name]["enabled"] for name in with_host_port)


def test_agent_reads_as_root_but_without_capabilities(stack):
    context = agent(stack)["securityContext"]
    assert (context["runAsUser"], context["allowPrivilegeEscalation"], context["readOnlyRootFilesystem"]) == (0, False, True)
    assert context["capabilities"] == {"drop": ["ALL"]}
    # hostPath volumes: the agents' own namespace says so rather than failing admission; Loki's stays baseline.
    assert stack.manifest("Namespace", logs.AGENT_NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert stack.manifest("Namespace", logs.NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


# -- Grafana ----------------------------------------------------------------------------------


def datasource(rec, uid: str) -> dict:
    config = rec.manifest("ConfigMap", f"grafana-datasource-{uid}", prometheus.NAMESPACE)
    sidecar = chart_values.defaults(KUBE_PROMETHEUS_STACK)["grafana"]["sidecar"]["datasources"]
    assert config["metadata"]["labels"] == {sidecar["label"]: sidecar["labelValue"]}
    [source] = yaml.safe_load(config["data"][f"{uid}.yaml"])["datasources"]
    return source


def test_loki_datasource_links_trace_ids_to_jaeger(stack):
    source = datasource(stack, logs.LOKI_DATASOURCE_UID)
    assert (source["type"], source["url"]) == ("loki", logs.LOKI_URL)
    fields = source["jsonData"]["derivedFields"]
    assert {f["datasourceUid"] for f in fields} == {tracing.JAEGER_DATASOURCE_UID}
    # Grafana expands $VAR in provisioning files: the link template must be escaped.
    assert {f["url"] for f in fields} == {"$${__value.raw}"}
    by_type = {f["matcherType"]: f["matcherRegex"] for f in fields}
    assert by_type["label"] == "trace_id"
    line = re.compile(by_type["regex"].replace("(?i)", ""), re.IGNORECASE)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    for text in (f'{{"level":"info","trace_id":"{trace}"}}', f"msg=ok traceId={trace}", f"traceID: {trace}"):
        assert line.search(text).group(1) == trace, text
    assert not line.search("trace_id=not-a-trace-id")


def test_the_three_datasources_point_at_each_other(stack):
    # Prometheus is the chart's own datasource; dashboards and links use its uid.
    assert chart_values.defaults(KUBE_PROMETHEUS_STACK)["grafana"]["sidecar"]["datasources"]["uid"] == prometheus.PROMETHEUS_DATASOURCE_UID
    jaeger = datasource(stack, tracing.JAEGER_DATASOURCE_UID)
    assert jaeger["jsonData"]["tracesToLogsV2"]["datasourceUid"] == datasource(stack, logs.LOKI_DATASOURCE_UID)["uid"]
    assert jaeger["jsonData"]["tracesToLogsV2"]["tags"][0]["value"] == logs.LOKI_SERVICE_LABEL


# -- settings and switches --------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"mode": "distributed"}, r"mode: Input should be 'single-binary' or 'simple-scalable'"),
        ({"mode": "simple-scalable", "replicas": 2}, r"replicas: Input should be greater than or equal to 3"),
        ({"replicas": 3}, r"replicas applies to mode simple-scalable only"),
        ({"retentionDays": 0}, r"retentionDays: Input should be greater than or equal to 1"),
        ({"bucketName": "Logs_Bucket"}, r"bucketName: String should match pattern"),
    ],
)
def test_bad_settings_are_rejected(scratch, settings, message):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["logging"]["settings"].update(settings))
    with pytest.raises(SpecError, match=r"stacks/dev.yaml: addons.logging.settings") as error:
        load("dev", scratch.root)
    assert re.search(message, str(error.value)), str(error.value)


def test_logging_requires_prometheus(scratch):
    def edit(d):
        for name in ("prometheus", "flagger", "kubecost", "tracing"):
            d["addons"].get(name, {})["enabled"] = False

    scratch.edit("stacks/dev.yaml", edit)
    with pytest.raises(SpecError, match=r"addons.logging: requires prometheus, which is not enabled in this stack"):
        load("dev", scratch.root)


def test_a_bucket_name_can_be_declared(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["logging"]["settings"].update(bucketName="acme-shop-prod-logs"))
    rec = run("prod", scratch.root)
    [bucket] = [b for b in rec.of_type("aws:s3/bucket:Bucket") if b.name.startswith("logging-")]
    assert bucket.inputs["bucket"] == "acme-shop-prod-logs"
    assert loki(rec)["loki"]["storage_config"]["aws"]["bucketnames"] == "acme-shop-prod-logs"


def test_turning_logging_off_removes_only_logging_and_the_trace_to_logs_link(scratch, dev):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["logging"].update(enabled=False))
    without = run("dev", scratch.root)
    assert "tracesToLogsV2" not in datasource(without, tracing.JAEGER_DATASOURCE_UID)["jsonData"]
    removed = {r.urn for r in dev} - {r.urn for r in without}
    assert removed and all("platform:addons:Logging" in urn for urn in removed), sorted(removed)[:5]
    assert {r.urn for r in without} <= {r.urn for r in dev}
    assert load("dev", ROOT).spec.addon_enabled("logging")
