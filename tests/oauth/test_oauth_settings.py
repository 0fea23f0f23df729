"""The ``smtp.auth`` choice and the ``[oauth]`` section: rules, field names, round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from transports.settings import AuthMethod, OAuthProvider, Settings, field_errors
from tui.store import SettingsStore

CLIENT_ID = "11111111-2222-3333-4444-555555555555"


def oauth_data(**oauth: Any) -> dict[str, Any]:
    return {
        "preset": "office365",
        "smtp": {
            "host": "smtp.office365.com",
            "username": "me@contoso.example",
            "auth": "oauth2",
        },
        "oauth": {"client_id": CLIENT_ID, **oauth},
    }


def errors_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        Settings.model_validate(data)
    return field_errors(info.value)


def test_password_is_the_default_and_oauth_is_not_required() -> None:
    """Existing settings files need no [oauth] section and keep password AUTH."""
    settings = Settings.model_validate(
        {"smtp": {"host": "mail.example.com", "username": "me@example.com"}}
    )
    assert settings.smtp.auth is AuthMethod.PASSWORD
    assert settings.oauth.provider is OAuthProvider.MICROSOFT
    assert settings.oauth.tenant == "organizations"
    assert settings.oauth.client_id == ""


def test_microsoft_oauth_settings_are_valid() -> None:
    settings = Settings.model_validate(oauth_data(tenant="contoso.onmicrosoft.com"))
    assert settings.smtp.auth is AuthMethod.OAUTH2
    assert settings.oauth.client_id == CLIENT_ID


def test_client_id_is_required_for_oauth2() -> None:
    data = oauth_data()
    data["oauth"] = {}
    pairs = dict(errors_of(data))
    assert pairs["oauth.client_id"].startswith("is required for OAuth2")


def test_microsoft_client_id_must_be_a_guid() -> None:
    pairs = errors_of(oauth_data(client_id="my-app"))
    assert dict(pairs)["oauth.client_id"].startswith("must be the Application (client) ID")


def test_username_is_required_for_oauth2() -> None:
    data = oauth_data()
    data["smtp"]["username"] = ""
    data["smtp"]["from_address"] = "me@contoso.example"
    pairs = dict(errors_of(data))
    assert "mailbox that signs in" in pairs["smtp.username"]


@pytest.mark.parametrize(
    "tenant",
    ["organizations", "common", "contoso.onmicrosoft.com", "0b1c2d3e-aaaa-bbbb-cccc-123456789abc"],
)
def test_good_tenants(tenant: str) -> None:
    assert Settings.model_validate(oauth_data(tenant=tenant)).oauth.tenant == tenant


@pytest.mark.parametrize("tenant", ["../evil", "a/b", "x y", "contoso..com", "-x", "t?x=1"])
def test_bad_tenants_are_named(tenant: str) -> None:
    pairs = dict(errors_of(oauth_data(tenant=tenant)))
    assert "oauth.tenant" in pairs


def test_generic_provider_needs_urls_and_scope() -> None:
    pairs = errors_of(oauth_data(provider="generic", client_id="smtpdesk-cli"))
    fields = {field for field, _ in pairs}
    assert fields == {"oauth.device_authorization_url", "oauth.token_url", "oauth.scope"}
    assert all(message == "is required for the generic provider" for _, message in pairs)


def test_generic_provider_accepts_any_client_id_and_loopback_http() -> None:
    settings = Settings.model_validate(
        oauth_data(
            provider="generic",
            client_id="smtpdesk-cli",
            device_authorization_url="http://127.0.0.1:8080/device",
            token_url="https://auth.example.com/token",
            scope="smtp offline_access",
        )
    )
    assert settings.oauth.provider is OAuthProvider.GENERIC


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://auth.example.com/token", "only allowed to a loopback address"),
        ("ftp://auth.example.com/token", "must start with https://"),
        ("https://user:pw@auth.example.com/token", "must not contain a user"),
        ("https:///token", "has no host name"),
        ("https://auth.example.com/to ken", "must not contain spaces"),
        ("https://auth.example.com:99999/token", "is not a valid URL"),
    ],
)
def test_bad_endpoint_urls_are_named(url: str, words: str) -> None:
    pairs = dict(errors_of(oauth_data(provider="generic", token_url=url)))
    assert words in pairs["oauth.token_url"]


@pytest.mark.parametrize("field", ["client_id", "tenant", "token_url", "scope"])
def test_line_breaks_are_rejected_and_named(field: str) -> None:
    pairs = errors_of(oauth_data(**{field: "abc\r\nBCC: x@example.com"}))
    assert any(name == f"oauth.{field}" and "line break" in msg for name, msg in pairs)


def test_bad_scope_is_named() -> None:
    pairs = dict(errors_of(oauth_data(scope='smtp "quoted"')))
    assert "oauth.scope" in pairs


def test_unknown_oauth_key_suggests_the_nearest() -> None:
    pairs = dict(errors_of(oauth_data(clientid=CLIENT_ID)))
    assert "did you mean 'client_id'" in pairs["oauth"]


def test_labels_name_the_new_fields() -> None:
    assert Settings.FIELD_LABELS["smtp.auth"] == "Authentication"
    assert Settings.FIELD_LABELS["oauth.client_id"] == "Application (client) ID"


def test_oauth_settings_round_trip_through_the_file(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    settings = Settings.model_validate(
        oauth_data(
            provider="generic",
            client_id="cli",
            device_authorization_url=("https://auth.example.com/device"),
            token_url="https://auth.example.com/token",
            scope="smtp offline_access",
        )
    )
    store.save(settings)
    text = store.path.read_text()
    assert 'auth = "oauth2"' in text
    assert "[oauth]" in text
    assert store.load() == settings
    first = store.path.read_bytes()
    store.save(store.load())
    assert store.path.read_bytes() == first


def test_password_settings_round_trip_with_the_new_defaults(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    settings = Settings.model_validate(
        {"smtp": {"host": "mail.example.com", "username": "me@example.com"}}
    )
    store.save(settings)
    assert store.load() == settings
