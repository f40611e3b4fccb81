"""How every component reaches Kafka (``DRIFTLINE_KAFKA__*``; re-exported by :mod:`driftline.config`).

>>> KafkaSettings(bootstrap_servers="127.0.0.1:9092").client_config()["bootstrap.servers"]
'127.0.0.1:9092'
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from driftline.settings_base import Section

__all__ = ["KafkaSettings", "SaslMechanism", "SecurityProtocol"]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(Section, section="kafka"):
    """How every component reaches Kafka: one block for the SDK, the processor, the worker and the
    faust control plane. Names follow librdkafka's (``ssl_ca_location`` -> ``ssl.ca.location``)."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = Field(default=None, description="PEM file of the CA that signed the broker")
    ssl_certificate_location: str | None = Field(default=None, description="client certificate (mutual TLS)")
    ssl_key_location: str | None = Field(default=None, description="client private key (mutual TLS)")
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = Field(default=True, description="verify the broker's name against its cert")
    partitions: int = Field(default=3, ge=1, description="partitions for topics Driftline creates")
    replication_factor: int = Field(
        default=1, ge=1, description="for topics Driftline creates (3 in production)"
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _hosts(cls, v: str) -> str:
        for host in v.split(","):
            if ":" not in host.strip():
                raise ValueError(f"{host!r} is not HOST:PORT (e.g. 127.0.0.1:9092)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol={self.security_protocol} needs sasl_mechanism, sasl_username and "
                "sasl_password (DRIFTLINE_KAFKA__SASL_MECHANISM, __SASL_USERNAME, __SASL_PASSWORD)"
            )
        if not sasl and self.sasl_mechanism:
            raise ValueError(
                f"sasl_mechanism is set but security_protocol={self.security_protocol}: "
                "use SASL_SSL (or SASL_PLAINTEXT on a trusted network)"
            )
        for key in ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{key}: {path!r} is not a readable file")
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            raise ValueError("mutual TLS needs both ssl_certificate_location and ssl_key_location")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def client_config(self) -> dict[str, Any]:
        """The librdkafka configuration these settings map to."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = self.sasl_password.get_secret_value() if self.sasl_password else ""
        if self.uses_tls:
            conf["ssl.endpoint.identification.algorithm"] = "https" if self.ssl_check_hostname else "none"
            for key in ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location"):
                if getattr(self, key):
                    conf[key.replace("_", ".")] = getattr(self, key)
            if self.ssl_key_password:
                conf["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return conf

    def ssl_context(self) -> ssl.SSLContext | None:
        """The same TLS settings as a Python SSL context (for the faust / aiokafka control plane)."""
        if not self.uses_tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_ca_location)
        ctx.check_hostname = self.ssl_check_hostname
        if self.ssl_certificate_location and self.ssl_key_location:
            password = self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            ctx.load_cert_chain(self.ssl_certificate_location, self.ssl_key_location, password)
        return ctx
