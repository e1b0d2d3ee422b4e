"""The contract's commands through Flask's CLI runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from tests.helpers import CommandRunner, count_events, events, path_of, runner_for

ONE_CLICK = "List-Unsubscribe=One-Click"


def create_news(runner: CommandRunner) -> None:
    result = runner.invoke(
        args=[
            "list",
            "create",
            "news",
            "--topic",
            "product",
            "--topic",
            "events",
            "--frequency",
            "weekly",
            "--frequency",
            "monthly",
        ]
    )
    assert result.exit_code == 0, result.output


def test_list_create_twice_fails_with_exit_1(runner: CommandRunner) -> None:
    create_news(runner)
    again = runner.invoke(args=["list", "create", "news"])
    assert again.exit_code == 1
    assert "already exists" in again.output


@pytest.mark.parametrize(
    "args",
    [["list", "create", "Bad Name"], ["list", "create", "ok", "--topic", "x y"]],
    ids=["bad-list-name", "bad-topic"],
)
def test_list_create_refuses_bad_slugs(runner: CommandRunner, args: list[str]) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert "lowercase" in result.output


def test_headers_prints_exactly_the_two_lines(runner: CommandRunner) -> None:
    create_news(runner)
    result = runner.invoke(
        args=["headers", "--list", "news", "--email", "Ann@Example.com", "--campaign", "c1"]
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("List-Unsubscribe: <https://unsub.example.com/u/")
    assert lines[0].endswith(">")
    assert "mailto:" not in lines[0]
    assert lines[1] == "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    token = lines[0].split("/u/")[1].rstrip(">")
    # No part of the address: the token's random public id may hold any three letters,
    # so check for what an address would bring in, the "@" and the domain.
    assert "@" not in token and "%40" not in token
    assert "example" not in token.lower()


def test_headers_adds_mailto_when_configured(make_app: Callable[..., Flask]) -> None:
    runner = runner_for(make_app(mailto="unsubscribe@mail.example.com"))
    create_news(runner)
    result = runner.invoke(args=["headers", "--list", "news", "--email", "ann@example.com"])
    header = result.stdout.splitlines()[0]
    https_at = header.index("<https://")
    mailto_at = header.index("<mailto:unsubscribe@mail.example.com?subject=unsubscribe%20")
    assert https_at < mailto_at


def headers_with_base_url_of(make_app: Callable[..., Flask], length: int) -> Any:
    """Run ``headers`` with a base URL long enough to make the https item ``length`` long."""
    probe = runner_for(make_app())
    create_news(probe)
    line = probe.invoke(args=["headers", "--list", "news", "--email", "ann@example.com"])
    item = line.stdout.splitlines()[0].removeprefix("List-Unsubscribe: ")
    base = "https://unsub.example.com/" + "p" * (length - len(item) - 1)
    runner = runner_for(make_app(base_url=base, mailto="unsubscribe@mail.example.com"))
    return runner.invoke(args=["headers", "--list", "news", "--email", "ann@example.com"])


def test_headers_fold_an_item_too_long_to_follow_the_name(make_app: Callable[..., Flask]) -> None:
    result = headers_with_base_url_of(make_app, 984)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "List-Unsubscribe:"
    assert len(lines[1]) == 1 + 984 + 1  # the leading space, the item, a comma
    assert lines[1].startswith(" <https://unsub.example.com/ppp")
    assert lines[2].startswith(" <mailto:") and len(lines) == 4
    assert all(len(line) <= 998 for line in lines)


def test_headers_refuse_an_item_no_line_can_hold(make_app: Callable[..., Flask]) -> None:
    result = headers_with_base_url_of(make_app, 1200)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: List-Unsubscribe would need a line of")
    assert "RFC 5322 §2.1.1 allows 998" in result.stderr


def test_headers_for_unknown_list_or_topic_fail(runner: CommandRunner) -> None:
    create_news(runner)
    unknown_list = runner.invoke(args=["headers", "--list", "nope", "--email", "a@example.com"])
    assert unknown_list.exit_code == 1
    assert "unknown list" in unknown_list.output
    unknown_topic = runner.invoke(
        args=["headers", "--list", "news", "--email", "a@example.com", "--topic", "sports"]
    )
    assert unknown_topic.exit_code == 1
    assert "no topic" in unknown_topic.output
    bad_address = runner.invoke(args=["headers", "--list", "news", "--email", "not-an-address"])
    assert bad_address.exit_code == 1


def test_status_of_an_address_never_seen_is_subscribed_with_defaults(
    runner: CommandRunner,
) -> None:
    create_news(runner)
    result = runner.invoke(args=["status", "--list", "news", "--email", "new@example.com"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "list": "news",
        "email": "new@example.com",
        "subscribed": True,
        "topics": {"product": True, "events": True},
        "frequency": "weekly",
        "paused_until": None,
    }


def test_status_of_unknown_list_exits_1(runner: CommandRunner) -> None:
    result = runner.invoke(args=["status", "--list", "nope", "--email", "a@example.com"])
    assert result.exit_code == 1


def test_headers_then_one_click_then_status(app: Flask, runner: CommandRunner) -> None:
    create_news(runner)
    out = runner.invoke(
        args=["headers", "--list", "news", "--email", "Ann@Example.com", "--campaign", "c1"]
    ).stdout
    uri = out.splitlines()[0].removeprefix("List-Unsubscribe: <").removesuffix(">")

    response = app.test_client(use_cookies=False).post(
        path_of(uri), data=ONE_CLICK, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200

    # The address matches case-insensitively on the whole address.
    state = json.loads(
        runner.invoke(args=["status", "--list", "news", "--email", "ann@EXAMPLE.com"]).stdout
    )
    assert state["subscribed"] is False
    assert state["email"] == "Ann@Example.com"
    assert count_events(app) == 1
    assert [(e["channel"], e["campaign"]) for e in events(app)] == [("one_click", "c1")]


def test_same_address_in_other_case_is_the_same_subscriber(runner: CommandRunner) -> None:
    create_news(runner)
    first = runner.invoke(args=["headers", "--list", "news", "--email", "Ann@Example.com"])
    second = runner.invoke(args=["headers", "--list", "news", "--email", "ann@example.COM"])

    def public_id(out: str) -> str:
        return out.split("/u/")[1].split(".")[2]

    assert public_id(first.stdout) == public_id(second.stdout)


def test_link_prints_the_preferences_uri(runner: CommandRunner) -> None:
    create_news(runner)
    result = runner.invoke(args=["link", "--list", "news", "--email", "ann@example.com"])
    assert result.exit_code == 0
    assert result.stdout.startswith("https://unsub.example.com/p/")
    with_prefs = runner.invoke(
        args=["headers", "--list", "news", "--email", "ann@example.com", "--preferences-url"]
    )
    assert with_prefs.stdout.splitlines()[2].startswith("Preferences-URL: https://")


def test_demo_sets_up_a_list_and_prints_a_header_to_try(make_app: Callable[..., Flask]) -> None:
    runner = runner_for(make_app(tables=False))
    result = runner.invoke(args=["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "List-Unsubscribe: <https://unsub.example.com/u/" in result.stdout
    assert "curl -i -X POST -d 'List-Unsubscribe=One-Click'" in result.stdout
    again = runner.invoke(args=["demo", "--no-serve"])
    assert again.exit_code == 0, again.output
    shown = runner.invoke(args=["list", "show", "newsletter"])
    assert '"topics": ["product", "events"]' in shown.stdout
