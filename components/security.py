"""The restricted Pod Security Standard's container settings, in one place: services' containers
and every addon chart that lets us set its containers' security context use this."""

RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
