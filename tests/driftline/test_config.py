"""A bad configuration fails at start-up with a message that says what to fix."""

from __future__ import annotations

import pytest

from driftline.config import DriftlineSettings, KafkaSettings, MonitorSettings
from driftline.errors import ConfigError


def test_env_is_read_with_nested_names(monkeypatch) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("DRIFTLINE_MONITOR__WINDOW_SIZE", "500")
    s = DriftlineSettings.load()
    assert s.kafka is not None and s.kafka.client_config()["bootstrap.servers"] == "127.0.0.1:19092"
    assert s.monitor.window_size == 500


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: KafkaSettings(bootstrap_servers="localhost"), "kafka.bootstrap_servers"),
        (
            lambda: MonitorSettings(window_size=10),
            "monitor.window_size: Input should be greater than or equal to 50",
        ),
        (lambda: MonitorSettings(windw_size=10), r"monitor.windw_size: unknown key \(valid keys: .*window"),
    ],
)
def test_bad_values_name_the_setting(make, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_bad_env_value_fails_with_the_variable_path(monkeypatch) -> None:
    monkeypatch.setenv("DRIFTLINE_MONITOR__REFERENCE_SIZE", "lots")
    with pytest.raises(ConfigError, match="reference_size"):
        DriftlineSettings.load()


def test_secrets_are_not_printed() -> None:
    k = KafkaSettings(
        bootstrap_servers="h:1",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password="hunter2",
    )
    assert "hunter2" not in repr(k)
    assert k.client_config()["sasl.password"] == "hunter2"
    assert k.client_config()["ssl.endpoint.identification.algorithm"] == "https"
    with pytest.raises(ConfigError) as err:  # a rejected block is printed: its secrets are masked
        KafkaSettings(
            bootstrap_servers="h:1", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="hunter2"
        )
    assert "x2" not in str(err.value) and "SASL_SSL" in str(err.value)


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"security_protocol": "SASL_SSL"}, "sasl_mechanism, sasl_username and sasl_password"),
        ({"security_protocol": "SSL", "ssl_ca_location": "/nonexistent/ca.pem"}, "ssl_ca_location"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ],
)
def test_bad_transport_security_fails_naming_the_key(settings: dict, names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        KafkaSettings(bootstrap_servers="h:1", **settings)


def test_settings_round_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from driftline.config import RoutingSettings, Topics

    settings = DriftlineSettings(
        kafka=KafkaSettings(
            bootstrap_servers="h:1",
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="u",
            sasl_password="pw",
        ),
        topics=Topics(alerts="a.x"),
        monitor=MonitorSettings(window_size=500, error_detector_params={"delta": 0.001}),
        routing=RoutingSettings(cooldown_s=5, retrain_on=("performance",)),
    )
    env = settings.to_env()
    assert env["DRIFTLINE_KAFKA__SASL_PASSWORD"] == "pw"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert DriftlineSettings() == settings


def test_short_checkpoint_key_fails_naming_the_key() -> None:
    from driftline.config import StateSettings

    with pytest.raises(ConfigError, match="state.checkpoint_key: .*at least 32 characters") as err:
        StateSettings(checkpoint_key="short-secret")
    assert "short-secret" not in str(err.value)
