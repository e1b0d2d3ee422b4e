"""Check a finished message for what RFC 8058 one-click unsubscribe needs.

Each rule is a named check that passes, fails, is skipped (it could not be
judged, e.g. no DNS was offered) or warns (allowed, but a provider will not
like it). The message is read as bytes; nothing is re-serialised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import dkim

from unsubsvc.core.dkim_signing import (
    DKIM_SIGNATURE,
    OVERSIGNED_HEADERS,
    DnsFunc,
    split_message,
    unfold,
)
from unsubsvc.core.headers import LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST, ONE_CLICK

#: RFC 2047 §2: ``=?charset?encoding?encoded-text?=``.
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_BRACKETED = re.compile(r"<([^>]*)>")
#: RFC 2369 §2 allows comments beside the bracketed URIs.
_COMMENT = re.compile(r"\([^)]*\)")


class Status(StrEnum):
    """How one check came out."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    WARNING = "warning"


@dataclass(frozen=True)
class Check:
    """One named rule and a sentence saying how the message fared."""

    name: str
    status: Status
    message: str


@dataclass(frozen=True)
class Report:
    """Every check run on one message, in order."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Return True when no check failed (skipped and warnings do not fail)."""
        return not self.failed

    @property
    def failed(self) -> tuple[str, ...]:
        """Return the names of the failed checks."""
        return tuple(c.name for c in self.checks if c.status is Status.FAILED)

    def __getitem__(self, name: str) -> Check:
        """Return the check called ``name``."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-able data."""
        return {
            "ok": self.ok,
            "failed": list(self.failed),
            "checks": [
                {"name": c.name, "status": str(c.status), "message": c.message} for c in self.checks
            ],
        }

    def render(self) -> str:
        """Return the report as lines a person reads, one per check, then a verdict."""
        labels = {
            Status.PASSED: "PASS",
            Status.FAILED: "FAIL",
            Status.SKIPPED: "SKIP",
            Status.WARNING: "WARN",
        }
        width = max((len(c.name) for c in self.checks), default=0)
        lines = [f"{labels[c.status]}  {c.name:<{width}}  {c.message}" for c in self.checks]
        verdict = "OK" if self.ok else f"FAILED: {', '.join(self.failed)}"
        return "\n".join([*lines, verdict])


@dataclass
class _Signature:
    number: int
    tags: dict[str, str]
    signed: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        tags = self.tags
        return (
            f"signature {self.number} (d={tags.get('d', '?')}, s={tags.get('s', '?')}, "
            f"a={tags.get('a', '?')})"
        )


def check_message(
    message: bytes, dnsfunc: DnsFunc | None = None, *, use_dns: bool = False
) -> Report:
    """Run every check on ``message``; verify signatures with ``dnsfunc``, or DNS if ``use_dns``."""
    if message.startswith(b"From "):
        # A message saved from an mbox keeps its envelope line; it is not a header.
        message = message.partition(b"\n")[2]
    try:
        fields, _ = split_message(message)
    except ValueError as exc:
        return Report((Check("message-format", Status.FAILED, f"{exc}."),))
    values: dict[str, list[str]] = {}
    for name, raw in fields:
        values.setdefault(name.lower(), []).append(unfold(raw).decode("utf-8", "replace").strip())
    unsubscribe = values.get(LIST_UNSUBSCRIBE.lower(), [])
    # The exact bytes after the colon: RFC 8058 §3.1 fixes the whole field, spaces included.
    post = [
        unfold(raw).decode("utf-8", "replace")
        for name, raw in fields
        if name.lower() == LIST_UNSUBSCRIBE_POST.lower()
    ]
    signatures = [
        _parse_signature(number, value)
        for number, value in enumerate(values.get(DKIM_SIGNATURE.lower(), []), start=1)
    ]
    counts = {name: len(values.get(name, [])) for name in OVERSIGNED_HEADERS}
    lookup = dnsfunc if dnsfunc is not None else (dkim.get_txt if use_dns else None)
    checks = [
        Check("message-format", Status.PASSED, "The header section parses as RFC 5322 fields."),
        _check_count(LIST_UNSUBSCRIBE, unsubscribe),
        _check_uris(unsubscribe),
        _check_not_encoded(unsubscribe),
        _check_post(post),
        _check_coverage(signatures),
        _check_oversigned(signatures, counts),
        _check_verifies(message, signatures, lookup),
        _check_rsa(signatures),
        _check_aligned(signatures, values.get("from", [])),
        _check_body_link(message, unsubscribe),
    ]
    return Report(tuple(checks))


def _check_count(name: str, found: list[str]) -> Check:
    # RFC 8058 §3.1: exactly one List-Unsubscribe; a second is a forgery risk.
    check = name.lower()
    if len(found) == 1:
        return Check(check, Status.PASSED, f"Exactly one {name} header.")
    if not found:
        return Check(check, Status.FAILED, f"No {name} header (RFC 8058 §3.1 needs one).")
    return Check(
        check,
        Status.FAILED,
        f"{len(found)} {name} headers; RFC 8058 §3.1 allows exactly one.",
    )


def _check_uris(found: list[str]) -> Check:
    name = "list-unsubscribe-uri"
    if len(found) != 1:
        return Check(name, Status.SKIPPED, "Needs exactly one List-Unsubscribe header.")
    value = found[0]
    uris = [uri.strip() for uri in _BRACKETED.findall(value)]
    outside = _COMMENT.sub("", _BRACKETED.sub("", value)).replace(",", "").strip()
    problems: list[str] = []
    if outside:
        problems.append(f"text outside <...>: {outside[:40]!r} (RFC 2369 §2)")
    https: list[str] = []
    for uri in uris:
        scheme = uri.partition(":")[0].lower() if ":" in uri else ""
        if not uri.isascii() or any(ch.isspace() for ch in uri):
            problems.append(f"<{_short(uri)}> holds spaces or non-ASCII (folded inside <...>?)")
        elif scheme == "https":
            if not urlsplit(uri).netloc:
                problems.append(f"<{_short(uri)}> has no host")
            https.append(uri)
        elif scheme == "http":
            problems.append(
                f"<{_short(uri)}> is http:, RFC 8058 §3.1 needs https: "
                "(set UNSUBSVC_BASE_URL to an https:// address for real mail)"
            )
        elif scheme != "mailto":
            problems.append(f"<{_short(uri)}> is neither https: nor mailto:")
    if len(https) != 1:
        problems.append(
            f"{len(https)} https URIs in <...>; RFC 8058 §3.1 needs exactly one"
            if https or uris
            else "no https URI in <...>; RFC 8058 §3.1 needs exactly one"
        )
    if problems:
        return Check(name, Status.FAILED, _sentence("; ".join(problems)))
    mailto = len(uris) - 1
    extra = f" and {mailto} mailto: URI" + ("s" if mailto > 1 else "") if mailto else ""
    return Check(name, Status.PASSED, f"One https URI ({_short(https[0])}){extra}.")


def _check_not_encoded(found: list[str]) -> Check:
    name = "list-unsubscribe-not-encoded"
    if not found:
        return Check(name, Status.SKIPPED, "No List-Unsubscribe header.")
    if any(_ENCODED_WORD.search(value) for value in found):
        # Python's email package does this to a long header; clients then ignore it.
        return Check(
            name,
            Status.FAILED,
            "List-Unsubscribe is an RFC 2047 encoded word; mail clients will not read a URI in it.",
        )
    return Check(name, Status.PASSED, "List-Unsubscribe is plain ASCII, not an encoded word.")


def _check_post(found: list[str]) -> Check:
    # RFC 8058 §3.1: exactly one List-Unsubscribe-Post carrying exactly this value.
    name = "list-unsubscribe-post"
    if not found:
        return Check(name, Status.FAILED, f"No List-Unsubscribe-Post header (needs {ONE_CLICK}).")
    if len(found) > 1:
        return Check(
            name, Status.FAILED, f"{len(found)} List-Unsubscribe-Post headers; exactly one allowed."
        )
    if found[0] != " " + ONE_CLICK:
        value = found[0].strip()
        why = (
            f"is {value!r}, not {ONE_CLICK!r}"
            if value != ONE_CLICK
            else "has extra white space: RFC 8058 §3.1 gives the field exactly as "
            f"'List-Unsubscribe-Post: {ONE_CLICK}' (one space after the colon, none after)"
        )
        return Check(name, Status.FAILED, f"List-Unsubscribe-Post {why}.")
    return Check(name, Status.PASSED, f"Exactly one List-Unsubscribe-Post: {ONE_CLICK}.")


def _check_coverage(signatures: list[_Signature]) -> Check:
    # RFC 8058 §4: a DKIM signature must cover both list headers (and From, RFC 6376 §5.4).
    name = "dkim-covers-list-headers"
    if not signatures:
        return Check(name, Status.FAILED, "No DKIM-Signature header.")
    needed = ("from", LIST_UNSUBSCRIBE.lower(), LIST_UNSUBSCRIBE_POST.lower())
    for signature in signatures:
        if all(header in signature.signed for header in needed):
            return Check(
                name,
                Status.PASSED,
                f"{_sentence(signature.label, end='')} covers From, List-Unsubscribe and "
                "List-Unsubscribe-Post.",
            )
    missing = sorted({h for s in signatures for h in needed if h not in s.signed})
    return Check(
        name,
        Status.FAILED,
        f"No DKIM-Signature's h= covers all of From, List-Unsubscribe and "
        f"List-Unsubscribe-Post (missing: {', '.join(missing)}).",
    )


def _check_oversigned(signatures: list[_Signature], counts: dict[str, int]) -> Check:
    # RFC 6376 §8.15: a field listed once more than it occurs cannot be added unnoticed.
    name = "dkim-oversigned"
    if not signatures:
        return Check(name, Status.SKIPPED, "No DKIM-Signature header.")
    best: list[str] = list(OVERSIGNED_HEADERS)
    for signature in signatures:
        short = [h for h in OVERSIGNED_HEADERS if signature.signed.count(h) <= counts[h]]
        if len(short) < len(best):
            best = short
    if not best:
        return Check(
            name,
            Status.PASSED,
            "From, List-Unsubscribe and List-Unsubscribe-Post are oversigned: "
            "an added copy breaks the signature.",
        )
    return Check(
        name,
        Status.WARNING,
        f"Not oversigned: {', '.join(best)}; a copy added in transit would still verify.",
    )


def _check_verifies(message: bytes, signatures: list[_Signature], dnsfunc: DnsFunc | None) -> Check:
    """Pass as receivers do: one valid rsa-sha256 signature is enough (RFC 6376 §6.1: a
    verifier may pass on any one signature; Gmail checks rsa-sha256 only), and the others
    are reported as information. rsa-sha1 is never accepted (RFC 8301 §3.1). What the
    signature must cover and align with are the dkim-covers-list-headers and dkim-aligned
    checks.
    """
    name = "dkim-verifies"
    if not signatures:
        return Check(name, Status.SKIPPED, "No DKIM-Signature to verify.")
    if all(_algorithm(s) == "rsa-sha1" for s in signatures):
        return Check(
            name,
            Status.FAILED,
            "Only rsa-sha1 signatures: verifiers must not accept rsa-sha1 (RFC 8301 §3.1); "
            "sign with rsa-sha256.",
        )
    if dnsfunc is None:
        return Check(name, Status.SKIPPED, "Not verified: no DNS records given and DNS not used.")
    missing: list[str] = []

    def recording(qname: bytes | str, timeout: float = 5) -> bytes | None:
        found = dnsfunc(qname, timeout=timeout)
        if not found:
            missing.append(qname.decode("ascii") if isinstance(qname, bytes) else qname)
        return found

    results: list[str] = []
    deciding: list[_Signature] = []
    verified: list[_Signature] = []
    for index, signature in enumerate(signatures):
        if _algorithm(signature) == "rsa-sha1":
            results.append(f"{signature.label} ignored: rsa-sha1 is not accepted (RFC 8301)")
            continue
        missing.clear()
        reason = _verify_one(message, index, recording)
        if reason is not None:
            if missing:
                reason = f"no TXT record at {missing[0].rstrip('.')}"
            results.append(f"{signature.label} does not verify: {reason}")
            continue
        verified.append(signature)
        if _algorithm(signature) == "rsa-sha256":
            deciding.append(signature)
        results.append(f"{signature.label} verifies")
    has_rsa = any(_algorithm(s) == "rsa-sha256" for s in signatures)
    if deciding:
        status = Status.PASSED
        if len(verified) < len(signatures):
            results.append("receivers pass the message on the valid rsa-sha256 signature")
    elif verified and not has_rsa:
        status = Status.PASSED  # no RSA signature at all: dkim-rsa says what Gmail makes of it
    else:
        status = Status.FAILED
        results.append("no rsa-sha256 signature verifies" if has_rsa else "none verifies")
    return Check(name, status, _sentence("; ".join(results)))


def _algorithm(signature: _Signature) -> str:
    return signature.tags.get("a", "").lower()


def _verify_one(message: bytes, index: int, dnsfunc: Callable[..., bytes | None]) -> str | None:
    """Return None when signature ``index`` verifies, else why not."""
    verifier = dkim.DKIM(message)
    try:
        if verifier.verify(idx=index, dnsfunc=dnsfunc):
            return None
    except dkim.DKIMException as exc:
        return _plain(str(exc))
    except Exception as exc:  # a checker reports a malformed signature, it does not crash
        return _plain(f"{type(exc).__name__}: {exc}")
    return "the signed header fields or the key do not match"


_BYTES_REPR = re.compile(r"""b(['"])(.*?)\1""")


def _plain(reason: str) -> str:
    """Return dkimpy's reason in words: no Python bytes reprs (``b'...'``) in a report."""
    if reason.startswith("body hash mismatch"):
        return "body hash mismatch: the body was changed after signing"
    return _BYTES_REPR.sub(lambda m: m.group(2), reason)


def _check_rsa(signatures: list[_Signature]) -> Check:
    name = "dkim-rsa"
    if not signatures:
        return Check(name, Status.SKIPPED, "No DKIM-Signature header.")
    algorithms = {_algorithm(s) for s in signatures}
    if "rsa-sha256" in algorithms:
        return Check(name, Status.PASSED, "An rsa-sha256 signature is present.")
    if algorithms <= {"rsa-sha1"}:
        return Check(
            name,
            Status.FAILED,
            "Only rsa-sha1: RFC 8301 §3.1 forbids accepting it; sign with rsa-sha256.",
        )
    if algorithms <= {"ed25519-sha256"}:
        return Check(
            name,
            Status.WARNING,
            "Only ed25519-sha256 signatures: Gmail verifies only rsa-sha256; add an RSA one.",
        )
    return Check(
        name,
        Status.WARNING,
        f"No rsa-sha256 signature (found {', '.join(sorted(algorithms))}).",
    )


def _check_aligned(signatures: list[_Signature], from_values: list[str]) -> Check:
    # DMARC (RFC 7489 §3.1.1) passes on DKIM only when d= matches the From domain;
    # Gmail and Yahoo require DMARC of bulk senders. Relaxed alignment is judged
    # by suffix here, without the public suffix list.
    name = "dkim-aligned"
    addresses = [address for _, address in getaddresses(from_values)]
    if not signatures or len(addresses) != 1 or "@" not in addresses[0]:
        return Check(name, Status.SKIPPED, "Needs one From address and a DKIM-Signature.")
    author = addresses[0].rpartition("@")[2].lower().rstrip(".")
    domains = [s.tags.get("d", "").lower().rstrip(".") for s in signatures]
    if any(author == d or author.endswith("." + d) or d.endswith("." + author) for d in domains):
        return Check(name, Status.PASSED, f"A signature's d= aligns with the From domain {author}.")
    return Check(
        name,
        Status.WARNING,
        f"No signature's d= ({', '.join(domains)}) aligns with the From domain {author}: "
        "DMARC will not pass on DKIM.",
    )


#: Words of a link that leads out: unsubscribe or manage preferences (en, de, fr, es).
_LEAVE_WORDS = re.compile(
    r"unsubscri|opt.?out|preferen|manage|abmeld|abbestell|einstellung|désabonn|desabonn|"
    r"désinscri|desinscri|darse de baja|cancelar|baja",
    re.IGNORECASE,
)
_URL = re.compile(r"https?://[^\s<>\"')]+", re.IGNORECASE)
_ANCHOR = re.compile(r"<a\b[^>]*\bhref\s*=\s*[\"']?([^\"'\s>]+)[^>]*>(.*?)</a\s*>", re.I | re.S)


def _check_body_link(message: bytes, unsubscribe: list[str]) -> Check:
    # Gmail and Yahoo ask bulk senders for a visible unsubscribe link in the body as
    # well as the headers (Gmail's sender guidelines; Yahoo's sender best practices).
    name = "body-unsubscribe-link"
    header_hosts = {
        urlsplit(uri.strip()).netloc.lower()
        for value in unsubscribe
        for uri in _BRACKETED.findall(value)
        if uri.strip().lower().startswith("https:")
    }
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    texts: list[str] = []
    for part in parsed.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            try:
                texts.append(part.get_content())
            except (LookupError, ValueError):
                continue
    for text in texts:
        for href, label in _ANCHOR.findall(text):
            if _leads_out(href, label, header_hosts):
                return Check(name, Status.PASSED, "The body links to unsubscribe or preferences.")
        for url in _URL.findall(text):
            start = text.find(url)
            nearby = text[max(0, start - 80) : start]
            if _leads_out(url, nearby, header_hosts):
                return Check(name, Status.PASSED, "The body links to unsubscribe or preferences.")
    return Check(
        name,
        Status.WARNING,
        "No unsubscribe or preferences link in the body: Gmail and Yahoo ask for a visible "
        "one beside the headers (unsubsvc link prints the recipient's preferences URL).",
    )


def _leads_out(url: str, words: str, header_hosts: set[str]) -> bool:
    host = urlsplit(url).netloc.lower()
    return (host in header_hosts and host != "") or bool(_LEAVE_WORDS.search(url + " " + words))


def _parse_signature(number: int, value: str) -> _Signature:
    # RFC 6376 §3.2: tag=value pairs separated by ';', whitespace anywhere around them.
    tags: dict[str, str] = {}
    for part in value.split(";"):
        tag, equals, tag_value = part.partition("=")
        if equals:
            tags[tag.strip().lower()] = "".join(tag_value.split())
    signed = [h.lower() for h in tags.get("h", "").split(":") if h]
    return _Signature(number, tags, signed)


def _sentence(text: str, end: str = ".") -> str:
    return text[:1].upper() + text[1:] + end


def _short(uri: str, limit: int = 60) -> str:
    return uri if len(uri) <= limit else uri[: limit - 1] + "…"
