"""manifest.yml is a valid Slack app manifest that declares exactly what pinbot uses."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.support.fake_slack import REFERENCE_DIR
from tests.support.paths import REPO_ROOT

MANIFEST = REPO_ROOT / "manifest.yml"
SCHEMA_DIR = REFERENCE_DIR / "manifest-schema"
EVENTS_URL = "https://pinbot.example.org/slack/events"
COMMANDS = {"/family", "/pin", "/pinbot"}
BOT_SCOPES = {
    "commands",
    "chat:write",
    "files:write",
    "users:read",
    "usergroups:read",
}
# Each Web API method pinbot calls, with the bot scope it needs (None: no scope).
METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_update": "chat:write",
    "chat_getPermalink": None,
    "files_getUploadURLExternal": "files:write",
    "files_completeUploadExternal": "files:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files_delete": "files:write",
    "users_info": "users:read",
    "usergroups_users_list": "usergroups:read",
    "views_open": None,
    "views_publish": None,
    "auth_test": None,
    # Called with the app-level token (connections:write, not a bot scope) by pinbot check.
    "apps_connections_open": None,
}
_WEB_API_CALL = re.compile(
    r"\.((?:chat|files|users|usergroups|views|auth|conversations|team|reactions|pins|bookmarks"
    r"|reminders|dnd|emoji|search|stars|apps|admin)_\w+)\("
    r"|\"((?:files|chat|conversations)\.\w+)\""
)


def load_manifest() -> dict[str, Any]:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(manifest, dict)
    return manifest


def manifest_commands() -> set[str]:
    return {entry["command"] for entry in load_manifest()["features"]["slash_commands"]}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    """Slack's root schema, its versioned schemas served from the local copy (no network)."""
    if not (SCHEMA_DIR / "manifest.schema.json").is_file():
        pytest.skip(f"Slack's manifest schema not found at {SCHEMA_DIR} (CI has it there)")
    root = json.loads((SCHEMA_DIR / "manifest.schema.json").read_text())
    registry: Registry = Registry()
    for uri in sorted({ref for ref in _refs(root) if ref.startswith("http")}):
        local = SCHEMA_DIR / Path(uri).name
        assert local.is_file(), f"{uri} has no local copy in {SCHEMA_DIR}"
        resource = Resource.from_contents(
            json.loads(local.read_text()), default_specification=DRAFT7
        )
        registry = registry.with_resource(uri, resource)
    return Draft7Validator(root, registry=registry)


def test_manifest_is_valid(validator: Draft7Validator) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(load_manifest())
    ]
    assert errors == []


def test_the_schema_check_catches_a_broken_manifest(validator: Draft7Validator) -> None:
    broken = copy.deepcopy(load_manifest())
    broken["features"]["slash_commands"][0]["command"] = "family"  # no leading slash
    broken["settings"]["interactivity"]["surprise"] = True
    assert not validator.is_valid(broken)


def test_commands_are_exactly_pinbots() -> None:
    assert manifest_commands() == COMMANDS
    for entry in load_manifest()["features"]["slash_commands"]:
        assert entry["url"] == EVENTS_URL and entry["description"] and entry["usage_hint"]
    hints = {e["command"]: e["usage_hint"] for e in load_manifest()["features"]["slash_commands"]}
    assert hints == {
        "/family": "smith | smith, ava | 555-010-1234 | 03/14/2019",
        "/pin": "child name or chart id",
        "/pinbot": "help | today | pending",
    }


def test_interactivity_and_socket_mode_are_on() -> None:
    manifest = load_manifest()
    settings = manifest["settings"]
    assert settings["interactivity"] == {"is_enabled": True, "request_url": EVENTS_URL}
    assert settings["socket_mode_enabled"] is True
    assert settings["token_rotation_enabled"] is False
    # One event: the Home tab (SPEC §10), counts only; no messages tab.
    assert settings["event_subscriptions"] == {
        "request_url": EVENTS_URL,
        "bot_events": ["app_home_opened"],
    }
    assert manifest["features"]["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": False,
        "messages_tab_read_only_enabled": False,
    }
    assert manifest["display_information"]["name"] == "pinbot"
    assert manifest["features"]["bot_user"]["display_name"] == "pinbot"


def test_bot_scopes_are_minimal() -> None:
    scopes = load_manifest()["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}, "no user token scopes"
    assert sorted(scopes["bot"]) == sorted(BOT_SCOPES)


def test_every_scope_is_needed_by_a_method_the_code_calls() -> None:
    """The scopes follow from the code: each Web API call found in bot/ and handlers/ must be
    in METHOD_SCOPES (a new call needs its scope reviewed), and the manifest asks for the
    scopes those calls need plus `commands`, nothing more."""
    called: set[str] = set()
    for source in [*(REPO_ROOT / "bot").rglob("*.py"), *(REPO_ROOT / "handlers").rglob("*.py")]:
        for match in _WEB_API_CALL.finditer(source.read_text()):
            called.add(match.group(1) or match.group(2))
    assert called <= set(METHOD_SCOPES), f"calls with no known scope: {called - set(METHOD_SCOPES)}"
    needed = {METHOD_SCOPES[method] for method in called} - {None}
    assert set(load_manifest()["oauth_config"]["scopes"]["bot"]) == needed | {"commands"}


def test_manifest_commands_are_the_ones_the_app_registers(stack) -> None:  # type: ignore[no-untyped-def]
    from handlers.ids import Commands

    assert manifest_commands() == {c.value for c in Commands}
    for command in Commands:
        # A command the app didn't register would get Bolt's 404 "unhandled request".
        assert stack.command(command.value, "help").status == 200
