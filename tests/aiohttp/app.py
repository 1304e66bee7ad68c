"""The Python twin of `examples/src/migrate.rs`: an aiohttp app on the real aiohttp_session.

The cross-server tests (tests/aiohttp_compat.rs) run it from the venv that `cargo xtask venv`
creates, next to the Rust server, and drive both with one cookie jar. It serves the same routes:

    GET  /visit              session["visits"] += 1, answers it
    GET  /show               the session as JSON: {"new", "visits", "userName", "profile", "user"}
    POST /name               session["userName"] = body (UTF-8 text)
    POST /profile            session["profile"] = body (JSON)
    POST /lang               session["profile"]["lang"] = body (UTF-8 text), the other keys of
                             the profile kept
    POST /login?user=N       new_session() (what aiohttp_session's docs say to do at login),
                             keeping the data, then session["user"] = N
    POST /logout             session.invalidate()

Python only, for the keys the Rust struct does not declare:

    POST /update             session.update(body), body a JSON object
    GET  /dump               {"new": session.new, "session": the whole session dict}

Usage: app.py --store simple|encrypted|redis [--max-age N] [--redis-url URL]
The Fernet key comes from AIOHTTP_FERNET_KEY. It listens on a free loopback port, prints the
port on stdout, and exits when its stdin closes (so it never outlives the test that started it).
"""

import argparse
import asyncio
import json
import os
import socket
import sys

import aiohttp
import aiohttp_session
from aiohttp import web
from aiohttp_session import SimpleCookieStorage, get_session, new_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.redis_storage import RedisStorage

EXPECTED_VERSION = "2.12.1"
DEFAULT_PROFILE = {"lang": "", "tags": [], "address": None}


def shown(session):
    return {
        "new": session.new,
        "visits": session.get("visits", 0),
        "userName": session.get("userName", ""),
        "profile": session.get("profile", DEFAULT_PROFILE),
        "user": session.get("user"),
    }


async def visit(request):
    session = await get_session(request)
    session["visits"] = session.get("visits", 0) + 1
    return web.Response(text=str(session["visits"]))


async def show(request):
    session = await get_session(request)
    return web.Response(text=json.dumps(shown(session)))


async def name(request):
    session = await get_session(request)
    session["userName"] = await request.text()
    return web.Response(status=204)


async def profile(request):
    session = await get_session(request)
    session["profile"] = await request.json()
    return web.Response(status=204)


async def lang(request):
    session = await get_session(request)
    profile = dict(session.get("profile", DEFAULT_PROFILE))
    profile["lang"] = await request.text()
    session["profile"] = profile
    return web.Response(status=204)


async def update(request):
    session = await get_session(request)
    session.update(await request.json())
    return web.Response(status=204)


async def dump(request):
    session = await get_session(request)
    return web.Response(text=json.dumps({"new": session.new, "session": dict(session)}))


async def login(request):
    old = dict(await get_session(request))
    session = await new_session(request)
    session.update(old)
    session["user"] = int(request.query["user"])
    return web.Response(status=204)


async def logout(request):
    session = await get_session(request)
    session.invalidate()
    return web.Response(status=204)


def storage(args):
    if args.store == "simple":
        return SimpleCookieStorage(max_age=args.max_age)
    if args.store == "encrypted":
        return EncryptedCookieStorage(os.environ["AIOHTTP_FERNET_KEY"], max_age=args.max_age)
    import redis.asyncio

    return RedisStorage(redis.asyncio.from_url(args.redis_url), max_age=args.max_age)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["simple", "encrypted", "redis"], required=True)
    parser.add_argument("--max-age", type=int, default=3600)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    args = parser.parse_args()
    if aiohttp_session.__version__ != EXPECTED_VERSION:
        sys.exit(
            f"aiohttp_session {aiohttp_session.__version__} is installed, the tests expect "
            f"{EXPECTED_VERSION}; recreate the venv with cargo xtask venv"
        )
    app = web.Application(middlewares=[session_middleware(storage(args))])
    app.router.add_get("/visit", visit)
    app.router.add_get("/show", show)
    app.router.add_post("/name", name)
    app.router.add_post("/profile", profile)
    app.router.add_post("/lang", lang)
    app.router.add_post("/update", update)
    app.router.add_get("/dump", dump)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    print(
        f"aiohttp {aiohttp.__version__}, aiohttp_session {aiohttp_session.__version__}, "
        f"store {args.store}",
        file=sys.stderr,
        flush=True,
    )
    print(sock.getsockname()[1], flush=True)
    # Runs until the test closes our stdin (or dies).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
