"""Throwaway TLS certificates for tests, made with the `openssl` command: a private CA and a
server certificate it signed for 127.0.0.1 / localhost. Trust the CA in the code under test
with SSL_CERT_FILE=<ca_file>; another CA (`stranger`) stands for "a certificate you do not
trust"."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_EXTENSIONS = """\
subjectAltName = IP:127.0.0.1, DNS:localhost
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
"""


@dataclass(frozen=True)
class Certificates:
    ca_file: Path  # the private CA: what SSL_CERT_FILE points at to trust the server
    cert_file: Path
    key_file: Path
    stranger_ca_file: Path  # a CA that did not sign the server's certificate

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=30
    )


def _make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN=pinbot test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return key, cert


def make_certificates(folder: Path) -> Certificates:
    if shutil.which("openssl") is None:
        pytest.fail("the `openssl` command is needed to make the tests' TLS certificates")
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca(folder, "ca")
    _, stranger = _make_ca(folder, "stranger")
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    (folder / "server.ext").write_text(SERVER_EXTENSIONS)
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=localhost",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", folder / "server.ext",
        cwd=folder,
    )  # fmt: skip
    return Certificates(ca_cert, cert, key, stranger)


@pytest.fixture(name="certificates", scope="session")
def certificates_fixture(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))
