"""KEDA: on where a service scales on SQS; the operator reads exactly the declared queues through Pod Identity."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from components.addons import keda
from components.spec import SpecError, load
from components.versions import KEDA
from engine.mocks import ACCOUNT
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
POLICY = "aws:iam/rolePolicy:RolePolicy"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def queue_arns(root, stack: str) -> list[str]:
    decl = load(stack, root)
    return sorted(f"arn:aws:sqs:eu-west-1:{ACCOUNT}:{s.scaling.sqs.queue_name}" for s in decl.services if s.scaling.sqs)


def test_installed_where_the_notifications_worker_scales_on_sqs(stack):
    assert queue_arns(ROOT, stack.stack) == [f"arn:aws:sqs:eu-west-1:{ACCOUNT}:messaging-notifications"]
    release = stack.named("keda-keda", RELEASE)
    assert (release.inputs["version"], release.inputs["namespace"]) == (KEDA.version, keda.NAMESPACE)
    assert release.inputs["values"]["serviceAccount"]["operator"]["name"] == keda.OPERATOR_SERVICE_ACCOUNT
    assert stack.manifest("Namespace", keda.NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_operator_may_read_only_the_declared_queues(stack):
    statements = json.loads(stack.named("keda-operator-sqs", POLICY).inputs["policy"])["Statement"]
    assert statements == [{"Effect": "Allow", "Action": ["sqs:GetQueueAttributes"], "Resource": queue_arns(ROOT, stack.stack)}]


def test_operator_service_account_gets_the_role_by_pod_identity(stack):
    role = stack.named("keda-operator", "aws:iam/role:Role")
    assert "pods.eks.amazonaws.com" in role.inputs["assumeRolePolicy"]
    association = stack.named("keda-operator", ASSOCIATION)
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("keda", "keda-operator")
    assert role.urn in association.dependencies
    # The operator picks up its credentials at start: association and permissions come first.
    release = stack.named("keda-keda", RELEASE)
    assert association.urn in release.dependencies and stack.named("keda-operator-sqs", POLICY).urn in release.dependencies


def test_scalers_authenticate_as_the_operator(stack):
    auths = [r.inputs for r in stack.kubernetes_objects() if r.kind == "TriggerAuthentication"]
    assert auths and all(a["spec"] == keda.TRIGGER_AUTHENTICATION_SPEC for a in auths)


def test_every_declared_queue_is_granted(scratch):
    scratch.add_service(
        {
            "name": "mailer",
            "team": "messaging",
            "image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/mailer:1.0.0",
            "port": 8080,
            "tier": "batch",
            "scaling": {"sqs": {"queueName": "messaging-mail"}},
            "replicas": {"min": 1, "max": 5},
            "envs": {
                "staging": {"image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/mailer:1.0.0"},
                "prod": {"image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/mailer:1.0.0"},
            },
        }
    )
    rec = run("dev", scratch.root)
    statement = json.loads(rec.named("keda-operator-sqs", POLICY).inputs["policy"])["Statement"][0]
    assert statement["Resource"] == [f"arn:aws:sqs:eu-west-1:{ACCOUNT}:messaging-mail", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:messaging-notifications"]


def test_off_when_nothing_needs_it(scratch):
    # Only dev stops scaling on SQS and predictively: prod (validated on every run too) keeps its queue-driven worker.
    for service in ("notifications", "storefront"):
        scratch.edit(scratch.service_file(service), lambda d: d["envs"]["prod"].update(scaling=d.pop("scaling")))
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"].update(keda={"enabled": False}))
    rec = run("dev", scratch.root)
    assert not [r for r in rec if "platform:addons:Keda" in r.urn or r.name.startswith("keda-")]
    secret = rec.manifest("Secret", "shop-dev", "argocd")["metadata"]
    assert "enable_keda" not in secret["labels"] and not [k for k in secret["annotations"] if k.startswith("keda_")]


def test_a_service_scaling_on_sqs_needs_keda(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"].update(keda={"enabled": False}))
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert "stacks/services/messaging/notifications.yaml: scaling.sqs:" in str(err.value) and "keda" in str(err.value)


def test_a_predictive_service_needs_keda(scratch):
    scratch.edit("stacks/services/messaging/notifications.yaml", lambda d: d["envs"]["prod"].update(scaling=d.pop("scaling")))
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"].update(keda={"enabled": False}))
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert "stacks/services/web/storefront.yaml: scaling.predictive: needs the keda addon" in str(err.value)


def test_the_operator_may_query_prometheus_only_for_predictive_services(stack, scratch):
    """The forecast triggers need the flow to Prometheus, mirrored in Prometheus' namespace; without a predictive service, no flow."""
    allow = stack.manifest("NetworkPolicy", "allow-prometheus", keda.NAMESPACE)["spec"]
    assert allow["podSelector"] == {"matchLabels": keda.OPERATOR_POD_LABELS}
    assert allow["egress"][0]["ports"] == [{"port": 9090, "protocol": "TCP"}]
    mirrored = stack.manifest("NetworkPolicy", "allow-keda-prometheus", "monitoring")["spec"]
    assert mirrored["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": keda.NAMESPACE}}, "podSelector": {"matchLabels": keda.OPERATOR_POD_LABELS}}
    ]
    for service in ("notifications", "storefront"):
        scratch.edit(scratch.service_file(service), lambda d: d["scaling"].pop("predictive"))
    rec = run("dev", scratch.root)
    names = {r.metadata["name"] for r in rec.kubernetes_objects() if r.kind == "NetworkPolicy"}
    assert "allow-keda-prometheus" not in names and "allow-prometheus" not in {
        r.metadata["name"] for r in rec.kubernetes_objects() if r.kind == "NetworkPolicy" and r.metadata.get("namespace") == keda.NAMESPACE
    }


def test_settings_are_refused(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"].update(keda={"settings": {"replicas": 2}}))
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert "stacks/dev.yaml: addons.keda.settings.replicas: unknown key 'replicas'" in str(err.value)
