"""TLS and SASL for the local Kafka broker: a SASL_SSL listener's settings, and the certificates it
needs, made at test time with the ``openssl`` command (a throwaway CA, a broker certificate for
127.0.0.1 / localhost, the broker's key encrypted in a PEM keystore).

    certs = make_certificates(tmp_path / "tls")          # certs.ca, certs.keystore, certs.key_password
    broker = kafka_local.start(workdir, sasl_ssl=SaslSsl(certs.keystore, certs.key_password,
                                                          (("alice", "alice-secret"),)))
    broker.secure_bootstrap                              # "127.0.0.1:PORT", SASL_SSL
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Certificates", "SaslSsl", "make_certificates"]


@dataclass(frozen=True)
class SaslSsl:
    """A second listener, SASL_SSL, beside PLAINTEXT: TLS with a PEM keystore (encrypted private key
    followed by the certificate chain) and users for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512."""

    keystore_pem: Path
    key_password: str
    users: tuple[tuple[str, str], ...]

    def properties(self, port: int) -> dict[str, str]:
        plain_users = " ".join(f'user_{u}="{pw}"' for u, pw in self.users)
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            ),
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore_pem),
            "ssl.key.password": self.key_password,
        }

    def format_args(self) -> list[str]:
        """SCRAM credentials are written into the metadata log when the storage is formatted."""
        return [
            arg
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512")
            for user, pw in self.users
            for arg in ("--add-scram", f"{mech}=[name={user},password={pw}]")
        ]


@dataclass(frozen=True)
class Certificates:
    ca: Path  # PEM: the CA certificate clients trust
    keystore: Path  # PEM: the broker's encrypted private key, then its certificate chain
    key_password: str


def make_certificates(directory: Path, days: int = 2) -> Certificates:
    """A CA and a broker certificate (SAN 127.0.0.1 and localhost) signed by it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError(
            "the openssl command is needed to make test certificates (apt-get install openssl)"
        )
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(12)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    valid = f"-days {days}"
    steps = [
        f"req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem {valid} -subj /CN=driftline-test-ca",
        "req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj /CN=localhost",
        f"x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.pem {valid} "
        "-extfile san.ext",
        # a PKCS#12 PBE the JVM reads (Java 17 has no PBES2 key factory for PEM keystores)
        f"pkcs8 -topk8 -v1 PBE-SHA1-3DES -in broker.key -out broker.enc.key -passout pass:{password}",
    ]
    for step in steps:
        subprocess.run([openssl, *step.split()], check=True, capture_output=True, cwd=d)
    keystore = d / "broker.keystore.pem"
    keystore.write_text((d / "broker.enc.key").read_text() + (d / "broker.pem").read_text())
    return Certificates(ca=d / "ca.pem", keystore=keystore, key_password=password)
