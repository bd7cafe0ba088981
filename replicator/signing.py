"""Ed25519 signatures over a bundle's canonical manifest.

The trainer signs ``manifest.json`` without its ``signature`` field, serialised
canonically (sorted keys, no spaces, UTF-8); the manifest lists the sha256 of
every file, so the signature covers the whole bundle. Regions trust one public
key from their settings (``EDGERANK_TRUSTED_KEY``) and refuse anything else.
Keys are PEM files: the private key PKCS#8 (mode 0600), the public key
SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from replicator.errors import ReplicatorError, VerificationError
from trainer.bundle import MANIFEST, write_atomic

ALGORITHM = "ed25519"


def canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def keygen(private_path: Path) -> tuple[Path, Path]:
    """Write a new key pair: ``private_path`` (0600) and ``private_path`` + ``.pub``."""
    public_path = private_path.with_name(private_path.name + ".pub")
    for p in (private_path, public_path):
        if p.exists():
            raise ReplicatorError(f"{p} already exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ReplicatorError(f"cannot read the signing key {path}: {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ReplicatorError(f"{path} is not an ed25519 private key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as e:
        raise ReplicatorError(f"cannot read the trusted key {path}: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise ReplicatorError(f"{path} is not an ed25519 public key")
    return key


def sign_manifest(manifest: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    value = base64.b64encode(key.sign(canonical(manifest))).decode()
    return {**manifest, "signature": {"alg": ALGORITHM, "key_id": key_id(key.public_key()), "value": value}}


def verify_manifest(manifest: dict[str, Any], trusted: Ed25519PublicKey) -> None:
    """Raise VerificationError unless ``manifest`` carries a valid signature by ``trusted``."""
    version = manifest.get("version", "?")
    sig = manifest.get("signature")
    if not isinstance(sig, dict) or "value" not in sig:
        raise VerificationError(f"bundle {version}: manifest is not signed")
    if sig.get("alg") != ALGORITHM:
        raise VerificationError(f"bundle {version}: signature algorithm {sig.get('alg')!r}, expected {ALGORITHM}")
    if sig.get("key_id") != key_id(trusted):
        raise VerificationError(
            f"bundle {version}: signed by key {sig.get('key_id')}, trusted key is {key_id(trusted)}"
        )
    try:
        trusted.verify(base64.b64decode(sig["value"], validate=True), canonical(manifest))
    except (InvalidSignature, ValueError) as e:
        raise VerificationError(f"bundle {version}: manifest signature does not match its content") from e


def sign_bundle(bundle_dir: Path, key: Ed25519PrivateKey) -> dict[str, Any]:
    """Sign ``bundle_dir/manifest.json`` in place (atomically); returns the signed manifest."""
    path = Path(bundle_dir) / MANIFEST
    manifest = json.loads(path.read_text())
    signed = sign_manifest(manifest, key)
    write_atomic(path, json.dumps(signed, indent=2, sort_keys=True).encode())
    return signed
