"""Chaining: our hooks chained with the user's (order, errors, every form of user hook gunicorn
accepts, arity as gunicorn checks it) and install() putting them into a config namespace."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.util import get_arity

from gunicorn_pyinstrument import hooks
from gunicorn_pyinstrument.chaining import HOOK_ARITY, chain, install
from gunicorn_pyinstrument.hooks import OUR_HOOKS
from gunicorn_pyinstrument.settings import load

#: Which hook runs first in a chain: ours nests inside the user's (theirs first on the way in,
#: ours first on the way out). A new hook must be added here on purpose.
OURS_RUN_FIRST = {
    "when_ready": False,
    "pre_fork": False,
    "post_fork": False,
    "post_worker_init": False,
    "pre_request": False,
    "post_request": True,
    "worker_abort": True,
    "worker_exit": True,
    "on_exit": True,
}

ARGS = ("arg0", "arg1", "arg2", "arg3")


def recorder(events: list, label: str, arity: int, fail: bool = False) -> Callable[..., None]:
    """A hook with exactly ``arity`` positional parameters that records its call."""

    def record(args: tuple) -> None:
        events.append((label, args))
        if fail:
            raise RuntimeError(f"{label} failed")

    factories: dict[int, Callable[..., None]] = {
        1: lambda a: record((a,)),
        2: lambda a, b: record((a, b)),
        3: lambda a, b, c: record((a, b, c)),
        4: lambda a, b, c, d: record((a, b, c, d)),
        5: lambda a, b, c, d, e: record((a, b, c, d, e)),
    }
    return factories[arity]


def gunicorn_set(name: str, value: Any) -> Config:
    cfg = Config()
    cfg.set(name, value)  # gunicorn's own validation: raises TypeError on a wrong arity
    return cfg


def call_through_gunicorn(cfg: Config, name: str) -> None:
    getattr(cfg, name)(*ARGS[: HOOK_ARITY[name]])


@pytest.fixture
def no_agent(monkeypatch):
    """Our request hooks do nothing without an agent; make sure no other test left one."""
    monkeypatch.setattr(hooks._state, "request_mode", None)


def test_every_hook_has_a_declared_arity_and_order():
    assert set(OUR_HOOKS) == set(HOOK_ARITY)
    assert set(OUR_HOOKS) == set(OURS_RUN_FIRST), "decide the chaining order of the new hook"


@pytest.mark.parametrize("name", list(OUR_HOOKS))
def test_gunicorn_accepts_chained_hooks(name):
    theirs = recorder([], "theirs", HOOK_ARITY[name])
    chained = chain(name, theirs, OUR_HOOKS[name])
    assert get_arity(chained) == HOOK_ARITY[name]
    assert chained.__name__ == name
    gunicorn_set(name, chained)


@pytest.mark.parametrize("name", list(OUR_HOOKS))
def test_chain_order(name):
    events: list = []
    arity = HOOK_ARITY[name]
    chained = chain(name, recorder(events, "theirs", arity), recorder(events, "ours", arity))
    call_through_gunicorn(gunicorn_set(name, chained), name)
    order = [label for label, _ in events]
    assert order == (["ours", "theirs"] if OURS_RUN_FIRST[name] else ["theirs", "ours"])
    assert all(args == ARGS[:arity] for _, args in events)


def test_request_hooks_nest_inside_the_users():
    events: list = []
    pre = chain("pre_request", recorder(events, "their pre", 2), recorder(events, "our pre", 2))
    post = chain("post_request", recorder(events, "their post", 4), recorder(events, "our post", 4))
    pre("w", "req")
    post("w", "req", "env", "resp")
    assert [label for label, _ in events] == ["their pre", "our pre", "our post", "their post"]


@pytest.mark.parametrize("name", list(OUR_HOOKS))
def test_error_in_their_hook_does_not_stop_ours_and_is_reraised(name):
    events: list = []
    arity = HOOK_ARITY[name]
    chained = chain(name, recorder(events, "theirs", arity, fail=True), recorder(events, "ours", arity))
    with pytest.raises(RuntimeError, match="theirs failed"):
        chained(*ARGS[:arity])
    assert sorted(label for label, _ in events) == ["ours", "theirs"]


@pytest.mark.parametrize("their_arity", [2, 3, 4])
def test_post_request_user_hook_of_any_accepted_arity(their_arity):
    events: list = []
    theirs = recorder(events, "theirs", their_arity)
    chained = chain("post_request", theirs, recorder(events, "ours", 4))
    cfg = gunicorn_set("post_request", chained)
    cfg.post_request(*ARGS)
    assert events == [("ours", ARGS), ("theirs", ARGS[:their_arity])]
    # ... and theirs gets exactly what gunicorn would give it without the plugin
    alone: list = []
    gunicorn_set("post_request", recorder(alone, "theirs", their_arity)).post_request(*ARGS)
    assert alone == [events[1]]


def test_chain_with_real_post_request_accepts_two_argument_user_hook(no_agent):
    events: list = []
    cfg = gunicorn_set(
        "post_request", chain("post_request", recorder(events, "theirs", 2), hooks.post_request)
    )
    cfg.post_request(*ARGS)
    assert events == [("theirs", ARGS[:2])]


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user's hook module importable by dotted name."""
    name = f"user_hooks_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        "calls = []\n"
        "def pre_request(worker, req):\n    calls.append(('pre_request', worker, req))\n"
        "def post_request(worker, req, environ):\n    calls.append(('post_request', worker, req, environ))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_user_hook_given_as_a_dotted_string(user_module):
    import importlib

    events: list = []
    pre = chain("pre_request", f"{user_module}.pre_request", recorder(events, "ours", 2))
    post = chain("post_request", f"{user_module}.post_request", recorder(events, "ours", 4))
    gunicorn_set("pre_request", pre).pre_request("w", "r")
    gunicorn_set("post_request", post).post_request("w", "r", "e", "resp")
    module = importlib.import_module(user_module)
    assert module.calls == [("pre_request", "w", "r"), ("post_request", "w", "r", "e")]
    assert len(events) == 2


def test_user_hook_given_as_a_bound_method():
    events: list = []

    class UserHooks:
        def pre_request(self, worker, req):
            events.append(("their pre", self, worker, req))

        def post_request(self, worker, req, environ):
            events.append(("their post", self, worker, req, environ))

    obj = UserHooks()
    gunicorn_set(
        "pre_request", chain("pre_request", obj.pre_request, recorder(events, "ours", 2))
    ).pre_request("w", "r")
    gunicorn_set(
        "post_request", chain("post_request", obj.post_request, recorder(events, "ours", 4))
    ).post_request(*ARGS)
    assert events == [
        ("their pre", obj, "w", "r"),
        ("ours", ("w", "r")),
        ("ours", ARGS),
        ("their post", obj, *ARGS[:3]),
    ]


def test_user_hook_given_as_a_partial():
    events: list = []

    def tagged(tag, worker, req):
        events.append((tag, worker, req))

    def tagged_post(tag, worker, req, environ, resp):
        events.append((tag, worker, req, environ, resp))

    pre = chain("pre_request", functools.partial(tagged, "pre"), recorder(events, "ours", 2))
    post = chain("post_request", functools.partial(tagged_post, "post"), recorder(events, "ours", 4))
    gunicorn_set("pre_request", pre).pre_request("w", "r")
    gunicorn_set("post_request", post).post_request(*ARGS)
    assert events == [("pre", "w", "r"), ("ours", ("w", "r")), ("ours", ARGS), ("post", *ARGS)]


def test_chain_refuses_a_non_callable():
    with pytest.raises(TypeError):
        chain("pre_request", 42, hooks.pre_request)


@pytest.mark.parametrize(("name", "arity"), [("pre_request", 3), ("post_request", 1), ("post_request", 5)])
def test_chain_refuses_what_gunicorn_refuses(name, arity):
    bad = recorder([], "theirs", arity)
    with pytest.raises(TypeError):
        gunicorn_set(name, bad)  # without the plugin: refused at start-up
    with pytest.raises(TypeError):
        gunicorn_set(name, chain(name, bad, recorder([], "ours", HOOK_ARITY[name])))


# --- install ---


def _settings(tmp_path, switch: str):
    return load({"GUNICORN_PYINSTRUMENT": switch, "GUNICORN_PYINSTRUMENT_DIR": str(tmp_path / "reports")})


def test_install_enabled_puts_every_hook_and_chains_existing_ones(tmp_path, no_agent):
    events: list = []
    users_pre = recorder(events, "their pre", 2)
    users_post = recorder(events, "their post", 2)
    namespace: dict[str, Any] = {
        "bind": "127.0.0.1:0",
        "workers": 2,
        "pre_request": users_pre,
        "post_request": users_post,
    }
    installed = install(namespace, _settings(tmp_path, "on"))
    assert installed == list(OUR_HOOKS)
    assert namespace["bind"] == "127.0.0.1:0" and namespace["workers"] == 2
    for name, ours in OUR_HOOKS.items():
        if name in ("pre_request", "post_request"):
            assert namespace[name] is not ours
        else:
            assert namespace[name] is ours
        gunicorn_set(name, namespace[name])
    namespace["pre_request"]("w", "r")
    gunicorn_set("post_request", namespace["post_request"]).post_request(*ARGS)
    assert events == [("their pre", ("w", "r")), ("their post", ARGS[:2])]


def test_install_disabled_installs_nothing(tmp_path):
    def users_pre(worker, req):
        pass

    namespace: dict[str, Any] = {"bind": "127.0.0.1:0", "pre_request": users_pre}
    before = dict(namespace)
    assert install(namespace, _settings(tmp_path, "off")) == []
    assert namespace == before
    assert namespace["pre_request"] is users_pre
    assert not (tmp_path / "reports").exists()
