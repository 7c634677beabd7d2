"""A throwaway certificate authority made with the ``openssl`` command, one per test server."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# EC keys: generating them takes milliseconds, RSA keys take far longer.
_NEW_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:127.0.0.2, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class TlsFiles:
    """Paths of a CA certificate, a server certificate and key it signed, and a CA that signed nothing."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    untrusted_ca_file: Path


def make_pki(directory: Path) -> TlsFiles:
    """Return a fresh CA and a server certificate for localhost, 127.0.0.1, 127.0.0.2 and ::1 in ``directory``.

    Raises subprocess.CalledProcessError when openssl fails.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _self_signed_ca(directory, "ca", "migrator test CA")
    server_cert, server_key = _server_certificate(directory, ca_cert, ca_key)
    untrusted, _ = _self_signed_ca(directory, "untrusted-ca", "migrator untrusted CA")
    return TlsFiles(ca_cert, server_cert, server_key, untrusted)


def _self_signed_ca(directory: Path, stem: str, common_name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    _openssl("req", "-x509", *_NEW_EC_KEY, "-keyout", key, "-out", cert, "-days", "7",
             "-subj", f"/CN={common_name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def _server_certificate(directory: Path, ca_cert: Path, ca_key: Path) -> tuple[Path, Path]:
    cert, key, csr = directory / "server.crt", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(_SERVER_EXTENSIONS)
    _openssl("req", "-new", *_NEW_EC_KEY, "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", "7", "-extfile", ext)
    return cert, key


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
