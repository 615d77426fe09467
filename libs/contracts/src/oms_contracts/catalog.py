"""The event catalog: a JSON Schema per message and version, and an AsyncAPI document.

Both are generated from the models and committed under `libs/contracts/catalog/`
(shipped in this package as `oms_contracts.published`). Those files are what
subscribers code against, so they are also the baseline a change to a model is
checked against: a change that would break a subscriber of the same version (a
field removed or retyped, a field newly required) is refused; it needs a new
`version` on the model, which publishes a new schema file next to the old one.

    python -m oms_contracts.catalog check [DIR]   fails if DIR is stale or a change breaks
    python -m oms_contracts.catalog write [DIR]   regenerates DIR, refusing breaking changes

DIR defaults to the published files of this package (in a development install,
`libs/contracts/catalog/`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic.json_schema import models_json_schema

from oms_contracts.envelope import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, Envelope, Message
from oms_contracts.registry import CATALOG

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_FILE = "asyncapi.json"
SCHEMAS_DIR = "schemas"
PUBLISHED_PACKAGE = "oms_contracts.published"
_SCHEMA_FILE = re.compile(r"^(?P<routing_key>[a-z0-9_.]+)\.v(?P<version>[0-9]+)\.json$")
_AMQP_BINDING_VERSION = "0.3.0"


def schema_path(routing_key: str, version: int) -> str:
    """Where the schema of one message version lives, relative to the catalog root."""
    return f"{SCHEMAS_DIR}/{routing_key}.v{version}.json"


def message_schema(message: type[Message]) -> dict[str, Any]:
    """The JSON Schema of a message's `data`, self-contained (shared shapes in `$defs`)."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:oms:message:{message.routing_key}:v{message.version}",
        "x-oms-routing-key": message.routing_key,
        "x-oms-version": message.version,
        "x-oms-kind": message.kind,
        "x-oms-exchange": message.exchange,
        **message.model_json_schema(),
    }


def _contracts_version() -> str:
    return importlib.metadata.version("oms-contracts")


def _envelope_schema() -> dict[str, Any]:
    envelope = Envelope.model_json_schema(mode="serialization")
    # The publisher serializes every envelope field, null or not.
    return {**envelope, "required": list(envelope["properties"])}


def _envelope_payload(message: type[Message], data_ref: str) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/components/schemas/Envelope"},
            {
                "type": "object",
                "properties": {
                    "type": {"const": message.routing_key},
                    "version": {"const": message.version},
                    "data": {"$ref": data_ref},
                },
            },
        ]
    }


def asyncapi_document(messages: Iterable[type[Message]]) -> dict[str, Any]:
    """AsyncAPI 3.0 description of what the system publishes: events on `oms.events`
    for anyone, and the internal commands on `oms.commands`."""
    ordered = sorted(messages, key=lambda m: (m.kind != "event", m.routing_key))
    refs, definitions = models_json_schema(
        [(message, "validation") for message in ordered],
        ref_template="#/components/schemas/{model}",
    )
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    component_messages: dict[str, Any] = {}
    for message in ordered:
        channel_id = message.routing_key
        message_id = f"{channel_id}.v{message.version}"
        internal = message.kind == "command"
        component_messages[message_id] = {
            "name": message.routing_key,
            "title": message.__name__,
            **({"summary": message.__doc__.strip().splitlines()[0]} if message.__doc__ else {}),
            "contentType": "application/json",
            "correlationId": {"location": "$message.payload#/correlation_id"},
            "payload": _envelope_payload(message, refs[(message, "validation")]["$ref"]),
            "bindings": {
                "amqp": {
                    "messageType": message.routing_key,
                    "bindingVersion": _AMQP_BINDING_VERSION,
                }
            },
        }
        channels[channel_id] = {
            "address": message.routing_key,
            "description": (
                f"Routing key `{message.routing_key}` on the `{message.exchange}` topic exchange."
                + (" Internal: a command for one service; do not bind to it." if internal else "")
            ),
            "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": message.exchange,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                    },
                    "bindingVersion": _AMQP_BINDING_VERSION,
                }
            },
            **({"tags": [{"name": "internal"}]} if internal else {}),
        }
        operations[f"send.{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{message_id}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "OMS events",
            "version": _contracts_version(),
            "description": (
                f"Every domain event of the order management system goes to the durable "
                f"topic exchange `{EVENTS_EXCHANGE}` with routing key `<service>.<event>`. "
                "Bind your own queue to it (e.g. `order.*`); every event arrives at least "
                "once, so deduplicate on the envelope's `message_id`. Ignore fields you do "
                "not know: fields are added without notice. A change that would break a "
                "reader (a field removed, retyped or newly required) comes as a new "
                "`version` of the message, with its own schema. Commands on "
                f"`{COMMANDS_EXCHANGE}` are internal and listed for completeness."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "`make run`'s RabbitMQ (guest/guest); each deployment has its own",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"Envelope": _envelope_schema(), **definitions["$defs"]},
            "messages": component_messages,
        },
    }


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def generate(messages: Iterable[type[Message]] | None = None) -> dict[str, str]:
    """Every catalog file by its path relative to the catalog root."""
    messages = list(CATALOG.values() if messages is None else messages)
    generated = {schema_path(m.routing_key, m.version): render(message_schema(m)) for m in messages}
    generated[ASYNCAPI_FILE] = render(asyncapi_document(messages))
    return generated


def published_root() -> Traversable:
    return files(PUBLISHED_PACKAGE)


def read_catalog(root: Traversable | None = None) -> dict[str, str]:
    """The catalog files under `root` (default: the ones shipped in this package)."""
    root = published_root() if root is None else root
    found: dict[str, str] = {}
    if root.joinpath(ASYNCAPI_FILE).is_file():
        found[ASYNCAPI_FILE] = root.joinpath(ASYNCAPI_FILE).read_text(encoding="utf-8")
    schemas = root.joinpath(SCHEMAS_DIR)
    if schemas.is_dir():
        for entry in schemas.iterdir():
            if entry.is_file() and _SCHEMA_FILE.match(entry.name):
                found[f"{SCHEMAS_DIR}/{entry.name}"] = entry.read_text(encoding="utf-8")
    return found


def published_schema_file(routing_key: str, version: int) -> Traversable | None:
    """The published schema file of one message version, or None if there is none."""
    name = f"{routing_key}.v{version}.json"
    # The arguments may come from a URL: only a well-formed file name is looked up.
    if not _SCHEMA_FILE.match(name):
        return None
    entry = published_root().joinpath(SCHEMAS_DIR, name)
    return entry if entry.is_file() else None


def published_schema(routing_key: str, version: int) -> dict[str, Any] | None:
    entry = published_schema_file(routing_key, version)
    if entry is None:
        return None
    schema: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
    return schema


# -- compatibility ---------------------------------------------------------------------


@dataclass(frozen=True)
class BreakingChange:
    kind: Literal["removed", "retyped", "required"]
    field: str
    detail: str = ""

    def __str__(self) -> str:
        kind = "newly required" if self.kind == "required" else self.kind
        return f"{kind} field `{self.field}`" + (f": {self.detail}" if self.detail else "")


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[BreakingChange]:
    """What in `new` would break a reader of `old`, for the same message version:
    a field removed, a field whose JSON type (or format) changed, a field newly
    required. Nested objects and array items are compared too (`lines[].sku`)."""
    changes: list[BreakingChange] = []
    _compare(_Node(old, old), _Node(new, new), "", changes)
    return changes


@dataclass(frozen=True)
class _Node:
    """A schema node together with the document its `$ref`s point into."""

    root: Mapping[str, Any]
    schema: Mapping[str, Any]

    def resolved(self) -> _Node:
        node, seen = self.schema, set()
        while "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/") or ref in seen:
                raise ValueError(f"cannot resolve {ref!r}")
            seen.add(ref)
            node = self.root
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return _Node(self.root, node)

    def branches(self) -> list[_Node]:
        """The alternatives of a union (`X | None` is anyOf [X, null]), else itself."""
        node = self.resolved()
        for key in ("anyOf", "oneOf"):
            if key in node.schema:
                return [b for s in node.schema[key] for b in _Node(self.root, s).branches()]
        return [node]

    def types(self) -> frozenset[str]:
        found = set()
        for branch in self.branches():
            declared = branch.schema.get("type", "any")
            for name in [declared] if isinstance(declared, str) else declared:
                fmt = branch.schema.get("format")
                found.add(f"{name}({fmt})" if fmt else name)
        return frozenset(found)

    def branch(self, json_type: str) -> _Node | None:
        return next((b for b in self.branches() if b.schema.get("type") == json_type), None)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _compare(old: _Node, new: _Node, path: str, changes: list[BreakingChange]) -> None:
    old_types, new_types = old.types(), new.types()
    if path and old_types != new_types:
        detail = f"{' | '.join(sorted(old_types))} -> {' | '.join(sorted(new_types))}"
        changes.append(BreakingChange("retyped", path, detail))
        return
    old_object, new_object = old.branch("object"), new.branch("object")
    if old_object is not None and new_object is not None:
        old_properties = old_object.schema.get("properties", {})
        new_properties = new_object.schema.get("properties", {})
        for name, schema in old_properties.items():
            if name not in new_properties:
                changes.append(BreakingChange("removed", _join(path, name)))
            else:
                _compare(
                    _Node(old.root, schema),
                    _Node(new.root, new_properties[name]),
                    _join(path, name),
                    changes,
                )
        was_required = set(old_object.schema.get("required", ()))
        for name in new_object.schema.get("required", ()):
            if name not in was_required:
                changes.append(BreakingChange("required", _join(path, name)))
    old_array, new_array = old.branch("array"), new.branch("array")
    if old_array is not None and new_array is not None:
        _compare(
            _Node(old.root, old_array.schema.get("items", {})),
            _Node(new.root, new_array.schema.get("items", {})),
            f"{path}[]",
            changes,
        )


@dataclass
class Report:
    """How generated catalog files differ from published ones."""

    breaking: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaking and not self.stale


def _parse_schema_path(path: str) -> tuple[str, int] | None:
    directory, _, name = path.partition("/")
    match = _SCHEMA_FILE.match(name) if directory == SCHEMAS_DIR else None
    return (match["routing_key"], int(match["version"])) if match else None


def compare(published: Mapping[str, str], generated: Mapping[str, str]) -> Report:
    report = Report()
    for path, text in sorted(generated.items()):
        old = published.get(path)
        if old == text:
            continue
        report.stale.append(path)
        if old is not None and _parse_schema_path(path) is not None:
            for change in breaking_changes(json.loads(old), json.loads(text)):
                report.breaking.append(f"{path}: {change}")
    latest: dict[str, int] = {}
    for path in generated:
        if (parsed := _parse_schema_path(path)) is not None:
            latest[parsed[0]] = max(latest.get(parsed[0], 0), parsed[1])
    for path in sorted(set(published) - set(generated)):
        parsed = _parse_schema_path(path)
        # An older version stays published for readers that still get it.
        if parsed is not None and latest.get(parsed[0], 0) <= parsed[1]:
            report.breaking.append(
                f"{path}: published, but no model produces it or a later version; "
                "subscribers rely on it (delete the file to retire it on purpose)"
            )
    return report


# -- command line ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oms_contracts.catalog")
    parser.add_argument("command", choices=["check", "write"])
    parser.add_argument("directory", nargs="?", type=Path, help="default: the packaged catalog")
    args = parser.parse_args(argv)
    directory: Path = args.directory or Path(str(published_root()))

    generated = generate()
    report = compare(read_catalog(directory), generated)
    for problem in report.breaking:
        print(f"breaking: {problem}", file=sys.stderr)
    if report.breaking:
        print(
            "A subscriber of the same version would break: give the message a new "
            "`version` (a new schema file) instead.",
            file=sys.stderr,
        )
        return 1
    if args.command == "write":
        for path in report.stale:
            (directory / path).parent.mkdir(parents=True, exist_ok=True)
            (directory / path).write_text(generated[path], encoding="utf-8")
            print(f"wrote {directory / path}")
        return 0
    for path in report.stale:
        print(f"stale: {directory / path}", file=sys.stderr)
    if report.stale:
        print(f"Run: python -m oms_contracts.catalog write {directory}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
