"""Settings from environment and flags, and the CLI's help and errors."""

from __future__ import annotations

from dataclasses import fields

import pytest

from collab_server.cli import build_parser
from collab_server.settings import Settings, settings_from_env
from persistence.redaction import redact_url as redact
from tests.support.hub import collab_cli


@pytest.mark.fast
def test_environment_overrides_defaults_and_is_validated() -> None:
    settings = settings_from_env({"NOVA_PORT": "4321", "NOVA_DURABILITY": "relaxed", "NOVA_LOG_JSON": "yes"})
    assert (settings.port, settings.durability, settings.log_json) == (4321, "relaxed", True)
    with pytest.raises(ValueError, match="NOVA_PORT"):
        settings_from_env({"NOVA_PORT": "many"})
    with pytest.raises(ValueError, match="durability"):
        Settings(durability="sometimes").validate()


def test_every_setting_has_a_documented_flag() -> None:
    help_text = build_parser(Settings()).format_help()
    shown = collab_cli("serve", "--help")
    assert shown.returncode == 0, shown.stderr
    serve_help = shown.stdout
    assert "serve" in help_text
    for spec in fields(Settings):
        assert "--" + spec.name.replace("_", "-") in serve_help
        assert "NOVA_" + spec.name.upper() in serve_help


def test_bad_flag_value_exits_non_zero_with_a_message() -> None:
    result = collab_cli("serve", "--durability", "maybe")
    assert result.returncode == 2
    assert "durability" in result.stderr


@pytest.mark.fast
def test_store_passwords_are_redacted() -> None:
    assert redact("postgresql://nova:secret@db:5432/nova") == "postgresql://nova:***@db:5432/nova"
    assert "secret" not in redact("postgresql://nova:secret@db/nova")


def test_unreachable_store_at_start_fails_fast_with_a_clear_message() -> None:
    result = collab_cli("serve", "--store", "postgresql://nova:secret@127.0.0.1:1/nova")
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stderr and "not usable" in result.stderr
    assert "secret" not in result.stderr + result.stdout


def test_unknown_store_url_is_refused() -> None:
    result = collab_cli("serve", "--store", "bogus://x")
    assert result.returncode == 1
    assert "bogus" in result.stderr
