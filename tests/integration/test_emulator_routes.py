"""The emulator's gateway, guild, bulk-delete and application-command routes behave as
Discord's do: statuses, error codes, field-error paths, pagination, the 14-day rule.

Over real sockets. Rate limits are off except where a test says otherwise: these tests
pin the routes, ``test_emulator_limits.py`` pins the limits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from steadybot.clock import ManualClock
from steadybot.emulator import Emulator, RateLimitSettings

MEMBERS = 7
NO_LIMITS = RateLimitSettings(enabled=False)
DAY = 86_400.0


@dataclass
class Api:
    """A bot's view of the emulator: JSON in, (status, JSON) out."""

    emulator: Emulator
    http: aiohttp.ClientSession

    async def __call__(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        auth: bool = True,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bot {self.emulator.bot_token}"} if auth else {}
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        url = self.emulator.api_base + path
        async with self.http.request(
            method, url, headers=headers, params=query or {}, **kwargs
        ) as reply:
            data = await reply.json() if reply.status != 204 else None
            return reply.status, data

    @property
    def guild(self) -> str:
        return self.emulator.guild_id

    @property
    def commands(self) -> str:
        return f"/applications/{self.emulator.application_id}/commands"

    @property
    def guild_commands(self) -> str:
        return f"/applications/{self.emulator.application_id}/guilds/{self.guild}/commands"

    async def message(self, channel_id: str, content: str = "hello") -> str:
        status, message = await self(
            "POST", f"/channels/{channel_id}/messages", {"content": content}
        )
        assert status == 200
        return str(message["id"])


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with (
        Emulator(members=MEMBERS, rate_limits=NO_LIMITS) as emulator,
        aiohttp.ClientSession() as http,
    ):
        yield Api(emulator, http)


def field_error(body: Any, path: str) -> str:
    """The first error code Discord's 50035 body gives for a dotted field path."""
    assert body["code"] == 50035, body
    node = body["errors"]
    for part in filter(None, path.split(".")):
        assert part in node, f"no errors at {path!r}: {body['errors']}"
        node = node[part]
    return str(node["_errors"][0]["code"])


def category_id(api: Api) -> str:
    return next(c["id"] for c in api.emulator.world.channels.values() if c.get("type") == 4)


# --- gateway ----------------------------------------------------------------------------


async def test_gateway_bot_points_at_this_emulator_and_needs_the_token(api: Api) -> None:
    expected_url = f"ws://{api.emulator.url.removeprefix('http://')}/gateway"
    assert await api("GET", "/gateway/bot", auth=False) == (
        401,
        {"code": 0, "message": "401: Unauthorized"},
    )
    status, body = await api("GET", "/gateway/bot")
    assert status == 200
    assert body == {
        "url": expected_url,
        "shards": 1,
        "session_start_limit": {
            "total": 1000,
            "remaining": 1000,
            "reset_after": 0,
            "max_concurrency": 1,
        },
    }
    assert await api("GET", "/gateway", auth=False) == (200, {"url": expected_url})


# --- rate-limit buckets ----------------------------------------------------------------


async def test_the_new_routes_fall_in_the_buckets_ratelimits_names() -> None:
    """The route templates match the rate-limit table, so each route is limited."""
    async with Emulator(members=3) as emulator, aiohttp.ClientSession() as http:
        api = Api(emulator, http)
        auth = {"Authorization": f"Bot {emulator.bot_token}"}
        guild = f"{emulator.api_base}/guilds/{emulator.guild_id}"
        channel = emulator.channel_ids[0]
        ids = [emulator.world.ids.next(), emulator.world.ids.next()]
        buckets = {}
        for name, method, url, body in [
            ("member", "GET", f"{guild}/members/{emulator.user_ids[0]}", None),
            ("members", "GET", f"{guild}/members", None),
            ("channels", "GET", f"{guild}/channels", None),
            ("create", "POST", f"{guild}/channels", {"name": "new"}),
            ("bulk", "POST", f"{emulator.api_base}/channels/{channel}/messages/bulk-delete",
             {"messages": ids}),
        ]:  # fmt: skip
            async with http.request(method, url, json=body, headers=auth) as reply:
                assert reply.status < 300, (name, reply.status)
                buckets[name] = reply.headers["X-RateLimit-Bucket"]
        assert buckets["member"] == buckets["members"]  # one shared member-read bucket
        assert len({buckets["members"], buckets["channels"], buckets["create"]}) == 3
        status, error = await api("POST", _bulk(channel), {"messages": ids})
        assert (status, error["retry_after"] > 0) == (429, True)  # 1 per second per channel


# --- guild, roles, channels -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("GET", "/roles"),
        ("GET", "/channels"),
        ("POST", "/channels"),
        ("GET", "/members"),
        ("GET", "/members/1"),
        ("POST", "/roles"),
        ("PUT", "/members/1/roles/1"),
        ("DELETE", "/members/1/roles/1"),
    ],
)
async def test_an_unknown_guild_is_404_10004(api: Api, method: str, suffix: str) -> None:
    body = {"name": "x"} if method == "POST" else None
    status, error = await api(method, f"/guilds/123{suffix}", body)
    assert (status, error) == (404, {"code": 10004, "message": "Unknown Guild"})


async def test_the_guild_comes_with_its_roles_and_counts_on_request(api: Api) -> None:
    status, guild = await api("GET", f"/guilds/{api.guild}")
    assert status == 200
    assert guild["id"] == api.guild
    assert [role["name"] for role in guild["roles"]] == ["@everyone", "staff"]
    assert guild["roles"][0]["id"] == api.guild  # @everyone shares the guild's id
    assert "approximate_member_count" not in guild
    _, counted = await api("GET", f"/guilds/{api.guild}", query={"with_counts": "true"})
    assert counted["approximate_member_count"] == MEMBERS


async def test_roles_are_listed_by_position(api: Api) -> None:
    status, roles = await api("GET", f"/guilds/{api.guild}/roles")
    assert status == 200
    assert [(r["name"], r["position"]) for r in roles] == [("@everyone", 0), ("staff", 1)]
    assert roles[1]["id"] == api.emulator.world.staff_role_id


async def test_guild_channels_leave_out_dm_channels(api: Api) -> None:
    status, dm = await api(
        "POST", "/users/@me/channels", {"recipient_id": api.emulator.user_ids[0]}
    )
    assert status == 200
    status, channels = await api("GET", f"/guilds/{api.guild}/channels")
    assert status == 200
    assert [(c["name"], c["type"]) for c in channels] == [
        ("Text Channels", 4),
        ("general", 0),
        ("support", 0),
        ("trading", 0),
    ]
    assert dm["id"] not in {c["id"] for c in channels}
    assert all(c["guild_id"] == api.guild for c in channels)


async def test_a_created_channel_is_201_with_normalised_overwrites_and_takes_messages(
    api: Api,
) -> None:
    staff, member = api.emulator.world.staff_role_id, api.emulator.user_ids[2]
    body = {
        "name": "moderation",
        "parent_id": category_id(api),
        "permission_overwrites": [
            {"id": api.guild, "type": 0, "deny": 1024},  # integers are accepted too
            {"id": staff, "type": 0, "allow": "1024", "deny": "0"},
            {"id": member, "allow": "2048"},  # type inferred: the id is a member's
        ],
    }
    status, channel = await api("POST", f"/guilds/{api.guild}/channels", body)
    assert status == 201
    assert channel["type"] == 0
    assert channel["guild_id"] == api.guild
    assert channel["parent_id"] == category_id(api)
    assert channel["position"] == 4  # after the category and the three seeded channels
    assert channel["permission_overwrites"] == [
        {"id": api.guild, "type": 0, "allow": "0", "deny": "1024"},
        {"id": staff, "type": 0, "allow": "1024", "deny": "0"},
        {"id": member, "type": 1, "allow": "2048", "deny": "0"},
    ]
    assert await api("GET", f"/channels/{channel['id']}") == (200, channel)
    await api.message(channel["id"], "first words")
    _, listed = await api("GET", f"/channels/{channel['id']}/messages")
    assert [m["content"] for m in listed] == ["first words"]


async def test_a_category_and_a_channel_under_it(api: Api) -> None:
    status, category = await api(
        "POST", f"/guilds/{api.guild}/channels", {"name": "Ops", "type": 4}
    )
    assert status == 201
    assert category["type"] == 4
    assert category["parent_id"] is None
    body = {"name": "alerts", "parent_id": category["id"], "position": 0}
    status, channel = await api("POST", f"/guilds/{api.guild}/channels", body)
    assert status == 201
    assert (channel["parent_id"], channel["position"]) == (category["id"], 0)


def _invalid_channel_bodies() -> list[Any]:
    long_name = "x" * 101
    return [
        pytest.param({}, "name", "BASE_TYPE_REQUIRED", id="no name"),
        pytest.param({"name": ""}, "name", "BASE_TYPE_BAD_LENGTH", id="empty name"),
        pytest.param({"name": long_name}, "name", "BASE_TYPE_BAD_LENGTH", id="101 chars"),
        pytest.param({"name": 5}, "name", "BASE_TYPE_STRING", id="name not a string"),
        pytest.param({"name": "v", "type": 2}, "type", "BASE_TYPE_CHOICES", id="voice type"),
        pytest.param({"name": "c", "type": 4, "parent_id": "CATEGORY"}, "parent_id",
                     "CHANNEL_PARENT_INVALID", id="category under a category"),
        pytest.param({"name": "c", "parent_id": "TEXT"}, "parent_id", "CHANNEL_PARENT_INVALID",
                     id="parent is a text channel"),
        pytest.param({"name": "c", "parent_id": "999"}, "parent_id", "CHANNEL_PARENT_INVALID",
                     id="unknown parent"),
        pytest.param({"name": "c", "permission_overwrites": [{"id": "999", "type": 0}]},
                     "permission_overwrites.0.id", "UNKNOWN_OVERWRITE_TARGET", id="unknown role"),
        pytest.param({"name": "c", "permission_overwrites": [{"id": "STAFF", "type": 1}]},
                     "permission_overwrites.0.id", "UNKNOWN_OVERWRITE_TARGET",
                     id="role id given as a member"),
        pytest.param({"name": "c", "permission_overwrites": [{"id": "STAFF", "type": 3}]},
                     "permission_overwrites.0.type", "BASE_TYPE_CHOICES", id="overwrite type 3"),
        pytest.param({"name": "c", "permission_overwrites": [{"id": "STAFF", "allow": "x"}]},
                     "permission_overwrites.0.allow", "NUMBER_TYPE_COERCE", id="allow not int"),
        pytest.param({"name": "c", "permission_overwrites": [{"type": 0}]},
                     "permission_overwrites.0.id", "BASE_TYPE_REQUIRED", id="overwrite without id"),
        pytest.param({"name": "c", "permission_overwrites": {"id": "1"}},
                     "permission_overwrites", "LIST_TYPE_CONVERT", id="overwrites not a list"),
    ]  # fmt: skip


@pytest.mark.parametrize(("body", "path", "code"), _invalid_channel_bodies())
async def test_an_invalid_channel_body_is_50035_at_the_field(
    api: Api, body: dict[str, Any], path: str, code: str
) -> None:
    text_channel = api.emulator.channel_ids[0]
    stand_ins = {"CATEGORY": category_id(api), "TEXT": text_channel}
    stand_ins["STAFF"] = api.emulator.world.staff_role_id
    body = {k: stand_ins.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    for overwrite in body.get("permission_overwrites") or []:
        if isinstance(overwrite, dict) and "id" in overwrite:
            overwrite["id"] = stand_ins.get(overwrite["id"], overwrite["id"])
    before = len(api.emulator.world.channels)
    status, error = await api("POST", f"/guilds/{api.guild}/channels", body)
    assert status == 400
    assert field_error(error, path) == code
    assert len(api.emulator.world.channels) == before  # nothing was created


# --- members ----------------------------------------------------------------------------


async def test_a_member_is_returned_without_interaction_only_fields(api: Api) -> None:
    user_id = api.emulator.user_ids[3]
    status, member = await api("GET", f"/guilds/{api.guild}/members/{user_id}")
    assert status == 200
    assert member["user"]["id"] == user_id
    assert "permissions" not in member  # only interaction payloads carry it
    assert {"roles", "joined_at", "deaf", "mute", "flags", "pending"} <= member.keys()


async def test_requests_are_counted_by_route_template(api: Api) -> None:
    # A story checks "no member fetched one by one after warm-up" with these counts.
    for user_id in api.emulator.user_ids[:2]:
        await api("GET", f"/guilds/{api.guild}/members/{user_id}")
    await api("GET", f"/guilds/{api.guild}/members", query={"limit": "5"})
    counts = api.emulator.statistics().requests_by_route
    assert counts["GET /guilds/{guild_id}/members/{user_id}"] == 2
    assert counts["GET /guilds/{guild_id}/members"] == 1


async def test_an_unknown_member_is_404_10007(api: Api) -> None:
    status, error = await api("GET", f"/guilds/{api.guild}/members/42")
    assert (status, error) == (404, {"code": 10007, "message": "Unknown Member"})


async def test_members_are_listed_one_by_default_in_ascending_id_order(api: Api) -> None:
    ascending = sorted(api.emulator.user_ids, key=int)
    status, page = await api("GET", f"/guilds/{api.guild}/members")
    assert status == 200
    assert [m["user"]["id"] for m in page] == ascending[:1]


async def test_paging_with_after_visits_every_member_once_in_order(api: Api) -> None:
    seen: list[str] = []
    after = "0"
    while True:
        query = {"limit": "3", "after": after}
        status, page = await api("GET", f"/guilds/{api.guild}/members", query=query)
        assert status == 200
        assert len(page) <= 3
        if not page:
            break
        seen += [m["user"]["id"] for m in page]
        after = page[-1]["user"]["id"]
    assert seen == sorted(api.emulator.user_ids, key=int)
    assert len(seen) == MEMBERS


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": "0"}, "NUMBER_TYPE_MIN"),
        ({"limit": "1001"}, "NUMBER_TYPE_MAX"),
        ({"limit": "ten"}, "NUMBER_TYPE_COERCE"),
        ({"after": "someone"}, "NUMBER_TYPE_COERCE"),
    ],
)
async def test_a_bad_member_query_is_50035(api: Api, query: dict[str, str], code: str) -> None:
    status, error = await api("GET", f"/guilds/{api.guild}/members", query=query)
    assert status == 400
    assert field_error(error, next(iter(query))) == code


async def test_the_largest_member_page_is_1000(api: Api) -> None:
    query = {"limit": "1000"}
    status, page = await api("GET", f"/guilds/{api.guild}/members", query=query)
    assert (status, len(page)) == (200, MEMBERS)


# --- roles and member roles -------------------------------------------------------------


async def test_a_new_role_is_200_at_position_1_above_everyone(api: Api) -> None:
    staff_before = api.emulator.world.roles[api.emulator.world.staff_role_id]["position"]
    status, role = await api("POST", f"/guilds/{api.guild}/roles", {"name": "alchemist"})
    assert status == 200
    assert (role["name"], role["position"], role["permissions"]) == ("alchemist", 1, "0")
    _, roles = await api("GET", f"/guilds/{api.guild}/roles")
    assert [r["name"] for r in roles] == ["@everyone", "alchemist", "staff"]
    assert api.emulator.world.roles[api.emulator.world.staff_role_id]["position"] == (
        staff_before + 1
    )
    status, unnamed = await api("POST", f"/guilds/{api.guild}/roles", {})
    assert (status, unnamed["name"]) == (200, "new role")


@pytest.mark.parametrize(
    ("body", "path", "code"),
    [
        ({"name": ""}, "name", "BASE_TYPE_BAD_LENGTH"),
        ({"name": "x" * 101}, "name", "BASE_TYPE_BAD_LENGTH"),
        ({"color": 0x1000000}, "color", "NUMBER_TYPE_MAX"),
        ({"permissions": "lots"}, "permissions", "NUMBER_TYPE_COERCE"),
        ({"hoist": "yes"}, "hoist", "BASE_TYPE_BOOLEAN"),
    ],
)
async def test_an_invalid_role_body_is_50035_at_the_field(
    api: Api, body: dict[str, Any], path: str, code: str
) -> None:
    before = len(api.emulator.world.roles)
    status, error = await api("POST", f"/guilds/{api.guild}/roles", body)
    assert status == 400
    assert field_error(error, path) == code
    assert len(api.emulator.world.roles) == before


async def test_member_roles_are_granted_and_taken_idempotently(api: Api) -> None:
    _, role = await api("POST", f"/guilds/{api.guild}/roles", {"name": "tailor"})
    user_id = api.emulator.user_ids[4]
    path = f"/guilds/{api.guild}/members/{user_id}/roles/{role['id']}"
    for _ in range(2):  # twice: the second grant changes nothing
        assert await api("PUT", path) == (204, None)
    _, member = await api("GET", f"/guilds/{api.guild}/members/{user_id}")
    assert member["roles"] == [role["id"]]
    for _ in range(2):
        assert await api("DELETE", path) == (204, None)
    _, member = await api("GET", f"/guilds/{api.guild}/members/{user_id}")
    assert member["roles"] == []


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_an_unknown_member_or_role_is_10007_or_10011(api: Api, method: str) -> None:
    staff = api.emulator.world.staff_role_id
    user_id = api.emulator.user_ids[2]
    status, error = await api(method, f"/guilds/{api.guild}/members/42/roles/{staff}")
    assert (status, error) == (404, {"code": 10007, "message": "Unknown Member"})
    status, error = await api(method, f"/guilds/{api.guild}/members/{user_id}/roles/42")
    assert (status, error) == (404, {"code": 10011, "message": "Unknown Role"})


async def test_the_bot_lists_its_one_guild_paged_by_id(api: Api) -> None:
    status, guilds = await api("GET", "/users/@me/guilds", query={"with_counts": "true"})
    assert status == 200
    assert [g["id"] for g in guilds] == [api.guild]
    assert guilds[0]["approximate_member_count"] == MEMBERS
    _, after = await api("GET", "/users/@me/guilds", query={"after": api.guild})
    assert after == []
    status, error = await api("GET", "/users/@me/guilds", query={"limit": "201"})
    assert status == 400
    assert field_error(error, "limit") == "NUMBER_TYPE_MAX"


# --- bulk delete ------------------------------------------------------------------------


def _bulk(channel_id: str) -> str:
    return f"/channels/{channel_id}/messages/bulk-delete"


async def test_bulk_delete_removes_the_messages_and_ignores_unknown_ids(api: Api) -> None:
    channel = api.emulator.channel_ids[0]
    first, second, kept = [await api.message(channel, text) for text in ("a", "b", "c")]
    unknown = api.emulator.world.ids.next()  # recent, but no such message
    status, body = await api("POST", _bulk(channel), {"messages": [first, second, unknown]})
    assert (status, body) == (204, None)
    assert [m["id"] for m in api.emulator.messages(channel)] == [kept]
    assert api.emulator.statistics().messages_deleted == 2


async def test_bulk_delete_in_a_dm_is_50003(api: Api) -> None:
    _, dm = await api("POST", "/users/@me/channels", {"recipient_id": api.emulator.user_ids[0]})
    ids = [api.emulator.world.ids.next(), api.emulator.world.ids.next()]
    status, error = await api("POST", _bulk(dm["id"]), {"messages": ids})
    assert (status, error) == (
        400,
        {"code": 50003, "message": "Cannot execute action on a DM channel"},
    )


async def test_bulk_delete_in_an_unknown_channel_is_10003(api: Api) -> None:
    status, error = await api("POST", _bulk("77"), {"messages": ["1", "2"]})
    assert (status, error) == (404, {"code": 10003, "message": "Unknown Channel"})


@pytest.mark.parametrize(
    ("messages", "path", "code"),
    [
        (None, "messages", "BASE_TYPE_REQUIRED"),
        (["M0"], "messages", "BASE_TYPE_MIN_LENGTH"),
        ([str(n) for n in range(101)], "messages", "BASE_TYPE_MAX_LENGTH"),
        (["M0", "M0"], "messages.1", "SET_TYPE_ALREADY_CONTAINS_VALUE"),
        (["M0", "not-an-id"], "messages.1", "NUMBER_TYPE_COERCE"),
    ],
)
async def test_an_invalid_bulk_delete_body_is_50035(
    api: Api, messages: list[str] | None, path: str, code: str
) -> None:
    channel = api.emulator.channel_ids[0]
    real = await api.message(channel)
    body = {"messages": [real if m == "M0" else m for m in messages]} if messages else {}
    status, error = await api("POST", _bulk(channel), body)
    assert status == 400
    assert field_error(error, path) == code
    assert api.emulator.message(channel, real) is not None  # nothing was deleted


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[Api, ManualClock]]:
    clock = ManualClock()
    async with (
        Emulator(members=3, clock=clock, rate_limits=NO_LIMITS) as emulator,
        aiohttp.ClientSession() as http,
    ):
        yield Api(emulator, http), clock


async def test_a_message_over_14_days_old_blocks_the_whole_bulk_delete(
    clocked: tuple[Api, ManualClock],
) -> None:
    api, clock = clocked
    channel = api.emulator.channel_ids[0]
    old = await api.message(channel, "old")
    await clock.advance(15 * DAY)
    new = await api.message(channel, "new")
    status, error = await api("POST", _bulk(channel), {"messages": [old, new]})
    assert (status, error) == (
        400,
        {"code": 50034, "message": "You can only bulk delete messages that are under 14 days old."},
    )
    assert [m["content"] for m in api.emulator.messages(channel)] == ["old", "new"]


async def test_a_13_day_old_message_may_still_be_bulk_deleted(
    clocked: tuple[Api, ManualClock],
) -> None:
    api, clock = clocked
    channel = api.emulator.channel_ids[0]
    old = await api.message(channel, "old")
    await clock.advance(13 * DAY)
    new = await api.message(channel, "new")
    assert await api("POST", _bulk(channel), {"messages": [old, new]}) == (204, None)
    assert api.emulator.messages(channel) == []


# --- application commands ---------------------------------------------------------------

ECHO = {"name": "echo", "description": "Repeats what you say"}


async def test_post_creates_201_then_the_same_name_replaces_it_200(api: Api) -> None:
    option = {"type": 3, "name": "text", "description": "What to repeat"}
    status, created = await api("POST", api.commands, {**ECHO, "options": [option]})
    assert status == 201
    assert created["options"] == [option]
    assert created["application_id"] == api.emulator.application_id
    assert (created["type"], created["name"]) == (1, "echo")
    assert "guild_id" not in created  # a global command
    assert api.emulator.world.commands[created["id"]]["guild_id"] is None

    status, updated = await api("POST", api.commands, {**ECHO, "description": "Says it back"})
    assert status == 200
    assert updated["id"] == created["id"]
    assert updated["description"] == "Says it back"
    assert "options" not in updated  # a POST replaces the command: no options now
    assert updated["version"] != created["version"]
    _, listed = await api("GET", api.commands)
    assert listed == [updated]


async def test_global_and_guild_commands_are_separate_scopes(api: Api) -> None:
    _, global_one = await api("POST", api.commands, ECHO)
    status, guild_one = await api("POST", api.guild_commands, ECHO)
    assert status == 201  # same name, other scope: a new command
    assert guild_one["id"] != global_one["id"]
    assert guild_one["guild_id"] == api.guild
    _, listed = await api("GET", api.commands)
    assert [c["id"] for c in listed] == [global_one["id"]]
    status, error = await api("GET", f"{api.commands}/{guild_one['id']}")
    assert (status, error) == (404, {"code": 10063, "message": "Unknown application command"})
    assert await api("GET", f"{api.guild_commands}/{guild_one['id']}") == (200, guild_one)


async def test_put_overwrites_the_set_keeping_ids_of_matching_names(api: Api) -> None:
    _, echo = await api("POST", api.commands, ECHO)
    _, old = await api("POST", api.commands, {"name": "old", "description": "Going away"})
    body = [
        {**ECHO, "description": "Still here"},
        {"name": "new", "description": "Just arrived"},
        {"name": "Report", "type": 3},  # a message command: any case, no description
    ]
    status, result = await api("PUT", api.commands, body)
    assert status == 200
    assert [c["name"] for c in result] == ["echo", "new", "Report"]
    assert result[0]["id"] == echo["id"]
    assert result[0]["description"] == "Still here"
    assert result[2]["description"] == ""
    assert old["id"] not in api.emulator.world.commands
    _, listed = await api("GET", api.commands)
    assert {c["name"] for c in listed} == {"echo", "new", "Report"}
    assert await api("PUT", api.commands, []) == (200, [])
    assert api.emulator.world.commands == {}


async def test_put_with_a_duplicate_name_changes_nothing(api: Api) -> None:
    await api("POST", api.commands, ECHO)
    body = [{"name": "a", "description": "x"}, {"name": "a", "description": "y"}]
    status, error = await api("PUT", api.commands, body)
    assert status == 400
    assert field_error(error, "1") == "APPLICATION_COMMANDS_DUPLICATE_NAME"
    _, listed = await api("GET", api.commands)
    assert [c["name"] for c in listed] == ["echo"]


async def test_put_reports_every_item_s_field_errors_under_its_index(api: Api) -> None:
    body = [{"name": "Bad Name", "description": "x"}, ECHO, {"name": "ok", "description": ""}]
    status, error = await api("PUT", api.commands, body)
    assert status == 400
    assert field_error(error, "0.name") == "APPLICATION_COMMAND_INVALID_NAME"
    assert field_error(error, "2.description") == "BASE_TYPE_BAD_LENGTH"
    assert "1" not in error["errors"]
    assert api.emulator.world.commands == {}


async def test_patch_edits_in_place_and_refuses_a_taken_name(api: Api) -> None:
    _, echo = await api("POST", api.commands, ECHO)
    await api("POST", api.commands, {"name": "ping", "description": "Pong"})
    path = f"{api.commands}/{echo['id']}"
    status, edited = await api("PATCH", path, {"description": "New words"})
    assert status == 200
    assert (edited["id"], edited["name"], edited["description"]) == (
        echo["id"],
        "echo",
        "New words",
    )
    assert edited["version"] != echo["version"]
    status, error = await api("PATCH", path, {"name": "ping"})
    assert status == 400
    assert field_error(error, "name") == "APPLICATION_COMMANDS_DUPLICATE_NAME"


async def test_delete_is_204_then_the_command_is_unknown(api: Api) -> None:
    _, echo = await api("POST", api.guild_commands, ECHO)
    path = f"{api.guild_commands}/{echo['id']}"
    assert await api("DELETE", path) == (204, None)
    unknown = (404, {"code": 10063, "message": "Unknown application command"})
    assert await api("GET", path) == unknown
    assert await api("DELETE", path) == unknown
    assert await api("PATCH", path, {"description": "x"}) == unknown


async def test_another_application_is_10002_and_another_guild_10004(api: Api) -> None:
    status, error = await api("GET", "/applications/999/commands")
    assert (status, error) == (404, {"code": 10002, "message": "Unknown Application"})
    application = api.emulator.application_id
    status, error = await api("POST", f"/applications/{application}/guilds/5/commands", ECHO)
    assert (status, error) == (404, {"code": 10004, "message": "Unknown Guild"})


def _invalid_commands() -> list[Any]:
    option = {"type": 3, "name": "text", "description": "Some text"}
    return [
        pytest.param({"description": "x"}, "name", "BASE_TYPE_REQUIRED", id="no name"),
        pytest.param({**ECHO, "name": "Echo"}, "name", "APPLICATION_COMMAND_INVALID_NAME",
                     id="uppercase"),
        pytest.param({**ECHO, "name": "two words"}, "name", "APPLICATION_COMMAND_INVALID_NAME",
                     id="space"),
        pytest.param({**ECHO, "name": "x" * 33}, "name", "BASE_TYPE_BAD_LENGTH", id="33 chars"),
        pytest.param({"name": "echo"}, "description", "BASE_TYPE_REQUIRED", id="no description"),
        pytest.param({**ECHO, "description": ""}, "description", "BASE_TYPE_BAD_LENGTH",
                     id="empty description"),
        pytest.param({**ECHO, "description": "d" * 101}, "description", "BASE_TYPE_BAD_LENGTH",
                     id="101-char description"),
        pytest.param({**ECHO, "type": 9}, "type", "BASE_TYPE_CHOICES", id="unknown type"),
        pytest.param({**ECHO, "options": [option] * 26}, "options", "BASE_TYPE_MAX_LENGTH",
                     id="26 options"),
        pytest.param({**ECHO, "options": [option, {**option, "name": "Bad"}]}, "options.1.name",
                     "APPLICATION_COMMAND_INVALID_NAME", id="option name"),
        pytest.param({**ECHO, "options": [{**option, "description": ""}]},
                     "options.0.description", "BASE_TYPE_BAD_LENGTH", id="option description"),
        pytest.param({**ECHO, "options": [{"type": 1, "name": "sub", "description": "s",
                                           "options": [{**option, "name": "UP"}]}]},
                     "options.0.options.0.name", "APPLICATION_COMMAND_INVALID_NAME",
                     id="subcommand option"),
        pytest.param({**ECHO, "default_member_permissions": "admin"},
                     "default_member_permissions", "NUMBER_TYPE_COERCE", id="permissions"),
    ]  # fmt: skip


@pytest.mark.parametrize(("body", "path", "code"), _invalid_commands())
async def test_an_invalid_command_is_50035_at_the_field(
    api: Api, body: dict[str, Any], path: str, code: str
) -> None:
    status, error = await api("POST", api.commands, body)
    assert status == 400
    assert field_error(error, path) == code
    assert api.emulator.world.commands == {}


async def test_user_and_message_commands_take_any_case_and_no_description(api: Api) -> None:
    status, command = await api("POST", api.guild_commands, {"name": "Report User", "type": 2})
    assert status == 201
    assert (command["type"], command["description"]) == (2, "")
    status, chat = await api("POST", api.guild_commands, {"name": "Report User", "type": 1})
    assert status == 400  # the same name as a CHAT_INPUT command is invalid
    assert field_error(chat, "name") == "APPLICATION_COMMAND_INVALID_NAME"


# --- enforce_nonce (the outbox relies on it) --------------------------------------------


async def test_an_enforced_nonce_returns_the_first_message_instead_of_a_second() -> None:
    clock = ManualClock()
    async with (
        Emulator(clock=clock, members=MEMBERS, rate_limits=NO_LIMITS) as emulator,
        aiohttp.ClientSession() as http,
    ):
        api = Api(emulator, http)
        channel = emulator.channel_ids[0]
        path = f"/channels/{channel}/messages"
        body = {"content": "once", "nonce": "n-1", "enforce_nonce": True}
        status, first = await api("POST", path, body)
        assert (status, first["nonce"]) == (200, "n-1")
        status, again = await api("POST", path, body)
        assert (status, again["id"]) == (200, first["id"])
        # Without enforce_nonce a nonce changes nothing: a new message.
        status, loose = await api("POST", path, {"content": "once", "nonce": "n-1"})
        assert loose["id"] != first["id"]
        # "The past few minutes": past the window the nonce is free again.
        await clock.advance(301.0)
        status, later = await api("POST", path, body)
        assert later["id"] not in (first["id"], loose["id"])
        assert [m["content"] for m in emulator.messages(channel)].count("once") == 3
        status, error = await api("POST", path, {"content": "x", "nonce": "n" * 26})
        assert status == 400
        assert field_error(error, "nonce") == "BASE_TYPE_BAD_LENGTH"
