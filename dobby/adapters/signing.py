"""Ed25519 keys for signed checkpoints (SPEC §11): a PEM key file made by `dobby audit keygen`, and verification."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dobby.adapters.settings import SettingsError


class SigningKeyError(SettingsError):
    """A key file or public key dobby cannot use; the message says which and why."""


@dataclass(frozen=True)
class Ed25519Signer:
    """Signs checkpoints with a private key held in memory."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def generate_key_file(path: Path, *, make_directory: bool = False) -> Ed25519Signer:
    """A new key in `path` (PKCS#8 PEM, mode 0600); an existing file is never overwritten, and a missing directory
    is refused (a typo would otherwise leave the key where nobody looks) unless `make_directory`."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    if make_directory:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise SigningKeyError(f"{path}: the directory {path.parent} does not exist (make it first)")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path} exists; a signing key is never overwritten (move it away first)") from None
    except OSError as error:
        raise SigningKeyError(f"{path}: {error.strerror or error}") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return Ed25519Signer(key)


def load_signer(path: Path) -> Ed25519Signer:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as error:
        raise SigningKeyError(f"DOBBY_AUDIT_SIGNING_KEY {path}: {error.strerror or error}") from None
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"DOBBY_AUDIT_SIGNING_KEY {path}: not a PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"DOBBY_AUDIT_SIGNING_KEY {path}: not an Ed25519 key (make one with `dobby audit keygen`)"
        )
    return Ed25519Signer(key)


def public_key_from_base64(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError("the public key is not base64") from None
    if len(raw) != 32:
        raise SigningKeyError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
    return raw


def signature_is_valid(public_key: bytes, message: bytes, signature: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
