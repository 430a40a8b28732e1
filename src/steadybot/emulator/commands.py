"""Application command routes: what a bot calls to register its slash commands.

Global commands live under ``/applications/{application_id}/commands``, guild commands
under ``/applications/{application_id}/guilds/{guild_id}/commands``; both kinds are kept
in ``World.commands`` (id → command, with ``guild_id`` None for a global one) and each
route sees only its own scope. Discord's registration semantics, reproduced:

- a command is identified by (scope, type, name): POST with a name already registered
  *updates* that command (200, same id), a new name creates one (201);
- PUT is a bulk overwrite: the body becomes the whole set of the scope; commands whose
  name (or ``id``) matches keep their id, the rest are created, missing ones are deleted;
  two commands with one name and type are refused (50035 ``APPLICATION_COMMANDS_DUPLICATE_NAME``);
- every change gives the command a new ``version``;
- another application's id is 404 / 10002, an unknown command 404 / 10063.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from steadybot.constants import ErrorCode
from steadybot.emulator._http import Route, json_response, no_content, read_json
from steadybot.emulator.errors import (
    UNKNOWN_APPLICATION,
    UNKNOWN_APPLICATION_COMMAND,
    EmulatedError,
    invalid_form,
    unknown,
)
from steadybot.emulator.validation import (
    FieldErrors,
    as_object,
    as_snowflake,
    check_boolean,
    check_text,
)
from steadybot.emulator.world import World

__all__ = ["CommandRoutes", "check_command"]

JSON = dict[str, Any]
Scope = str | None  # a guild id, or None for global commands
COMMAND_NAME_MAX = 32
COMMAND_DESCRIPTION_MAX = 100
COMMAND_TYPES = (1, 2, 3)  # CHAT_INPUT, USER, MESSAGE
CHAT_INPUT = 1
MAX_COMMAND_OPTIONS = 25
MAX_OPTION_CHOICES = 25
OPTION_TYPES = range(1, 12)
SUBCOMMAND_TYPES = (1, 2)  # SUB_COMMAND, SUB_COMMAND_GROUP: options nest under these
MAX_OPTION_DEPTH = 2
CHAT_INPUT_NAME = re.compile(r"^[-_\w]{1,32}$")


class CommandRoutes:
    """Global and guild application commands of the emulated application."""

    def __init__(self, world: World) -> None:
        self._world = world

    def routes(self) -> list[Route]:
        routes: list[Route] = []
        for base in (
            "/applications/{application_id}/commands",
            "/applications/{application_id}/guilds/{guild_id}/commands",
        ):
            one = base + "/{command_id}"
            routes += [
                ("GET", base, self._list),
                ("PUT", base, self._overwrite),
                ("POST", base, self._create),
                ("GET", one, self._get),
                ("PATCH", one, self._edit),
                ("DELETE", one, self._delete),
            ]
        return routes

    # --- the scope a request names --------------------------------------------------

    def _scope(self, request: web.Request) -> Scope:
        if request.match_info["application_id"] != self._world.application_id:
            raise unknown(UNKNOWN_APPLICATION)
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None and guild_id != self._world.guild["id"]:
            raise unknown(ErrorCode.UNKNOWN_GUILD)
        return guild_id

    def _in_scope(self, scope: Scope) -> list[JSON]:
        commands = self._world.commands.values()
        return sorted((c for c in commands if c["guild_id"] == scope), key=lambda c: int(c["id"]))

    def _command(self, request: web.Request) -> JSON:
        scope = self._scope(request)
        command = self._world.commands.get(request.match_info["command_id"])
        if command is None or command["guild_id"] != scope:
            raise unknown(UNKNOWN_APPLICATION_COMMAND)
        return command

    def _named(self, scope: Scope, kind: object, name: object) -> JSON | None:
        return next(
            (c for c in self._in_scope(scope) if c["type"] == kind and c["name"] == name), None
        )

    # --- writes ---------------------------------------------------------------------

    def _store(
        self, fields: JSON, scope: Scope, existing: JSON | None, *, replace: bool = True
    ) -> JSON:
        """Create or change a command; ``replace`` (POST, PUT) drops what ``fields`` omit."""
        world = self._world
        if existing is None:
            existing = {
                "id": world.ids.next(),
                "application_id": world.application_id,
                "guild_id": scope,
            }
            world.commands[existing["id"]] = existing
        elif replace:
            for key in set(existing) - {"id", "application_id", "guild_id"}:
                del existing[key]
        existing.update(fields)
        existing["version"] = world.ids.next()
        return existing

    # --- handlers -------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        return json_response([_public(c) for c in self._in_scope(self._scope(request))])

    async def _get(self, request: web.Request) -> web.Response:
        return json_response(_public(self._command(request)))

    async def _create(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        fields = check_command(await read_json(request))
        existing = self._named(scope, fields["type"], fields["name"])
        command = self._store(fields, scope, existing)
        return json_response(_public(command), status=200 if existing is not None else 201)

    async def _edit(self, request: web.Request) -> web.Response:
        command = self._command(request)
        fields = check_command(await read_json(request), patching_type=command["type"])
        if "name" in fields:
            clash = self._named(command["guild_id"], command["type"], fields["name"])
            if clash is not None and clash is not command:
                raise invalid_form({"name": _duplicate_name()})
        stored = self._store(fields, command["guild_id"], command, replace=False)
        return json_response(_public(stored))

    async def _delete(self, request: web.Request) -> web.Response:
        command = self._command(request)
        del self._world.commands[command["id"]]
        return no_content()

    async def _overwrite(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        body = await read_json(request)
        items: list[Any] = [] if body is None else body  # the spec allows null: an empty set
        all_fields = _check_command_set(items)
        kept_ids: set[str] = set()
        kept: list[JSON] = []
        for item, fields in zip(items, all_fields, strict=True):
            existing = self._world.commands.get(str(item.get("id")))
            if existing is None or existing["guild_id"] != scope:
                existing = self._named(scope, fields["type"], fields["name"])
            if existing is not None and existing["id"] in kept_ids:
                existing = None  # already claimed by an earlier item: this one is new
            kept.append(self._store(fields, scope, existing))
            kept_ids.add(kept[-1]["id"])
        for command in self._in_scope(scope):
            if command["id"] not in kept_ids:
                del self._world.commands[command["id"]]
        return json_response([_public(c) for c in kept])


def _check_command_set(items: object) -> list[JSON]:
    """Validate a PUT body: every item (errors under its index, all reported at once),
    then one name per command type."""
    if not isinstance(items, list):
        raise invalid_form({"": ("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")})
    all_fields: list[JSON] = []
    errors: dict[str, Any] = {}
    for index, item in enumerate(items):
        try:
            all_fields.append(check_command(item, prefix=f"{index}."))
        except EmulatedError as exc:
            errors.update(exc.errors or {})
    if errors:
        raise EmulatedError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body", errors)
    seen: set[tuple[object, object]] = set()
    for index, fields in enumerate(all_fields):
        key = (fields["type"], fields["name"])
        if key in seen:
            raise invalid_form({str(index): _duplicate_name()})
        seen.add(key)
    return all_fields


def _duplicate_name() -> tuple[str, str]:
    return ("APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique")


def _public(command: JSON) -> JSON:
    """The command as Discord returns it: a global command has no ``guild_id`` key."""
    if command["guild_id"] is None:
        return {k: v for k, v in command.items() if k != "guild_id"}
    return dict(command)


def check_command(body: object, *, prefix: str = "", patching_type: int | None = None) -> JSON:
    """Validate an application command body; return the fields it sets, normalised.

    A create (POST, or one item of a PUT at ``prefix`` ``"3."``) gets Discord's defaults
    for what it leaves out; a PATCH (``patching_type``: the command's type, which cannot
    change) returns only the fields present.
    """
    body = as_object(body, prefix.rstrip("."))
    partial = patching_type is not None
    errors: FieldErrors = {}
    kind = patching_type if patching_type is not None else body.get("type")
    kind = CHAT_INPUT if kind is None else kind
    if isinstance(kind, bool) or kind not in COMMAND_TYPES:
        errors[prefix + "type"] = ("BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3).")
    fields: JSON = {} if partial else _command_defaults(kind)
    if not partial or "name" in body:
        _command_name(errors, prefix + "name", body.get("name"), chat_input=kind == CHAT_INPUT)
        fields["name"] = body.get("name")
    if kind == CHAT_INPUT and (not partial or "description" in body):
        check_text(
            errors, prefix + "description", body.get("description"), 1, COMMAND_DESCRIPTION_MAX
        )
        fields["description"] = body.get("description")
    if body.get("options") is not None:
        errors.update(_options(body["options"], prefix + "options", depth=0))
        fields["options"] = body["options"]
    if "default_member_permissions" in body:
        value = body["default_member_permissions"]
        bits = None if value is None else as_snowflake(value)
        if value is not None and bits is None:
            errors[prefix + "default_member_permissions"] = (
                "NUMBER_TYPE_COERCE",
                f'Value "{value}" is not int.',
            )
        fields["default_member_permissions"] = bits
    for key in ("dm_permission", "nsfw"):
        if body.get(key) is not None:
            check_boolean(errors, prefix + key, body[key])
            fields[key] = body[key]
    for key in ("contexts", "integration_types", "name_localizations"):
        if key in body:
            fields[key] = body[key]
    if errors:
        raise invalid_form(errors)
    return fields


def _command_defaults(kind: object) -> JSON:
    return {
        "type": kind,
        "description": "",  # USER and MESSAGE commands have an empty description
        "default_member_permissions": None,
        "dm_permission": True,
        "contexts": None,
        "integration_types": [0],
        "nsfw": False,
        "name_localizations": None,
        "description_localizations": None,
    }


def _command_name(errors: FieldErrors, path: str, name: object, *, chat_input: bool) -> None:
    check_text(errors, path, name, 1, COMMAND_NAME_MAX)
    if path in errors or not chat_input:
        return
    # CHAT_INPUT names: lowercase letters, digits, - and _ (Unicode letters allowed).
    if not isinstance(name, str) or not CHAT_INPUT_NAME.match(name) or name != name.lower():
        errors[path] = ("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def _options(options: object, path: str, *, depth: int) -> FieldErrors:
    if not isinstance(options, list):
        return {path: ("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")}
    if len(options) > MAX_COMMAND_OPTIONS:
        return {
            path: ("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMMAND_OPTIONS} or fewer in length.")
        }
    errors: FieldErrors = {}
    for index, option in enumerate(options):
        at = f"{path}.{index}"
        if not isinstance(option, dict):
            errors[at] = ("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        kind = option.get("type")
        if isinstance(kind, bool) or kind not in OPTION_TYPES:
            errors[f"{at}.type"] = ("BASE_TYPE_CHOICES", "Value must be one of (1, …, 11).")
        _command_name(errors, f"{at}.name", option.get("name"), chat_input=True)
        check_text(
            errors, f"{at}.description", option.get("description"), 1, COMMAND_DESCRIPTION_MAX
        )
        choices = option.get("choices")
        if isinstance(choices, list) and len(choices) > MAX_OPTION_CHOICES:
            errors[f"{at}.choices"] = (
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_OPTION_CHOICES} or fewer in length.",
            )
        nested = option.get("options")
        if nested is not None and kind in SUBCOMMAND_TYPES and depth < MAX_OPTION_DEPTH:
            errors.update(_options(nested, f"{at}.options", depth=depth + 1))
    return errors
