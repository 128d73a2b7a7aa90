"""A service's secrets: Vault paths read through External Secrets, or values sealed with kubeseal."""

from __future__ import annotations

import base64
import binascii
from typing import Optional

from pydantic import field_validator

from . import limits
from .base import DNS_LABEL, Spec, field


class SecretRef(Spec):
    name: str = field("Name of the Kubernetes Secret the values land in.", pattern=DNS_LABEL)
    vault_path: str = field("Vault KV path the values are read from.", pattern=r"^[a-z0-9][a-z0-9_/\-]*$")
    keys: list[str] = field("Keys at the path, exposed to the container as environment variables of the same name.", min_length=1)

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            problem = limits.env_name_problem(key)
            if problem:
                raise ValueError(problem)
        dupes = limits.duplicate(keys)
        if dupes:
            raise ValueError(f"{dupes} listed twice; each key becomes one environment variable")
        return keys


class SealedSecretRef(Spec):
    name: str = field(
        "Name of the SealedSecret and of the Secret the controller unseals it into, in the team's namespace (kubeseal --name).", pattern=DNS_LABEL
    )
    encrypted_data: dict[str, str] = field(
        "Environment variable name -> ciphertext printed by `kubeseal --raw` for this stack's cluster (strict scope: "
        "sealed for this name and the team's namespace). Ciphertext only, never the plain value.",
        min_length=1,
    )

    @field_validator("encrypted_data")
    @classmethod
    def _ciphertexts(cls, data: dict[str, str]) -> dict[str, str]:
        for key, text in data.items():
            problem = limits.env_name_problem(key)
            if problem:
                raise ValueError(problem)
            problem = _ciphertext_problem(text)
            if problem:
                raise ValueError(f"{key}: {problem}; paste the output of `kubeseal --raw`, never the plain value")
        problem = limits.object_data_problem("unsealed Secret", sum(len(k.encode()) + _plaintext_bytes(t) for k, t in data.items()))
        if problem:
            raise ValueError(problem)
        return data


# kubeseal's hybrid encryption: a 2-byte length, the RSA-OAEP-encrypted session key (the key size:
# 2048 to 8192 bits, 4096 by default), then the AES-GCM ciphertext with its 16-byte tag.
RSA_CIPHERTEXT_BYTES = range(256, 1025)
GCM_TAG_BYTES = 16


def _ciphertext_problem(text: str) -> Optional[str]:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "not base64"
    rsa_bytes = int.from_bytes(raw[:2], "big")
    if rsa_bytes not in RSA_CIPHERTEXT_BYTES or len(raw) < 2 + rsa_bytes + GCM_TAG_BYTES:
        return f"{len(raw)} bytes that are not a sealed value (too short, or no RSA session key)"
    return None


def _plaintext_bytes(text: str) -> int:
    """The size of the value a (well-formed) sealed value unseals to: what is left after the
    length prefix, the RSA-encrypted session key and the GCM tag."""
    raw = base64.b64decode(text)
    return len(raw) - 2 - int.from_bytes(raw[:2], "big") - GCM_TAG_BYTES
