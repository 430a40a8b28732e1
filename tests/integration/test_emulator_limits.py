"""Rate-limit headers, 429 shapes and the fault control API, over real sockets."""

from __future__ import annotations

import aiohttp

from steadybot.emulator import Emulator


async def test_message_creates_carry_bucket_headers_and_the_sixth_is_a_429() -> None:
    async with Emulator(members=5) as emulator, aiohttp.ClientSession() as http:
        url = f"{emulator.api_base}/channels/{emulator.channel_ids[0]}/messages"
        auth = {"Authorization": f"Bot {emulator.bot_token}"}
        remaining = []
        for index in range(5):
            async with http.post(url, json={"content": f"m{index}"}, headers=auth) as reply:
                assert reply.status == 200
                remaining.append(reply.headers["X-RateLimit-Remaining"])
                assert reply.headers["X-RateLimit-Bucket"]
        assert remaining == ["4", "3", "2", "1", "0"]
        async with http.post(url, json={"content": "too many"}, headers=auth) as reply:
            assert reply.status == 429
            body = await reply.json()
            assert reply.headers["X-RateLimit-Scope"] == "user"
            assert "Via" in reply.headers
            assert int(reply.headers["Retry-After"]) >= 1
        assert body["global"] is False
        assert 0 < body["retry_after"] <= 5
        assert len(emulator.messages(emulator.channel_ids[0])) == 5  # the 429 created nothing
        stats = emulator.statistics()
        assert stats.rate_limited["user"] == 1
        assert stats.invalid_requests == 1


async def test_fault_rules_are_set_through_the_control_api_and_counted() -> None:
    async with Emulator(members=5) as emulator, aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bot {emulator.bot_token}"}
        control = f"{emulator.url}/_emulator/faults"
        rules = {"rules": [{"route": "/users/*", "status": 503, "count": 1, "name": "down"}]}
        async with http.put(control, json=rules) as reply:
            assert reply.status == 200
            assert (await reply.json())["profile"] == "custom"
        async with http.get(f"{emulator.api_base}/users/@me", headers=auth) as reply:
            assert reply.status == 503
        async with http.get(f"{emulator.api_base}/users/@me", headers=auth) as reply:
            assert reply.status == 200  # count=1: the rule is spent
        async with http.put(control, json={"profile": "chaos"}) as reply:
            assert reply.status == 400
            assert "unknown fault profile" in (await reply.json())["message"]
        async with http.get(control) as reply:
            assert (await reply.json())["injected"] == {"down": 1}
        assert emulator.statistics().faults_injected == 1
