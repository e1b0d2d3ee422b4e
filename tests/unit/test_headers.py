"""List-Unsubscribe headers: values, URI checks, folding, and how mail parsers read them."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from unsubsvc.core.headers import (
    LIST_UNSUBSCRIBE,
    LIST_UNSUBSCRIBE_POST,
    MAX_LINE_LENGTH,
    ONE_CLICK,
    HeaderTooLong,
    OneClickHeaders,
    format_header,
    list_unsubscribe_headers,
    mailto_uri,
    preferences_url,
    unsubscribe_url,
)
from unsubsvc.core.keys import Keyring
from unsubsvc.core.tokens import Purpose, TokenPayload, TokenSigner
from unsubsvc.services.links import LinkMinter, RecipientLinks

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TOKEN = TokenSigner(Keyring(("header-test-key",))).sign(
    Purpose.UNSUBSCRIBE,
    TokenPayload(list_id=7, subscriber="Xy3_-AbCdEfGh012", topic_id=3, campaign_id=42),
    now=NOW,
)
BASE_URL = "https://unsub.example.com"
HTTPS_URI = f"{BASE_URL}/u/{TOKEN}"
MAILTO = f"mailto:unsubscribe@example.com?subject=unsubscribe%20{TOKEN}"


def lines_of(header: str, linesep: str = "\r\n") -> list[str]:
    """Split a formatted header into its physical lines."""
    return header.split(linesep)


def assert_well_folded(header: str, max_length: int = MAX_LINE_LENGTH) -> None:
    """Check the folding rules: short lines, folds after commas, never inside <...>."""
    lines = lines_of(header)
    assert all(len(line) <= max_length for line in lines), [len(line) for line in lines]
    assert "\r" not in "".join(lines)
    assert "\n" not in "".join(lines)
    for previous, line in zip(lines, lines[1:], strict=False):
        assert previous.endswith(","), previous
        assert line.startswith(" "), line
        assert not line.startswith("  "), line
    for line in lines:
        # every <...> opened on a line is closed on the same line
        assert line.count("<") == line.count(">"), line


# --- URIs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    ["https://unsub.example.com", "https://unsub.example.com/"],
    ids=["no-trailing-slash", "trailing-slash"],
)
def test_unsubscribe_and_preferences_urls(base_url: str) -> None:
    """The token goes under /u/ or /p/ of the base URL, with exactly one slash."""
    assert unsubscribe_url(base_url, TOKEN) == f"https://unsub.example.com/u/{TOKEN}"
    assert preferences_url(base_url, TOKEN) == f"https://unsub.example.com/p/{TOKEN}"


def test_urls_keep_a_base_path() -> None:
    """A service mounted under a path keeps that path."""
    assert unsubscribe_url("https://example.com/mail/", "t") == "https://example.com/mail/u/t"


def test_mailto_puts_token_in_subject() -> None:
    """The mailto: URI carries the token in its subject."""
    uri = mailto_uri("unsubscribe@example.com", TOKEN)
    assert uri == f"mailto:unsubscribe@example.com?subject=unsubscribe%20{TOKEN}"
    parts = urlsplit(uri)
    assert parts.scheme == "mailto"
    assert parts.path == "unsubscribe@example.com"
    assert parse_qs(parts.query) == {"subject": [f"unsubscribe {TOKEN}"]}


def test_mailto_keeps_plus_and_at_in_mailbox() -> None:
    """A sub-addressed mailbox is not percent-encoded."""
    uri = mailto_uri("unsub+news@example.com", "t")
    assert uri == "mailto:unsub+news@example.com?subject=unsubscribe%20t"


def test_mailto_escapes_unsafe_characters() -> None:
    """Characters that would break the header or the URI are percent-encoded."""
    uri = mailto_uri("un sub@example.com", "a,b<c>")
    assert not any(ch in uri for ch in " ,<>")
    assert parse_qs(urlsplit(uri).query) == {"subject": ["unsubscribe a,b<c>"]}


# --- the header pair ----------------------------------------------------------------------


def test_header_pair_for_https_uri() -> None:
    """One https URI gives exactly List-Unsubscribe and the one-click Post header, in order."""
    assert list_unsubscribe_headers(HTTPS_URI) == [
        ("List-Unsubscribe", f"<{HTTPS_URI}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    assert (LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST, ONE_CLICK) == (
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Unsubscribe=One-Click",
    )


def test_https_uri_comes_before_mailto() -> None:
    """With a mailto: beside it, the https URI is listed first."""
    headers = list_unsubscribe_headers(HTTPS_URI, MAILTO)
    assert headers == [
        ("List-Unsubscribe", f"<{HTTPS_URI}>, <{MAILTO}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]


def test_empty_mailto_is_left_out() -> None:
    """An empty mailto adds nothing."""
    assert list_unsubscribe_headers(HTTPS_URI, "") == list_unsubscribe_headers(HTTPS_URI)


def test_plain_http_is_accepted() -> None:
    """http: is allowed (development); the scheme check is about http(s) only."""
    value = dict(list_unsubscribe_headers("http://127.0.0.1:8000/u/t"))[LIST_UNSUBSCRIBE]
    assert value == "<http://127.0.0.1:8000/u/t>"


@pytest.mark.parametrize(
    "uri",
    [MAILTO, "ftp://example.com/u/t", "/u/t", "u/t", "javascript:alert(1)", ""],
    ids=["mailto-first", "ftp", "absolute-path", "relative-path", "javascript", "empty"],
)
def test_non_http_uri_is_refused(uri: str) -> None:
    """The first URI must be http(s)."""
    with pytest.raises(ValueError, match="http"):
        list_unsubscribe_headers(uri)


BAD_CHARACTERS = {
    "less-than": "<",
    "greater-than": ">",
    "comma": ",",
    "space": " ",
    "tab": "\t",
    "cr": "\r",
    "lf": "\n",
    "crlf-header-injection": "\r\nBcc: victim@example.com",
}


@pytest.mark.parametrize("bad", list(BAD_CHARACTERS.values()), ids=list(BAD_CHARACTERS))
@pytest.mark.parametrize("where", ["https", "mailto"], ids=["in-https", "in-mailto"])
def test_uri_with_unsafe_character_is_refused(bad: str, where: str) -> None:
    """URIs that would break out of <...> or the header line are refused."""
    https, mailto = HTTPS_URI, MAILTO
    if where == "https":
        https = f"{BASE_URL}/u/ab{bad}cd"
    else:
        mailto = f"mailto:unsubscribe@example.com?subject=ab{bad}cd"
    with pytest.raises(ValueError, match="unescaped"):
        list_unsubscribe_headers(https, mailto)


@pytest.mark.parametrize(
    "bad",
    ["\x0b", "\x0c", "\x00", "\x7f", "\u00a0"],
    ids=["vertical-tab", "form-feed", "nul", "del", "no-break-space"],
)
def test_uri_with_other_whitespace_or_control_is_refused(bad: str) -> None:
    """No whitespace or control character may reach the header value."""
    with pytest.raises(ValueError):
        list_unsubscribe_headers(f"{BASE_URL}/u/ab{bad}cd")


# --- folding ------------------------------------------------------------------------------


def test_short_value_is_one_line() -> None:
    """A value that fits stays on one line, exactly 'Name: value'."""
    name, value = list_unsubscribe_headers(HTTPS_URI, MAILTO)[0]
    assert format_header(name, value) == f"List-Unsubscribe: <{HTTPS_URI}>, <{MAILTO}>"


def test_two_uri_value_folds_into_two_lines_at_78() -> None:
    """At the recommended 78 characters the two URIs go on two lines, folded after the comma."""
    name, value = list_unsubscribe_headers(HTTPS_URI, MAILTO)[0]
    folded = format_header(name, value, max_line_length=78)
    assert lines_of(folded) == [f"List-Unsubscribe: <{HTTPS_URI}>,", f" <{MAILTO}>"]
    # the https URI alone is longer than 78: it is left whole, never broken
    assert len(lines_of(folded)[0]) > 78
    assert_well_folded(folded)


def test_fold_uses_given_linesep() -> None:
    """The line separator can be a bare LF (for local delivery agents)."""
    folded = format_header("X", "<a>, <b>", max_line_length=8, linesep="\n")
    assert folded == "X: <a>,\n <b>"


def test_many_items_fold_greedily() -> None:
    """Items share a line while they fit and move to the next line when they do not."""
    value = ", ".join(f"<https://example.com/{i:02d}>" for i in range(5))
    folded = format_header("List-Unsubscribe", value, max_line_length=78)
    assert lines_of(folded) == [
        "List-Unsubscribe: <https://example.com/00>, <https://example.com/01>,",
        " <https://example.com/02>, <https://example.com/03>, <https://example.com/04>",
    ]
    assert_well_folded(folded, max_length=78)


def test_item_filling_the_hard_limit_exactly_is_accepted() -> None:
    """A line of exactly 998 characters is allowed."""
    prefix = "List-Unsubscribe: <https://example.com/"
    item_tail = "a" * (MAX_LINE_LENGTH - len(prefix) - 1) + ">"
    header = format_header("List-Unsubscribe", "<https://example.com/" + item_tail)
    assert len(header) == MAX_LINE_LENGTH


def test_item_longer_than_hard_limit_is_refused() -> None:
    """An item that cannot fit within 998 characters even alone raises ValueError."""
    long_uri = "<https://example.com/" + "a" * MAX_LINE_LENGTH + ">"
    with pytest.raises(ValueError, match="998"):
        format_header("List-Unsubscribe", long_uri)
    with pytest.raises(ValueError, match="998"):
        format_header("List-Unsubscribe", f"<{HTTPS_URI}>, {long_uri}")


def test_folded_line_with_comma_respects_max_line_length() -> None:
    """When every item fits on a line of its own, no line exceeds max_line_length."""
    first = "a" * (78 - len("X: ") - len(", bbbbbbbbbb"))  # "X: a…a, bbbbbbbbbb" is 78 long
    folded = format_header("X", f"{first}, bbbbbbbbbb, c", max_line_length=78)
    assert all(len(line) <= 78 for line in lines_of(folded)), lines_of(folded)


def test_foldable_value_at_hard_limit_is_not_refused() -> None:
    """A value whose items each fit must be folded, not refused."""
    first = "a" * (MAX_LINE_LENGTH - len("X: ,"))  # "X: a…a," is exactly 998 long
    folded = format_header("X", f"{first}, b")
    assert folded.split("\r\n") == [f"X: {first},", " b"]
    assert max(len(line) for line in folded.split("\r\n")) == MAX_LINE_LENGTH


def test_comma_inside_angle_brackets_is_not_a_fold_point() -> None:
    """format_header neither folds inside <...> nor rewrites the URI in it."""
    value = "<https://example.com/u/a,b>, <mailto:u@example.com>"
    folded = format_header("List-Unsubscribe", value, max_line_length=30)
    assert_well_folded(folded, max_length=MAX_LINE_LENGTH)
    assert "".join(lines_of(folded)) == f"List-Unsubscribe: {value}"


URI_ITEM = st.builds(
    lambda scheme, path: f"<{scheme}://example.com/{path}>",
    st.sampled_from(["https", "http"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~/", min_size=0, max_size=200),
)


@hypothesis_settings(database=None, deadline=None, max_examples=200)
@given(items=st.lists(URI_ITEM, min_size=1, max_size=12), max_line=st.sampled_from([78, 120]))
def test_folding_property_at_short_limits(items: list[str], max_line: int) -> None:
    """At short limits: no line over 998, folds only after commas, unfolding restores the value."""
    value = ", ".join(items)
    folded = format_header("List-Unsubscribe", value, max_line_length=max_line)
    assert_well_folded(folded)
    # unfolding (removing CRLF) gives back exactly the unfolded header
    assert folded.replace("\r\n", "") == f"List-Unsubscribe: {value}"
    assert len(lines_of(folded)) <= len(items)


@hypothesis_settings(database=None, deadline=None, max_examples=200)
@given(items=st.lists(URI_ITEM, min_size=1, max_size=40))
def test_folding_property_at_hard_limit(items: list[str]) -> None:
    """At the default limit the output never has a line over 998 characters."""
    value = ", ".join(items)
    try:
        folded = format_header("List-Unsubscribe", value)
    except ValueError:
        return  # refusing is allowed; emitting an over-long line is not
    assert_well_folded(folded)
    assert folded.replace("\r\n", "") == f"List-Unsubscribe: {value}"


# --- how a mail parser reads the bytes ----------------------------------------------------


@pytest.mark.parametrize("max_line", [MAX_LINE_LENGTH, 78], ids=["unfolded", "folded-at-78"])
def test_parsed_message_keeps_uri_verbatim(max_line: int) -> None:
    """Written as bytes, the header parses back with both URIs verbatim, no encoded word."""
    header_lines = "\r\n".join(
        format_header(name, value, max_line_length=max_line)
        for name, value in list_unsubscribe_headers(HTTPS_URI, MAILTO)
    )
    raw = (
        "From: News <news@example.com>\r\nTo: ann@example.org\r\nSubject: Hello\r\n"
        + header_lines
        + "\r\n\r\nbody\r\n"
    ).encode("ascii")
    assert len(f"<{HTTPS_URI}>") > 76  # long enough to trigger the email package's rewrite

    message = email.message_from_bytes(raw, policy=email.policy.default)
    value = str(message[LIST_UNSUBSCRIBE])
    assert "=?" not in value
    assert "=?utf-8?" not in raw.decode("ascii").lower()
    assert value == f"<{HTTPS_URI}>, <{MAILTO}>"
    assert str(message[LIST_UNSUBSCRIBE_POST]) == ONE_CLICK
    assert len(message.get_all(LIST_UNSUBSCRIBE) or []) == 1
    assert message.get_content().strip() == "body"


# --- the fast paths give what the plain rules give ----------------------------------------


def reference_mailto_uri(mailbox: str, token: str) -> str:
    """mailto_uri as first written: quote everything."""
    return f"mailto:{quote(mailbox, safe='@+')}?subject={quote('unsubscribe ' + token)}"


def reference_list_unsubscribe_headers(
    https_uri: str, mailto: str | None = None
) -> list[tuple[str, str]]:
    """list_unsubscribe_headers as first written: urlsplit and a check per character."""
    scheme = urlsplit(https_uri).scheme
    if scheme not in {"https", "http"}:
        raise ValueError(f"the unsubscribe URI must be http(s), not {scheme or 'relative'}")
    uris = [https_uri] + ([mailto] if mailto else [])
    for uri in uris:
        if not all(33 <= ord(ch) <= 126 and ch not in "<>," for ch in uri):
            raise ValueError(f"URI cannot go into List-Unsubscribe unescaped: {uri!r}")
    return [
        (LIST_UNSUBSCRIBE, ", ".join(f"<{uri}>" for uri in uris)),
        (LIST_UNSUBSCRIBE_POST, ONE_CLICK),
    ]


def reference_format_header(name: str, value: str, max_line_length: int = MAX_LINE_LENGTH) -> str:
    """format_header as first written: split, then fold greedily."""
    items = [item.strip() for item in re.split(r",(?![^<]*>)", value)]
    lines: list[str] = []
    current = f"{name}: {items[0]}"
    for index, item in enumerate(items[1:], start=2):
        candidate = f"{current}, {item}"
        if len(candidate) + (1 if index < len(items) else 0) <= max_line_length:
            current = candidate
        else:
            lines.append(current + ",")
            current = f" {item}"
    lines.append(current)
    if any(len(line) > MAX_LINE_LENGTH for line in lines):
        raise ValueError(f"{name} has an item longer than {MAX_LINE_LENGTH} characters")
    return "\r\n".join(lines)


def outcome(func: object, *args: object) -> object:
    """Return what ``func(*args)`` returns, or its ValueError's message."""
    assert callable(func)
    try:
        return func(*args)
    except ValueError as exc:
        return ("ValueError", str(exc))


@hypothesis_settings(database=None, deadline=None, max_examples=300)
@given(mailbox=st.text(max_size=30), token=st.text(max_size=30))
def test_mailto_uri_matches_quoting_everything(mailbox: str, token: str) -> None:
    """Skipping quote() for a plain token gives the same URI as quoting it."""
    assert outcome(mailto_uri, mailbox, token) == outcome(reference_mailto_uri, mailbox, token)


URI_TEXT = st.text(alphabet=st.sampled_from("hHtTpPsS:/[]<>,. \t\r\nabc123%é?=@"), max_size=30)


@hypothesis_settings(database=None, deadline=None, max_examples=500)
@given(https_uri=URI_TEXT | st.builds("https://{}".format, URI_TEXT), mailto=st.none() | URI_TEXT)
def test_list_unsubscribe_headers_matches_plain_checks(https_uri: str, mailto: str | None) -> None:
    """The regex and scheme fast path accept and refuse exactly what urlsplit and ord() did."""
    assert outcome(list_unsubscribe_headers, https_uri, mailto) == outcome(
        reference_list_unsubscribe_headers, https_uri, mailto
    )


@pytest.mark.parametrize(
    "uri",
    ["HTTPS://unsub.example.com/u/t", "Http://unsub.example.com/u/t", "https://[::1]/u/t"],
    ids=["upper-case-scheme", "mixed-case-scheme", "ipv6-host"],
)
def test_scheme_is_case_insensitive_and_brackets_allowed(uri: str) -> None:
    """RFC 3986: the scheme is case-insensitive; a bracketed IPv6 host is a host."""
    assert list_unsubscribe_headers(uri)[0] == (LIST_UNSUBSCRIBE, f"<{uri}>")


@pytest.mark.parametrize(
    "uri",
    ["https://[::1/u/t", "https://::1]/u/t", "https://[not-an-ip]/u/t"],
    ids=["unclosed-bracket", "unopened-bracket", "bracketed-name"],
)
def test_malformed_bracketed_host_is_refused(uri: str) -> None:
    """A URI urlsplit cannot read is refused, as before the fast path."""
    with pytest.raises(ValueError):
        list_unsubscribe_headers(uri)


FOLD_ITEM = st.text(alphabet=st.sampled_from("ab <>,"), max_size=12)


@hypothesis_settings(database=None, deadline=None, max_examples=500)
@given(
    name=st.sampled_from(["X", LIST_UNSUBSCRIBE]),
    value=st.lists(FOLD_ITEM, min_size=1, max_size=6).map(", ".join)
    | st.text(alphabet=st.sampled_from("ab <>, "), max_size=40),
    max_line=st.sampled_from([8, 20, 78, MAX_LINE_LENGTH, 2000]),
)
def test_format_header_matches_plain_folding(name: str, value: str, max_line: int) -> None:
    """The one-line fast path gives what the folding loop gives, odd spacing included."""
    assert outcome(lambda: format_header(name, value, max_line_length=max_line)) == outcome(
        reference_format_header, name, value, max_line
    )


def test_format_header_normalises_spacing_on_one_line() -> None:
    """A value that fits is still written with one space after each comma."""
    assert format_header("X", " <a> ,<b>,   <c> ") == "X: <a>, <b>, <c>"
    assert format_header("X", "  <a>  ") == "X: <a>"


def test_format_header_refuses_a_long_line_even_under_a_larger_limit() -> None:
    """max_line_length above 998 does not lift the RFC 5322 hard limit."""
    with pytest.raises(ValueError, match="998"):
        format_header("X", "a" * 1000, max_line_length=2000)


# --- OneClickHeaders ----------------------------------------------------------------------

ONE_CLICK_SETUPS = {
    "https-with-mailto": ("https://unsub.example.com", "unsubscribe@example.com"),
    "trailing-slash": ("https://unsub.example.com/", "unsubscribe@example.com"),
    "base-path-no-mailto": ("https://example.com/mail", None),
    "plus-mailbox": ("http://127.0.0.1:8000", "unsub+news@example.com"),
}


@pytest.mark.parametrize("setup", list(ONE_CLICK_SETUPS.values()), ids=list(ONE_CLICK_SETUPS))
@pytest.mark.parametrize("token", [TOKEN, "t", "a.b-c_D"], ids=["real-token", "one-char", "mixed"])
def test_one_click_headers_match_list_unsubscribe_headers(
    setup: tuple[str, str | None], token: str
) -> None:
    """OneClickHeaders.headers(token) is list_unsubscribe_headers on the composed URIs."""
    base_url, mailbox = setup
    expected = list_unsubscribe_headers(
        unsubscribe_url(base_url, token), mailto_uri(mailbox, token) if mailbox else None
    )
    assert list(OneClickHeaders(base_url, mailbox).headers(token)) == expected


@pytest.mark.parametrize(
    "token",
    ["", "a b", "a,b", "a>b", "a<b", "a\r\nBcc: x", "a/b", "a%20b", "a~b", "é", "a+b", "a=b"],
    ids=[
        "empty",
        "space",
        "comma",
        "greater-than",
        "less-than",
        "crlf",
        "slash",
        "percent",
        "tilde",
        "non-ascii",
        "plus",
        "equals",
    ],
)
def test_one_click_headers_refuse_tokens_outside_the_token_alphabet(token: str) -> None:
    """Only base64url characters and dots may follow the checked prefix."""
    with pytest.raises(ValueError, match="token"):
        OneClickHeaders("https://unsub.example.com", "u@example.com").headers(token)


@pytest.mark.parametrize(
    ("base_url", "mailbox"),
    [
        ("/relative", None),
        ("ftp://example.com", None),
        ("https://exa mple.com", None),
        ("https://example.com/<x>", None),
        ("https://example.com", "u@exa\r\nmple.com"),
    ],
    ids=["relative", "ftp", "space-in-host", "angle-brackets", "crlf-in-mailbox"],
)
def test_one_click_headers_check_the_prefixes_once(base_url: str, mailbox: str | None) -> None:
    """A base URL or mailbox that cannot go into the header is refused up front."""
    if mailbox is None:
        with pytest.raises(ValueError):
            OneClickHeaders(base_url, mailbox)
    else:  # quote() escapes the mailbox, so it can go in: it is never sent raw
        (_, value), _ = OneClickHeaders(base_url, mailbox).headers("t")
        assert "\r" not in value
        assert "\n" not in value


# --- LinkMinter ---------------------------------------------------------------------------

MINTER_SIGNER = TokenSigner(Keyring(("minter-key",)))


@pytest.mark.parametrize(
    "payload",
    [
        TokenPayload(7, "Xy3_-AbCdEfGh012", topic_id=3, campaign_id=42),
        TokenPayload(7, "Xy3_-AbCdEfGh012"),
    ],
    ids=["topic-and-campaign", "list-only"],
)
@pytest.mark.parametrize("mailbox", ["unsubscribe@example.com", None], ids=["mailto", "no-mailto"])
def test_link_minter_matches_the_plain_functions(
    payload: TokenPayload, mailbox: str | None
) -> None:
    """links() gives what signing twice and the header functions give."""
    minter = LinkMinter(signer=MINTER_SIGNER, base_url=BASE_URL + "/", mailto=mailbox)
    token = MINTER_SIGNER.sign(Purpose.UNSUBSCRIBE, payload, now=NOW)
    prefs = MINTER_SIGNER.sign(
        Purpose.PREFERENCES,
        TokenPayload(payload.list_id, payload.subscriber, campaign_id=payload.campaign_id),
        now=NOW,
    )
    https = unsubscribe_url(BASE_URL, token)
    expected = RecipientLinks(
        token=token,
        unsubscribe_url=https,
        preferences_url=preferences_url(BASE_URL, prefs),
        headers=tuple(
            list_unsubscribe_headers(https, mailto_uri(mailbox, token) if mailbox else None)
        ),
    )
    links = minter.links(payload, now=NOW)
    assert links == expected
    assert links.header_lines() == "\r\n".join(
        reference_format_header(name, value) for name, value in expected.headers
    )


def test_link_minter_with_a_bad_base_url_fails_when_minting_as_before() -> None:
    """A minter can be built with a base URL the header refuses; minting then raises."""
    minter = LinkMinter(signer=MINTER_SIGNER, base_url="https://exa mple.com")
    with pytest.raises(ValueError, match="unescaped"):
        minter.links(TokenPayload(7, "Xy3_-AbCdEfGh012"), now=NOW)


def test_link_minter_compares_by_its_fields() -> None:
    """The precomputed parts take no part in equality or repr."""
    a = LinkMinter(signer=MINTER_SIGNER, base_url=BASE_URL)
    b = LinkMinter(signer=MINTER_SIGNER, base_url=BASE_URL)
    assert a == b
    assert "_headers" not in repr(a)


@pytest.mark.parametrize("length", [981, 984, 996])
def test_an_item_too_long_to_follow_the_name_starts_the_next_line(length: int) -> None:
    """RFC 5322 §3.2.2 allows folding white space before the value: no line passes 998."""
    uri = "<https://u.example/" + "a" * (length - 20) + ">"
    assert len(uri) == length
    folded = format_header("List-Unsubscribe", f"{uri}, <{MAILTO}>", linesep="\n")
    lines = folded.split("\n")
    assert all(len(line) <= 998 for line in lines), [len(line) for line in lines]
    assert lines[0] == "List-Unsubscribe:"
    assert folded.replace("\n", "") == f"List-Unsubscribe: {uri}, <{MAILTO}>"


def test_the_longest_item_a_line_can_hold() -> None:
    uri = "<https://u.example/" + "a" * (997 - 20) + ">"
    assert format_header("List-Unsubscribe", uri, linesep="\n") == f"List-Unsubscribe:\n {uri}"
    with pytest.raises(HeaderTooLong):  # not last: its comma makes 999
        format_header("List-Unsubscribe", f"{uri}, <{MAILTO}>")


@pytest.mark.parametrize("length", [998, 2000])
def test_an_item_no_line_can_hold_is_refused_in_words(length: int) -> None:
    uri = "<https://u.example/" + "a" * (length - 20) + ">"
    with pytest.raises(HeaderTooLong, match="RFC 5322 §2.1.1 allows 998"):
        format_header("List-Unsubscribe", uri)
