"""The emulator's REST API, held to Discord's own OpenAPI description of it.

Every route the emulator serves under ``/api/v10`` is driven with a valid request over
real sockets. The request body, the query parameters, the status, the rate-limit headers
and the success response body are checked against what the spec gives that operation
(``$ref`` resolved through a ``referencing`` registry over the whole spec document). A
few error answers are checked against the spec's error schemas as well.

Where the spec is wrong or silent, or the emulator knowingly differs, the entry is in
``KNOWN_GAPS`` below, the one place that lists them, each with its reason; gaps that are
schema mistakes carry the corrected schema, which is patched into the spec before any
validation. ``docs/emulator.md`` ("Spec fidelity") summarises the same list.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from steadybot.emulator import Emulator
from steadybot.emulator.rest import API_PREFIX

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "discord-openapi.json"
SPEC_URI = "urn:discord-openapi"
JSON = dict[str, Any]
NO_BODY = object()

pytestmark = pytest.mark.skipif(
    not SPEC.exists(), reason=f"Discord's OpenAPI description is not at {SPEC}"
)


@dataclass(frozen=True)
class Gap:
    """One known difference between the spec, Discord and the emulator."""

    why: str
    pointer: str | None = None  # JSON pointer into the spec where the fix goes
    schema: Any = None  # the corrected schema put at ``pointer``


KNOWN_GAPS: dict[str, Gap] = {
    "spec: 429 body requires code": Gap(
        why="The spec builds RatelimitedResponse on Error, which requires `code`; Discord's "
        "429 bodies are {message, retry_after, global} and carry `code` only sometimes "
        "(shared/discord-facts.md). Corrected: `code` optional.",
        pointer="/components/schemas/RatelimitedResponse/allOf/0",
        schema={
            "type": "object",
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
            "required": ["message"],
        },
    ),
    "spec: rate-limit headers": Gap(
        why="The spec models only X-RateLimit-Limit, -Remaining, -Reset, -Reset-After and "
        "-Bucket; X-RateLimit-Global, X-RateLimit-Scope and Retry-After, which every 429 "
        "client reads, are absent. Checked against the facts file instead "
        "(test_a_429_matches_the_spec_and_carries_the_headers_it_omits).",
    ),
    "spec: field error codes are strings": Gap(
        why="Field errors (errors.<field>._errors[]) reuse the Error schema, whose `code` is "
        "an integer; Discord sends string codes such as BASE_TYPE_REQUIRED. Corrected: "
        "`code` a string.",
        pointer="/components/schemas/InnerErrors/properties/_errors/items",
        schema={
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        },
    ),
    "spec: overwrite allow/deny are strings": Gap(
        why="ChannelPermissionOverwriteRequest types `allow` and `deny` as integers; "
        "Discord's documentation types them as strings (like every permission bit set) and "
        "libraries send strings (discord.py: str(value)). Discord accepts both; so does "
        "the emulator. Corrected: integer or string.",
        pointer="/components/schemas/ChannelPermissionOverwriteRequest/properties/allow",
        schema={"type": ["integer", "string", "null"], "pattern": "^[0-9]+$"},
    ),
    "spec: overwrite deny is a string": Gap(
        why="As for `allow`, above.",
        pointer="/components/schemas/ChannelPermissionOverwriteRequest/properties/deny",
        schema={"type": ["integer", "string", "null"], "pattern": "^[0-9]+$"},
    ),
    "emulator: rate-limit headers on bucketed routes only": Gap(
        why="X-RateLimit-* headers are sent on the routes ratelimits.py gives a bucket; "
        "Discord sends them on most responses. Where sent, they are checked here.",
    ),
}


# --- the spec ---------------------------------------------------------------------------


@functools.cache
def _spec() -> JSON:
    spec: JSON = json.loads(SPEC.read_text(encoding="utf-8"))
    for name, gap in KNOWN_GAPS.items():
        if gap.pointer is None:
            continue
        *parents, last = gap.pointer.lstrip("/").split("/")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        assert key in node if isinstance(node, dict) else key < len(node), (
            f"KNOWN_GAPS[{name!r}] points at {gap.pointer}, which the spec no longer has"
        )
        node[key] = gap.schema
    return spec


@functools.cache
def _registry() -> Registry[Any]:
    return Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(_spec()))


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


@functools.cache
def _validator(pointer: str) -> Draft202012Validator:
    reference = f"{SPEC_URI}#{quote(pointer, safe='/~')}"
    return Draft202012Validator({"$ref": reference}, registry=_registry())


def assert_valid(instance: object, pointer: str) -> None:
    """Fail with the most telling reasons (inside oneOf/anyOf too) if ``instance`` is invalid."""
    errors = sorted(_validator(pointer).iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        reasons = [best_match([error]) for error in errors[:10]]
        described = "\n".join(
            f"- at {'/'.join(map(str, r.absolute_path)) or '(root)'}: {r.message[:300]}"
            for r in reasons
        )
        pytest.fail(f"does not match {unquote(pointer)}:\n{described}")


def _path_pattern(key: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(key)) + "$")


def spec_path(path: str) -> str:
    """The spec's path key for a concrete path; literal segments beat parameters.

    By shape, not by name: interaction follow-ups are the spec's webhook routes with the
    application id as ``webhook_id`` and the token as ``webhook_token``, and
    ``messages/@original`` has its own path key.
    """
    matches = [key for key in _spec()["paths"] if _path_pattern(key).match(path)]
    assert matches, f"the spec has no path for {path}"
    return min(matches, key=lambda key: key.count("{"))


def spec_template(template: str) -> str:
    """The spec's path key for an emulator route template (parameter names may differ)."""
    shape = re.sub(r"\{[^}]+\}", "{}", template)
    keys = [key for key in _spec()["paths"] if re.sub(r"\{[^}]+\}", "{}", key) == shape]
    assert len(keys) == 1, f"{template} matches spec paths {keys}"
    return keys[0]


def _pointer(path_key: str, *rest: str) -> str:
    return "/" + "/".join(["paths", _escape(path_key), *map(_escape, rest)])


def _operation(path_key: str, method: str) -> JSON:
    operation: JSON = _spec()["paths"][path_key][method.lower()]
    return operation


def _query_parameters(path_key: str, method: str) -> dict[str, tuple[JSON, str]]:
    """Query parameter name → (its schema, the pointer to that schema)."""
    found: dict[str, tuple[JSON, str]] = {}
    item = _spec()["paths"][path_key]
    for owner, prefix in (
        (item, _pointer(path_key, "parameters")),
        (item.get(method.lower(), {}), _pointer(path_key, method.lower(), "parameters")),
    ):
        for index, parameter in enumerate(owner.get("parameters", [])):
            if parameter["in"] == "query":
                found[parameter["name"]] = (parameter["schema"], f"{prefix}/{index}/schema")
    return found


REQUEST_SCHEMA = ("requestBody", "content", "application/json", "schema")
RESPONSE_SCHEMA = ("content", "application/json", "schema")


def _resolve(node: JSON) -> JSON:
    while "$ref" in node:
        target: Any = _spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _coerce(value: str, schema: JSON) -> object:
    """A query or header value as the JSON type its schema names."""
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


# --- driving the emulator ---------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str  # under /api/v10, concrete
    body: object = NO_BODY
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    emulator: Emulator
    http: aiohttp.ClientSession

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bot {self.emulator.bot_token}"}

    async def call(self, method: str, path: str, body: object = NO_BODY) -> Any:
        """A setup request that must succeed; returns its JSON (or None)."""
        kwargs: JSON = {} if body is NO_BODY else {"json": body}
        url = self.emulator.api_base + path
        async with self.http.request(method, url, headers=self.auth, **kwargs) as reply:
            assert reply.status < 300, (method, path, reply.status, await reply.text())
            return await reply.json() if reply.status != 204 else None

    @property
    def guild(self) -> str:
        return self.emulator.guild_id

    @property
    def app(self) -> str:
        return self.emulator.application_id

    @property
    def channel(self) -> str:
        return self.emulator.channel_ids[0]

    async def message(self, content: str = "hello") -> str:
        message = await self.call(
            "POST", f"/channels/{self.channel}/messages", {"content": content}
        )
        return str(message["id"])

    async def command(self, guild: bool = False) -> str:
        base = f"/applications/{self.app}" + (f"/guilds/{self.guild}" if guild else "")
        created = await self.call("POST", base + "/commands", COMMAND)
        return str(created["id"])

    async def acknowledged_interaction(self) -> str:
        """An interaction answered with a message through the callback route; its token."""
        interaction = self.emulator.ledger.create(
            2,
            {"id": "1", "name": "ping", "type": 1},
            user_id=self.emulator.user_ids[0],
            channel_id=self.channel,
        )
        await self.call(
            "POST",
            f"/interactions/{interaction.id}/{interaction.token}/callback",
            {"type": 4, "data": {"content": "pong"}},
        )
        return interaction.token

    async def followup(self) -> tuple[str, str]:
        """An acknowledged interaction's token and the id of a follow-up it sent."""
        token = await self.acknowledged_interaction()
        sent = await self.call("POST", f"/webhooks/{self.app}/{token}", {"content": "more"})
        return token, str(sent["id"])


COMMAND: JSON = {
    "name": "echo",
    "type": 1,
    "description": "Repeats what you say",
    "options": [{"type": 3, "name": "text", "description": "What to repeat", "required": True}],
}
BUTTON_ROW: JSON = {
    "type": 1,
    "components": [{"type": 2, "style": 1, "label": "Go", "custom_id": "go"}],
}

Build = Callable[[Context], Awaitable[Request]]


@dataclass(frozen=True)
class Case:
    method: str
    template: str  # the emulator's route template under /api/v10
    build: Build
    label: str = ""
    auth: bool = True

    @property
    def id(self) -> str:
        return f"{self.method} {self.template}" + (f" ({self.label})" if self.label else "")


def _fixed(path: str, body: object = NO_BODY, **query: str) -> Build:
    async def build(ctx: Context) -> Request:
        return Request(
            path.format(guild=ctx.guild, app=ctx.app, channel=ctx.channel), body, dict(query)
        )

    return build


async def _create_dm(ctx: Context) -> Request:
    return Request("/users/@me/channels", {"recipient_id": ctx.emulator.user_ids[1]})


async def _create_channel(ctx: Context) -> Request:
    category = next(c["id"] for c in ctx.emulator.world.channels.values() if c.get("type") == 4)
    body = {
        "name": "moderation",
        "type": 0,
        "topic": "for staff",
        "parent_id": category,
        "permission_overwrites": [
            {"id": ctx.guild, "type": 0, "allow": "0", "deny": "1024"},
            {"id": ctx.emulator.world.staff_role_id, "type": 0, "allow": "1024", "deny": "0"},
        ],
    }
    return Request(f"/guilds/{ctx.guild}/channels", body)


async def _get_member(ctx: Context) -> Request:
    return Request(f"/guilds/{ctx.guild}/members/{ctx.emulator.user_ids[0]}")


def _member_role(*, granted: bool) -> Build:
    async def build(ctx: Context) -> Request:
        path = f"/guilds/{ctx.guild}/members/{ctx.emulator.user_ids[1]}/roles/"
        path += ctx.emulator.world.staff_role_id
        if granted:
            await ctx.call("PUT", path)
        return Request(path)

    return build


async def _list_messages(ctx: Context) -> Request:
    await ctx.message()
    return Request(f"/channels/{ctx.channel}/messages", query={"limit": "10"})


async def _one_message(ctx: Context) -> Request:
    return Request(f"/channels/{ctx.channel}/messages/{await ctx.message()}")


async def _edit_message(ctx: Context) -> Request:
    path = f"/channels/{ctx.channel}/messages/{await ctx.message()}"
    return Request(path, {"content": "edited", "components": [BUTTON_ROW]})


async def _bulk_delete(ctx: Context) -> Request:
    ids = [await ctx.message("one"), await ctx.message("two")]
    return Request(f"/channels/{ctx.channel}/messages/bulk-delete", {"messages": ids})


def _command_list(guild: bool, body: object = NO_BODY, *, seed: bool = True) -> Build:
    async def build(ctx: Context) -> Request:
        if seed:
            await ctx.command(guild)
        base = f"/applications/{ctx.app}" + (f"/guilds/{ctx.guild}" if guild else "")
        return Request(base + "/commands", body)

    return build


def _one_command(guild: bool, body: object = NO_BODY) -> Build:
    async def build(ctx: Context) -> Request:
        command_id = await ctx.command(guild)
        base = f"/applications/{ctx.app}" + (f"/guilds/{ctx.guild}" if guild else "")
        return Request(f"{base}/commands/{command_id}", body)

    return build


async def _callback(ctx: Context) -> Request:
    interaction = ctx.emulator.ledger.create(
        2,
        {"id": "1", "name": "ping", "type": 1},
        user_id=ctx.emulator.user_ids[0],
        channel_id=ctx.channel,
    )
    body = {"type": 4, "data": {"content": "pong", "components": [BUTTON_ROW]}}
    path = f"/interactions/{interaction.id}/{interaction.token}/callback"
    return Request(path, body, {"with_response": "true"})


async def _followup(ctx: Context) -> Request:
    token = await ctx.acknowledged_interaction()
    return Request(f"/webhooks/{ctx.app}/{token}", {"content": "follow-up", "flags": 64})


def _webhook_message(which: str, body: object = NO_BODY) -> Build:
    async def build(ctx: Context) -> Request:
        token, followup_id = await ctx.followup()
        message_id = followup_id if which == "id" else "@original"
        return Request(f"/webhooks/{ctx.app}/{token}/messages/{message_id}", body)

    return build


CHANNELS = "/channels/{channel_id}"
MESSAGES = CHANNELS + "/messages"
COMMANDS = "/applications/{application_id}/commands"
GUILD_COMMANDS = "/applications/{application_id}/guilds/{guild_id}/commands"
WEBHOOK = "/webhooks/{application_id}/{token}"
MEMBER_ROLE = "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"
RENAMED = {"name": "echo", "description": "Says it back"}

CASES: list[Case] = [
    Case("GET", "/users/@me", _fixed("/users/@me")),
    Case("GET", "/users/@me/guilds", _fixed("/users/@me/guilds", limit="10", with_counts="true")),
    Case("POST", "/users/@me/channels", _create_dm),
    Case("GET", "/applications/@me", _fixed("/applications/@me")),
    Case("PATCH", "/applications/@me", _fixed("/applications/@me", {})),
    Case("GET", "/oauth2/applications/@me", _fixed("/oauth2/applications/@me")),
    Case("GET", "/gateway", _fixed("/gateway"), auth=False),
    Case("GET", "/gateway/bot", _fixed("/gateway/bot")),
    Case("GET", "/guilds/{guild_id}", _fixed("/guilds/{guild}", with_counts="true")),
    Case("GET", "/guilds/{guild_id}/roles", _fixed("/guilds/{guild}/roles")),
    Case(
        "POST",
        "/guilds/{guild_id}/roles",
        _fixed("/guilds/{guild}/roles", {"name": "blacksmith", "color": 0xAA5500, "hoist": True}),
    ),
    Case("GET", "/guilds/{guild_id}/channels", _fixed("/guilds/{guild}/channels")),
    Case("POST", "/guilds/{guild_id}/channels", _create_channel),
    Case("GET", "/guilds/{guild_id}/members", _fixed("/guilds/{guild}/members", limit="3")),
    Case("GET", "/guilds/{guild_id}/members/{user_id}", _get_member),
    Case("PUT", MEMBER_ROLE, _member_role(granted=False)),
    Case("DELETE", MEMBER_ROLE, _member_role(granted=True)),
    Case("GET", CHANNELS, _fixed("/channels/{channel}")),
    Case("GET", MESSAGES, _list_messages),
    Case(
        "POST",
        MESSAGES,
        _fixed("/channels/{channel}/messages", {"content": "hi", "components": [BUTTON_ROW]}),
    ),
    Case("GET", MESSAGES + "/{message_id}", _one_message),
    Case("PATCH", MESSAGES + "/{message_id}", _edit_message),
    Case("DELETE", MESSAGES + "/{message_id}", _one_message),
    Case("POST", MESSAGES + "/bulk-delete", _bulk_delete),
    Case("GET", COMMANDS, _command_list(guild=False)),
    Case("PUT", COMMANDS, _command_list(guild=False, body=[COMMAND, {**COMMAND, "name": "ping"}])),
    Case("POST", COMMANDS, _command_list(guild=False, body=COMMAND, seed=False), "new"),
    Case("POST", COMMANDS, _command_list(guild=False, body=COMMAND), "existing name"),
    Case("GET", COMMANDS + "/{command_id}", _one_command(guild=False)),
    Case("PATCH", COMMANDS + "/{command_id}", _one_command(guild=False, body=RENAMED)),
    Case("DELETE", COMMANDS + "/{command_id}", _one_command(guild=False)),
    Case("GET", GUILD_COMMANDS, _command_list(guild=True)),
    Case("PUT", GUILD_COMMANDS, _command_list(guild=True, body=[COMMAND])),
    Case("POST", GUILD_COMMANDS, _command_list(guild=True, body=COMMAND, seed=False)),
    Case("GET", GUILD_COMMANDS + "/{command_id}", _one_command(guild=True)),
    Case("PATCH", GUILD_COMMANDS + "/{command_id}", _one_command(guild=True, body=RENAMED)),
    Case("DELETE", GUILD_COMMANDS + "/{command_id}", _one_command(guild=True)),
    Case("POST", "/interactions/{interaction_id}/{token}/callback", _callback),
    Case("POST", WEBHOOK, _followup),
    Case("GET", WEBHOOK + "/messages/{message_id}", _webhook_message("@original"), "@original"),
    Case("GET", WEBHOOK + "/messages/{message_id}", _webhook_message("id"), "follow-up id"),
    Case(
        "PATCH",
        WEBHOOK + "/messages/{message_id}",
        _webhook_message("@original", {"content": "edited", "components": []}),
    ),
    Case("DELETE", WEBHOOK + "/messages/{message_id}", _webhook_message("id")),
]


@pytest.fixture
async def ctx() -> AsyncIterator[Context]:
    async with Emulator(members=5) as emulator, aiohttp.ClientSession() as http:
        yield Context(emulator, http)


def _served_routes() -> set[tuple[str, str]]:
    app = Emulator(members=1)._api.application()
    served = set()
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if route.method != "HEAD" and canonical.startswith(API_PREFIX):
            served.add((route.method, canonical.removeprefix(API_PREFIX)))
    return served


def test_every_served_route_has_a_case_and_a_spec_operation() -> None:
    served = _served_routes()
    covered = {(case.method, case.template) for case in CASES}
    assert served - covered == set(), "routes served but not driven against the spec"
    assert covered - served == set(), "cases for routes the emulator does not serve"
    for method, template in served:
        assert method.lower() in _spec()["paths"][spec_template(template)], (method, template)


def _check_request(key: str, method: str, request: Request) -> None:
    if request.body is not NO_BODY:
        assert_valid(request.body, _pointer(key, method.lower(), *REQUEST_SCHEMA))
    parameters = _query_parameters(key, method)
    for name, value in request.query.items():
        assert name in parameters, f"{name!r} is not a query parameter of {method} {key}"
        schema, pointer = parameters[name]
        assert_valid(_coerce(value, _resolve(schema)), pointer)


def _check_headers(declared: JSON, headers: Mapping[str, str]) -> None:
    """Headers the spec declares for a response have the declared type where sent."""
    for name, header in declared.get("headers", {}).items():
        if name in headers:
            schema = _resolve(header)["schema"]
            Draft202012Validator(schema).validate(_coerce(headers[name], schema))


@dataclass(frozen=True)
class Reply:
    status: int
    raw: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        assert self.headers["Content-Type"].startswith("application/json")
        return json.loads(self.raw)


async def _send(ctx: Context, method: str, request: Request, *, auth: bool = True) -> Reply:
    kwargs: JSON = {} if request.body is NO_BODY else {"json": request.body}
    url = ctx.emulator.api_base + request.path
    headers = ctx.auth if auth else {}
    async with ctx.http.request(method, url, headers=headers, params=request.query, **kwargs) as r:
        return Reply(r.status, await r.read(), r.headers)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_route_matches_the_spec(ctx: Context, case: Case) -> None:
    request = await case.build(ctx)
    key, method = spec_path(request.path), case.method
    _check_request(key, method, request)

    reply = await _send(ctx, method, request, auth=case.auth)

    responses = _operation(key, method)["responses"]
    assert str(reply.status) in responses, (
        f"{method} {key} answered {reply.status} {reply.raw[:300]!r}; "
        f"the spec allows {sorted(responses)}"
    )
    _check_headers(_resolve(responses[str(reply.status)]), reply.headers)
    if reply.status == 204:
        assert reply.raw == b""
    else:
        pointer = _pointer(key, method.lower(), "responses", str(reply.status), *RESPONSE_SCHEMA)
        assert_valid(reply.json(), pointer)


# --- error answers ----------------------------------------------------------------------


def _assert_error_matches(key: str, method: str, reply: Reply) -> Any:
    """The error body matches the operation's 429 or 4XX response; returns it."""
    responses = _operation(key, method)["responses"]
    name = str(reply.status) if str(reply.status) in responses else f"{str(reply.status)[0]}XX"
    assert name in responses, (reply.status, sorted(responses))
    response = _resolve(responses[name])
    _check_headers(response, reply.headers)
    body = reply.json()
    ref = response["content"]["application/json"]["schema"]["$ref"]
    assert_valid(body, ref.removeprefix("#"))
    return body


async def _unknown_guild(ctx: Context) -> Request:
    return Request("/guilds/1/roles")


async def _bad_channel_body(ctx: Context) -> Request:
    return Request(f"/guilds/{ctx.guild}/channels", {"name": "", "type": 2})


async def _dm_bulk_delete(ctx: Context) -> Request:
    dm = await ctx.call("POST", "/users/@me/channels", {"recipient_id": ctx.emulator.user_ids[0]})
    return Request(f"/channels/{dm['id']}/messages/bulk-delete", {"messages": ["1", "2"]})


async def _bad_command(ctx: Context) -> Request:
    return Request(f"/applications/{ctx.app}/commands", {"name": "Bad Name", "description": ""})


ERROR_CASES = [
    pytest.param("GET", _unknown_guild, 404, 10004, id="unknown guild"),
    pytest.param("POST", _bad_channel_body, 400, 50035, id="invalid channel body"),
    pytest.param("POST", _dm_bulk_delete, 400, 50003, id="bulk delete in a DM"),
    pytest.param("POST", _bad_command, 400, 50035, id="invalid command"),
]


@pytest.mark.parametrize(("method", "build", "status", "code"), ERROR_CASES)
async def test_error_answers_match_the_spec(
    ctx: Context, method: str, build: Build, status: int, code: int
) -> None:
    request = await build(ctx)
    reply = await _send(ctx, method, request)
    assert reply.status == status
    body = _assert_error_matches(spec_path(request.path), method, reply)
    assert body["code"] == code


async def test_an_unauthorised_call_matches_the_spec(ctx: Context) -> None:
    reply = await _send(ctx, "GET", Request("/users/@me"), auth=False)
    assert reply.status == 401
    _assert_error_matches("/users/@me", "GET", reply)


async def test_a_429_matches_the_spec_and_carries_the_headers_it_omits(ctx: Context) -> None:
    path = f"/channels/{ctx.channel}/messages/bulk-delete"
    recent = {"messages": [ctx.emulator.world.ids.next(), ctx.emulator.world.ids.next()]}
    first = await _send(ctx, "POST", Request(path, recent))
    assert first.status == 204  # unknown ids are ignored; the bucket allows 1 per second
    reply = await _send(ctx, "POST", Request(path, recent))
    assert reply.status == 429
    body = _assert_error_matches(spec_path(path), "POST", reply)
    assert body["global"] is False
    # KNOWN_GAPS["spec: 429 body requires code"]: Discord's documented body, without code.
    documented = {"message": "You are being rate limited.", "retry_after": 0.5, "global": False}
    assert_valid(documented, "/components/schemas/RatelimitedResponse")
    # KNOWN_GAPS["spec: rate-limit headers"]: what the spec leaves out, Discord sends.
    assert reply.headers["X-RateLimit-Scope"] == "user"
    assert int(reply.headers["Retry-After"]) >= 1
    assert "Via" in reply.headers
