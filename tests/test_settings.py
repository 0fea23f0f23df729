"""Settings models: every validator, a failing and a passing case; each error names its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from transports.settings import (
    STRICT_TLS_PRESETS,
    Protocol,
    Security,
    Settings,
    check_host,
    describe_errors,
    field_errors,
    is_loopback_host,
    security_for_port,
)

SMTP_OK: dict[str, Any] = {"host": "smtp.example.com", "username": "me@example.com"}


def smtp(**changes: Any) -> dict[str, Any]:
    """A valid SMTP settings document with ``smtp`` section changes."""
    return {"smtp": {**SMTP_OK, **changes}}


def http(url: str = "https://relay.example/send", **top: Any) -> dict[str, Any]:
    """A valid HTTP settings document."""
    return {"protocol": "http", "reply_to": "billing@example.test", "http": {"url": url}, **top}


def errors_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field, message) pairs of an invalid document."""
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate(data)
    return field_errors(caught.value)


def only_error(data: dict[str, Any]) -> tuple[str, str]:
    [error] = errors_of(data)
    return error


# -- CR/LF anywhere -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**smtp(), "from_name": "ACME\r\nBcc: x@evil.test"}, "from_name"),
        ({**smtp(), "copy_to": "a@b.test\nx"}, "copy_to"),
        ({**smtp(), "reply_to": "a@b.test\r"}, "reply_to"),
        (smtp(host="smtp.example.com\n"), "smtp.host"),
        (smtp(username="me@example.com\r\nRCPT TO:<x@y.z>"), "smtp.username"),
        (smtp(from_address="me@example.com\n"), "smtp.from_address"),
        (smtp(ca_file="/etc/ssl/x.pem\n"), "smtp.ca_file"),
        (smtp(password_command=["pass", "show\nmail"]), "smtp.password_command.1"),
        (http("https://relay.example/send\r\n"), "http.url"),
        ({**smtp(), "documents": {"folder": "/srv/docs\n"}}, "documents.folder"),
        ({**smtp(), "documents": {"fallback_font": "\r/x.ttf"}}, "documents.fallback_font"),
        ({**smtp(), "preset": "gmail\n"}, "preset"),
    ],
)
def test_line_breaks_are_rejected_anywhere_naming_the_field(
    data: dict[str, Any], field: str
) -> None:
    assert only_error(data) == (field, "must not contain a line break (CR or LF)")


def test_line_break_message_names_the_field_in_describe_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate(smtp(password_command=["pass", "a\nb"]))
    assert describe_errors(caught.value) == (
        "smtp.password_command.1: must not contain a line break (CR or LF)"
    )


def test_text_without_line_breaks_passes() -> None:
    settings = Settings.model_validate(
        {**smtp(password_command=["pass", "show", "mail/smtp"]), "from_name": "ACME Ltd"}
    )
    assert settings.smtp.password_command == ["pass", "show", "mail/smtp"]
    assert settings.from_name == "ACME Ltd"


def test_control_characters_in_the_sender_name_are_rejected() -> None:
    assert only_error({**smtp(), "from_name": "ACME\x07"}) == (
        "from_name",
        "must not contain control characters (U+0007)",
    )


def test_sender_name_length_is_bounded() -> None:
    field, message = only_error({**smtp(), "from_name": "x" * 201})
    assert (field, message) == ("from_name", "is longer than 200 characters")
    assert Settings.model_validate({**smtp(), "from_name": "x" * 200}).from_name == "x" * 200


# -- host syntax --------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("https://smtp.example.com", "leave out the scheme"),
        ("smtp.example.com:587", "must not include a port"),
        ("smtp.example.com/submit", "no path"),
        ("me@smtp.example.com", "no user"),
        ("smtp example.com", "must not contain spaces"),
        (" smtp.example.com", "must not contain spaces"),
        ("smtp.example.com ", "must not contain spaces"),
        ("-smtp.example.com", "is not a valid host name"),
        ("smtp..example.com", "is not a valid host name"),
        ("smtp_relay.example.com", "is not a valid host name"),
        ("1.2.3.256", "neither a valid IP address nor a host name"),
        ("12345", "neither a valid IP address nor a host name"),
        ("a" * 64 + ".example.com", "is not a valid host name"),
    ],
)
def test_bad_host_names_are_rejected(host: str, message: str) -> None:
    field, text = only_error(smtp(host=host))
    assert field == "smtp.host"
    assert message in text


@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("smtp.gmail.com", "smtp.gmail.com"),
        ("smtp.gmail.com.", "smtp.gmail.com."),
        ("localhost", "localhost"),
        ("mail", "mail"),
        ("mail.bücher.example", "mail.bücher.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("192.0.2.10", "192.0.2.10"),
        ("[192.0.2.10]", "192.0.2.10"),
        ("2001:db8::25", "2001:db8::25"),
        ("[2001:db8::25]", "2001:db8::25"),
        ("::1", "::1"),
    ],
)
def test_good_host_names_idn_and_ip_literals_pass(host: str, stored: str) -> None:
    assert Settings.model_validate(smtp(host=host)).smtp.host == stored


def test_host_is_required_for_smtp_only() -> None:
    assert only_error(smtp(host="")) == ("smtp.host", "is required for SMTP")
    assert Settings.model_validate(http()).smtp.host == ""


def test_check_host_allows_empty_for_the_form() -> None:
    assert check_host("") == ""


# -- port and security --------------------------------------------------------


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_ports_out_of_range_are_rejected(port: int) -> None:
    assert only_error(smtp(port=port)) == ("smtp.port", "must be between 1 and 65535")


@pytest.mark.parametrize("port", [1, 25, 465, 587, 65535])
def test_ports_in_range_pass(port: int) -> None:
    assert Settings.model_validate(smtp(port=port)).smtp.port == port


def test_port_must_be_a_whole_number() -> None:
    field, message = only_error(smtp(port=25.5))
    assert field == "smtp.port"
    assert "integer" in message


def test_security_is_one_of_three_explicit_modes() -> None:
    field, message = only_error(smtp(security="ssl"))
    assert field == "smtp.security"
    assert "'tls', 'starttls' or 'none'" in message
    for mode in ("tls", "starttls", "none"):
        assert Settings.model_validate(smtp(security=mode)).smtp.security is Security(mode)


def test_security_follows_the_port() -> None:
    assert security_for_port(465) is Security.TLS
    assert security_for_port(587) is Security.STARTTLS
    assert security_for_port(25) is Security.STARTTLS


# -- sender -------------------------------------------------------------------


def test_from_address_required_when_username_is_not_an_address() -> None:
    assert only_error(smtp(username="jsmith")) == (
        "smtp.from_address",
        "is required because the username is not an email address",
    )
    settings = Settings.model_validate(smtp(username="jsmith", from_address="js@example.com"))
    assert settings.sender == "js@example.com"


def test_from_address_required_without_username() -> None:
    assert only_error(smtp(username="")) == (
        "smtp.from_address",
        "is required when there is no username",
    )
    settings = Settings.model_validate(smtp(username="", from_address="relay@server.local"))
    assert settings.sender == "relay@server.local"


def test_username_address_is_the_sender() -> None:
    assert Settings.model_validate(smtp()).sender == "me@example.com"


def test_username_must_not_have_surrounding_spaces() -> None:
    assert only_error(smtp(username=" me@example.com")) == (
        "smtp.username",
        "must not start or end with spaces",
    )


def test_invalid_from_address_names_the_field() -> None:
    field, message = only_error(smtp(username="jsmith", from_address="js at example.com"))
    assert field == "smtp.from_address"
    assert "is not a valid email address" in message


# -- addresses: syntax only, private domains accepted ---------------------------


@pytest.mark.parametrize(
    "address",
    [
        "ops@server.local",
        "root@localhost",
        "billing@example.test",
        "müller@bücher.example",
        "archive@acme.example",
    ],
)
def test_private_and_international_addresses_pass(address: str) -> None:
    settings = Settings.model_validate({**smtp(), "copy_to": address, "reply_to": address})
    assert settings.copy_to == settings.reply_to == address


@pytest.mark.parametrize(
    "address", ["archive", "archive@", "@example.com", "a b@example.com", "x@host.invalid"]
)
@pytest.mark.parametrize("field", ["copy_to", "reply_to"])
def test_bad_addresses_are_rejected_naming_the_field(address: str, field: str) -> None:
    name, message = only_error({**smtp(), field: address})
    assert name == field
    assert "is not a valid email address" in message


# -- HTTP mode -----------------------------------------------------------------


def test_reply_to_is_required_in_http_mode() -> None:
    data = http()
    del data["reply_to"]
    assert only_error(data) == ("reply_to", "is required for HTTP: replies go to this address")
    assert Settings.model_validate(http()).sender == "billing@example.test"


def test_url_is_required_in_http_mode() -> None:
    assert only_error(http("")) == ("http.url", "is required for HTTP")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8025/send",
        "http://127.0.0.2/send",
        "http://[::1]:8025/send",
        "http://localhost/send",
        "http://relay.localhost/send",
    ],
)
def test_plain_http_only_to_loopback(url: str) -> None:
    settings = Settings.model_validate(http(url))
    assert settings.http.is_plain_http


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://relay.example/send", "plain http:// is only allowed to a loopback address"),
        ("http://localhost.evil.example/send", "plain http:// is only allowed to a loopback"),
        ("http://192.0.2.1/send", "plain http:// is only allowed to a loopback address"),
        ("ftp://relay.example/send", "must start with https://"),
        ("relay.example/send", "must start with https://"),
        ("https://", "has no host name"),
        ("https://user:pw@relay.example/send", "must not contain a user or password"),
        ("https://relay.example:99999/send", "is not a valid URL"),
        ("https://relay.example/se nd", "must not contain spaces"),
    ],
)
def test_bad_urls_are_rejected(url: str, message: str) -> None:
    field, text = only_error(http(url))
    assert field == "http.url"
    assert message in text


def test_https_url_passes() -> None:
    settings = Settings.model_validate(http("https://relay.example:8443/v1/send?x=1"))
    assert settings.protocol is Protocol.HTTP
    assert not settings.http.is_plain_http


def test_loopback_detection() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1")
    assert is_loopback_host("LOCALHOST") and is_loopback_host("[::1]")
    assert not is_loopback_host("localhost.example.com")
    assert not is_loopback_host("10.0.0.1")


# -- unknown keys with a suggestion ---------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "key", "suggestion"),
    [
        ({**smtp(), "tiemout": 5}, "", "tiemout", "timeout"),
        ({**smtp(), "replyto": "a@b.test"}, "", "replyto", "reply_to"),
        (
            {"smtp": {**SMTP_OK, "pasword_command": []}},
            "smtp",
            "pasword_command",
            "password_command",
        ),
        ({"smtp": {**SMTP_OK, "hots": "x"}}, "smtp", "hots", "host"),
        ({**http(), "http": {"uri": "https://x.example/"}}, "http", "uri", "url"),
        ({**smtp(), "documents": {"fodler": "/x"}}, "documents", "fodler", "folder"),
    ],
)
def test_unknown_keys_are_rejected_with_the_nearest_name(
    data: dict[str, Any], field: str, key: str, suggestion: str
) -> None:
    name, message = only_error(data)
    assert name == field
    assert message.startswith(f"unknown key {key!r} (did you mean {suggestion!r}?)")


def test_unknown_key_without_a_close_name_lists_the_valid_keys() -> None:
    name, message = only_error({**smtp(), "zzz": 1})
    assert message.startswith("unknown key 'zzz'; valid keys here: copy_to, documents")


def test_unknown_key_is_named_by_describe_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({**smtp(), "tiemout": 5})
    assert describe_errors(caught.value).startswith(
        "settings: unknown key 'tiemout' (did you mean 'timeout'?)"
    )


# -- preset, timeout, protocol ----------------------------------------------------


def test_unknown_preset_is_rejected_with_a_suggestion() -> None:
    field, message = only_error({**smtp(), "preset": "gmial"})
    assert field == "preset"
    assert message.startswith("unknown preset 'gmial' (did you mean 'gmail'?)")


@pytest.mark.parametrize("preset", ["gmail", "office365", "sandbox", "custom"])
def test_known_presets_pass(preset: str) -> None:
    assert Settings.model_validate({**smtp(), "preset": preset}).preset == preset


@pytest.mark.parametrize("timeout", [0, 0.5, 601, -5])
def test_timeout_out_of_bounds(timeout: float) -> None:
    assert only_error({**smtp(), "timeout": timeout}) == (
        "timeout",
        "must be between 1 and 600 seconds",
    )


@pytest.mark.parametrize("timeout", [1, 2.5, 20, 600])
def test_timeout_in_bounds(timeout: float) -> None:
    assert Settings.model_validate({**smtp(), "timeout": timeout}).timeout == timeout


def test_default_timeout_is_20_seconds() -> None:
    assert Settings.model_validate(smtp()).timeout == 20


def test_unknown_protocol_is_rejected() -> None:
    field, message = only_error({**smtp(), "protocol": "smtps"})
    assert field == "protocol"
    assert "'smtp' or 'http'" in message


# -- verify_tls --------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["gmail", "yahoo", "office365"])
def test_verify_off_is_refused_for_big_providers(preset: str) -> None:
    field, message = only_error({**smtp(verify_tls=False), "preset": preset})
    assert field == "smtp.verify_tls"
    assert message.startswith("cannot be turned off for this provider")


@pytest.mark.parametrize("preset", ["custom", "sandbox", "zoho"])
def test_verify_off_is_allowed_for_own_servers(preset: str) -> None:
    assert preset not in STRICT_TLS_PRESETS
    settings = Settings.model_validate({**smtp(verify_tls=False), "preset": preset})
    assert settings.smtp.verify_tls is False


# -- error reporting -------------------------------------------------------------


def test_field_errors_and_describe_errors_name_each_field() -> None:
    """Several problems at once: one line each, each naming its field."""
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate(
            {"smtp": {"host": "http://x", "port": 0, "username": "me@example.com"}, "timeout": 0}
        )
    pairs = field_errors(caught.value)
    assert {field for field, _ in pairs} == {"smtp.host", "smtp.port", "timeout"}
    lines = describe_errors(caught.value).splitlines()
    assert len(lines) == 3
    assert "smtp.port: must be between 1 and 65535" in lines
    assert "timeout: must be between 1 and 600 seconds" in lines


def test_cross_field_errors_are_split_per_field() -> None:
    """The completeness check reports several fields in one error: each gets its own pair."""
    pairs = errors_of({"smtp": {"host": "", "username": "jsmith"}})
    assert pairs == [
        ("smtp.host", "is required for SMTP"),
        ("smtp.from_address", "is required because the username is not an email address"),
    ]


def test_field_labels_cover_every_field() -> None:
    leaves = {
        f"{section}.{name}"
        for section in ("smtp", "http", "documents", "oauth")
        for name in type(getattr(Settings.unconfigured(), section)).model_fields
    }
    sections = {"smtp", "http", "documents", "oauth"}
    top = {name for name in Settings.model_fields if name not in sections}
    assert set(Settings.FIELD_LABELS) == leaves | top


def test_settings_are_frozen() -> None:
    settings = Settings.model_validate(smtp())
    with pytest.raises(ValidationError):
        settings.timeout = 5
