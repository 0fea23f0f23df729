"""Bad input in every settings field: the models and the store.

Each value must be refused with one message that names the field, and the
store must leave the file as it was. Valid oddities (IDN hosts, IP literals,
private domains) must be accepted.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from transports.settings import Settings, describe_errors
from tui.store import SettingsStore, StoreError, dump_settings

BASE: dict[str, Any] = {
    "from_name": "ACME Ltd",
    "smtp": {"host": "smtp.example.com", "port": 587, "username": "me@example.com"},
}

LONG = "a" * 10_000
BAD_TEXT = {
    "nul": "a\x00b",
    "crlf": "a\r\nb",
    "lf": "a\nb",
    "escape": "a\x1b[31mb",
    "bell": "a\x07b",
    "c1-csi": "a\x9b31mb",
    "nel": "a\x85b",
    "line-separator": "a\u2028b",
}
RTL = "Bank\u202eKCA"  # shows as "BankACK": a spoofed sender name


def short_id(value: object) -> str | None:
    """Test ids that stay readable for 10,000-character values."""
    if isinstance(value, str) and len(value) > 40:
        return f"{value[:10]!r}+{len(value)}chars"
    return None


def with_value(field: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    section, _, name = field.rpartition(".")
    (data.setdefault(section, {}) if section else data)[name] = value
    return data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate(data)
    return describe_errors(caught.value)


TEXT_FIELDS = [
    "from_name",
    "copy_to",
    "reply_to",
    "preset",
    "smtp.host",
    "smtp.username",
    "smtp.from_address",
    "smtp.ca_file",
    "http.url",
    "documents.folder",
    "documents.fallback_font",
    "oauth.tenant",
    "oauth.client_id",
    "oauth.scope",
]


@pytest.mark.parametrize("kind", sorted(BAD_TEXT))
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_control_characters_are_refused_naming_the_field(field: str, kind: str) -> None:
    message = refusal(with_value(field, BAD_TEXT[kind]))
    assert message.startswith(f"{field}: "), message
    assert "\n" not in message and len(message) < 300


@pytest.mark.parametrize(
    "field",
    ["from_name", "copy_to", "reply_to", "preset", "smtp.host", "smtp.from_address"],
)
def test_10000_characters_give_one_short_line(field: str) -> None:
    message = refusal(with_value(field, LONG))
    assert message.startswith(f"{field}: "), message
    assert "\n" not in message and len(message) < 300, len(message)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("smtp.username", LONG),
        ("smtp.ca_file", LONG),
        ("documents.folder", LONG),
        ("smtp.ca_file", "   "),
        ("documents.folder", " /srv/documents"),
        ("documents.fallback_font", "/usr/share/fonts/x.ttf "),
        ("smtp.host", "   "),
        ("smtp.host", "smtp.gmail.com\u200b"),  # zero-width space: IDNA would drop it
        ("smtp.host", "smtp.\u202egmail.com"),
        ("copy_to", " "),
        ("reply_to", "x@\u202eexample.com"),
    ],
    ids=short_id,
)
def test_whitespace_long_and_invisible_values_are_refused(field: str, value: str) -> None:
    message = refusal(with_value(field, value))
    assert message.startswith(f"{field}: "), message
    assert "\n" not in message and len(message) < 300


@pytest.mark.parametrize("field", ["from_name", "smtp.username"])
@pytest.mark.parametrize(
    "char", ["\u202e", "\u202d", "\u202a", "\u202b", "\u202c", "\u2066", "\u2067", "\u2068"]
)
def test_bidi_controls_in_names_are_refused(field: str, char: str) -> None:
    value = f"Bank{char}KCA" if field == "from_name" else f"me{char}@example.com"
    message = refusal(with_value(field, value))
    assert message.startswith(f"{field}: ")
    assert f"U+{ord(char):04X}" in message and "bidirectional" in message


def test_right_to_left_names_without_overrides_are_fine() -> None:
    settings = Settings.model_validate(with_value("from_name", "שלום בע״מ / شركة"))
    assert settings.from_name == "שלום בע״מ / شركة"


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        (0, "smtp.port: must be between 1 and 65535"),
        (65536, "smtp.port: must be between 1 and 65535"),
        (-1, "smtp.port: must be between 1 and 65535"),
        (10**30, "smtp.port: must be between 1 and 65535"),
        ("abc", "smtp.port: Input should be a valid integer"),
        (1.5, "smtp.port: Input should be a valid integer"),
        (True, "smtp.port: must be a number between 1 and 65535, not true/false"),
        (None, "smtp.port: Input should be a valid integer"),
    ],
)
def test_bad_ports(port: Any, expected: str) -> None:
    assert refusal(with_value("smtp.port", port)).startswith(expected)


@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("bücher.example", "bücher.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("straße.example", "straße.example"),
        ("192.0.2.1", "192.0.2.1"),
        ("[192.0.2.1]", "192.0.2.1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::1", "::1"),
        ("localhost", "localhost"),
    ],
)
def test_idn_hosts_and_ip_literals_are_accepted(host: str, stored: str) -> None:
    assert Settings.model_validate(with_value("smtp.host", host)).smtp.host == stored


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("[2001:db8::1]:587", "must not include a port"),
        ("1.2.3.256", "neither a valid IP address nor a host name"),
        ("smtp.example.com:587", "must not include a port"),
        ("smtps://smtp.example.com", "leave out the scheme"),
        ("-smtp.example.com", "not a valid host name"),
        ("a" * 64 + ".example", "not a valid host name"),
    ],
)
def test_bad_hosts(host: str, expected: str) -> None:
    message = refusal(with_value("smtp.host", host))
    assert message.startswith("smtp.host: ") and expected in message


# -- the store ------------------------------------------------------------------------


def unchecked(data: dict[str, Any]) -> Settings:
    """Settings built without validation, as a form or a script with a bug might."""
    base = Settings.model_validate(BASE)
    fields: dict[str, Any] = {}
    for name in Settings.model_fields:
        current = getattr(base, name)
        value = data.get(name, current)
        if isinstance(current, BaseModel) and isinstance(value, dict):
            value = current.model_copy(update=value)
        fields[name] = value
    return Settings.model_construct(**fields)


def saved(tmp_path: Path) -> SettingsStore:
    store = SettingsStore(tmp_path / "settings.toml")
    store.save(Settings.model_validate(BASE))
    return store


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from_name", RTL),
        ("from_name", "a\x1bb"),
        ("smtp.host", "smtp.example.com\u200b"),
        ("smtp.port", 0),
        ("smtp.port", 65536),
        ("smtp.port", -1),
        ("reply_to", LONG),
        ("documents.folder", "   "),
    ],
    ids=short_id,
)
def test_a_bad_value_is_never_saved(tmp_path: Path, field: str, value: Any) -> None:
    store = saved(tmp_path)
    before = store.path.read_bytes()
    bad = unchecked(with_value(field, value))
    with pytest.raises(StoreError) as caught:
        store.save(bad)
    assert field in str(caught.value)
    assert store.path.read_bytes() == before
    assert not store.backup_path.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = " + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("x = " + "{a=" * 5_000 + "1" + "}" * 5_000, "nested too deeply"),
        ('from_name = "Bank\\u202eKCA"\n', "from_name: must not contain bidirectional"),
        ("timeout = nan\n", "timeout: must be between 1 and 600"),
        ("timeout = inf\n", "timeout: must be between 1 and 600"),
        ('[smtp]\nport = "587"\n', "smtp.port: Input should be a valid integer"),
        ("[smtp]\nport = 99999999999999999999999\n", "smtp.port"),
        ("[smtp]\nport = true\n", "smtp.port"),
        ('[smtp]\nhost = "' + "h" * 10_000 + '"\n', "smtp.host"),
        ("\x00", "not a valid TOML file"),
    ],
    ids=short_id,
)
def test_hostile_files_are_a_store_error_and_left_alone(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    with pytest.raises(StoreError) as caught:
        SettingsStore(path).load()
    message = str(caught.value)
    assert expected in message, message[:300]
    assert message.startswith(f"{path}: ")
    assert len(message) < 2_000, len(message)
    assert path.read_text() == text


def test_dump_of_odd_but_valid_values_round_trips(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "from_name": 'Zoë "Quotes" [bold] 株式会社 \t ok',
            "smtp": {"host": "[2001:db8::1]", "port": 65535, "username": "ops"},
        }
        | {"smtp": {"host": "bücher.example", "username": "me@bücher.example", "port": 1}}
    )
    store = SettingsStore(tmp_path / "settings.toml")
    store.save(settings)
    assert store.load() == settings
    assert dump_settings(settings) == store.path.read_text()
