"""Add list headers to a raw message and DKIM-sign it (RFC 6376, RFC 8463, RFC 8058 §4).

Everything here works on the message's bytes. Nothing is parsed into and
serialised back out of Python's ``email`` package: that would re-fold a long
``List-Unsubscribe`` into an RFC 2047 encoded word that mail clients ignore
(RFC 2047 §5 allows encoded words in text, never in a URI). The bytes that
are signed are the bytes that are sent.

dkimpy does the canonicalisation and hashing, OpenSSL the key operation
(``dkim_fast``). The h= list is given explicitly because dkimpy's default
omits ``List-Unsubscribe-Post``, which RFC 8058 §4 requires the signature to cover.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.utils import getaddresses
from typing import Final, Literal, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from unsubsvc.core.dkim_fast import Canonicalization, ParsedMessage, Signer
from unsubsvc.core.headers import (
    LIST_UNSUBSCRIBE,
    LIST_UNSUBSCRIBE_POST,
    MAX_LINE_LENGTH,
    format_header,
)

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = get_args(Algorithm)

#: What dkimpy calls to look up a TXT record: ``dnsfunc(name, timeout=...)``.
DnsFunc = Callable[..., bytes | None]

LIST_ID = "List-Id"
DKIM_SIGNATURE = "DKIM-Signature"

#: RFC 6376 §5.4.1: the fields a signature should cover when present. Signed
#: once per occurrence in the message.
SIGNED_HEADERS: Final = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
)

#: RFC 6376 §5.4.2 and §8.15: fields listed in h= once more than they occur, so
#: that a copy added in transit breaks the signature. RFC 8058 §4 needs the
#: signature to cover both list headers; a forged second List-Unsubscribe would
#: otherwise still verify.
OVERSIGNED_HEADERS: Final = ("from", "list-unsubscribe", "list-unsubscribe-post")

#: RFC 8301 §3.2: verifiers must reject RSA keys under 1024 bits.
MIN_RSA_BITS = 1024
MAX_RSA_BITS = 4096

#: RFC 2047 §2: an encoded word is at most 75 characters long.
ENCODED_WORD_LENGTH = 75

#: RFC 6376 §3.6.2.1: a TXT character-string holds at most 255 octets.
TXT_STRING_LENGTH = 255

_LINE_END = re.compile(rb"\r\n|\r|\n")
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
#: RFC 5322 §3.2.3 atext, for a List-Id phrase that needs no quoting.
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
#: RFC 1035 §2.3.1 labels, also what a selector looks like (RFC 6376 §3.1).
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
#: RFC 1035 §5.1: a zone file's quoted character-string, and what may precede it.
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ZONE_PREFIX = re.compile(r"\A(?:\d+\s+)?(?:IN\s+)?TXT\s+", re.IGNORECASE)
#: RFC 2919 §2: list-label is a dot-atom-text.
_LIST_LABEL = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")


# -- raw message access ----------------------------------------------------------------------


def to_crlf(message: bytes) -> bytes:
    """Return the message with every line ending as CRLF and a final CRLF (RFC 5322 §2.1)."""
    if message.count(b"\r") == message.count(b"\n") == message.count(b"\r\n"):
        normalised = message  # already CRLF throughout: three scans, no copy
    else:
        normalised = _LINE_END.sub(b"\r\n", message)
    return normalised if normalised.endswith(b"\r\n") else normalised + b"\r\n"


def split_message(message: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """Return the header fields as (name, raw value with CRLF folds) and the body, as CRLF.

    Raises ValueError for something that is not an RFC 5322 header section.
    """
    message = to_crlf(message)
    if message.startswith(b"From "):
        raise ValueError("the message starts with an mbox 'From ' line; pass one message")
    if message.startswith(b"\r\n"):
        raise ValueError("the message has no header section")
    end = message.find(b"\r\n\r\n")
    head, body = (message, b"") if end < 0 else (message[: end + 2], message[end + 4 :])
    fields: list[tuple[str, bytes]] = []
    for number, line in enumerate(head[:-2].split(b"\r\n"), start=1):
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise ValueError("the message starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        colon = line.find(b":")
        if colon <= 0 or not _FIELD_NAME.fullmatch(line[:colon].rstrip(b" \t")):
            raise ValueError(f"header line {number} is not 'Name: value': {line[:60]!r}")
        fields.append((line[:colon].rstrip(b" \t").decode("ascii"), line[colon + 1 :]))
    return fields, body


def header_values(message: bytes, name: str) -> list[str]:
    """Return the unfolded, trimmed values of every ``name`` field, in order (RFC 5322 §2.2.3)."""
    fields, _ = split_message(message)
    return [
        unfold(value).decode("utf-8", "replace").strip()
        for field, value in fields
        if field.lower() == name.lower()
    ]


def unfold(value: bytes) -> bytes:
    """Return a header value with its folding CRLFs removed (RFC 5322 §2.2.3)."""
    return value.replace(b"\r\n", b"")


def recipient_address(message: bytes) -> str | None:
    """Return the first address of the message's single To: field, or None if there is none."""
    values = header_values(message, "To")
    if len(values) != 1:
        return None
    for _, address in getaddresses(values):
        return address if "@" in address.strip("@") else None
    return None


# -- adding headers --------------------------------------------------------------------------


def check_addable(message: bytes, names: Iterable[str] = ()) -> None:
    """Raise ValueError unless headers called ``names`` and the list headers can be added.

    RFC 8058 §3.1 allows exactly one of each list header, so a message that
    already carries one is refused rather than given a second copy.
    """
    fields, _ = split_message(message)
    present = {name.lower() for name, _ in fields}
    for name in (LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST, *names):
        if name.lower() in present:
            raise ValueError(f"the message already has a {name} header")


def add_headers(message: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    """Return the message, as CRLF bytes, with ``headers`` inserted at the top in order."""
    check_addable(message, [name for name, _ in headers])
    lines = [_header_line(name, value) for name, value in headers]
    return "".join(line + "\r\n" for line in lines).encode("ascii") + to_crlf(message)


def _header_line(name: str, value: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"not a header name: {name!r}")
    if not value.isascii() or "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be one line of ASCII")
    line = format_header(name, value)
    # format_header folds comma-separated URI lists; a value it would change
    # when unfolded (a quoted phrase holding a comma) goes in unfolded instead.
    if unfold(line.encode("ascii")).decode("ascii") != f"{name}: {value}":
        line = f"{name}: {value}"
        if len(line) > MAX_LINE_LENGTH:
            raise ValueError(f"{name} is longer than {MAX_LINE_LENGTH} characters")
    return line


def list_id_header(display_name: str, list_name: str, domain: str) -> tuple[str, str]:
    """Return ``("List-Id", 'Display Name <list.domain>')`` (RFC 2919 §2)."""
    label = list_name.strip()
    if not _LIST_LABEL.fullmatch(label):
        raise ValueError(f"list name {list_name!r} cannot be a List-Id label")
    namespace = _check_domain(domain, "domain")
    phrase = _phrase(display_name.strip())
    value = f"<{label}.{namespace}>"
    return LIST_ID, f"{phrase} {value}" if phrase else value


def _phrase(text: str) -> str:
    """Return ``text`` as an RFC 5322 §3.2.5 phrase: atoms, a quoted string or encoded words."""
    text = " ".join(text.split())
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise ValueError("a List-Id display name cannot hold control characters")
    if not text or _ATOM_PHRASE.fullmatch(text):
        return text
    if text.isascii():
        # RFC 5322 §3.2.4: inside a quoted string only '"' and '\' need a backslash.
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    # RFC 2047 §5(3): non-ASCII only as encoded words, each at most 75 characters
    # (§2), split on character boundaries; B encoding needs no phrase-safe subset,
    # and the space between adjacent encoded words is dropped when decoding (§6.2).
    words: list[str] = []
    chunk = ""
    for char in text:
        if chunk and len(_encoded_word(chunk + char)) > ENCODED_WORD_LENGTH:
            words.append(_encoded_word(chunk))
            chunk = ""
        chunk += char
    words.append(_encoded_word(chunk))
    return " ".join(words)


def _encoded_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode('utf-8')).decode('ascii')}?="


# -- keys and DNS ----------------------------------------------------------------------------


def check_algorithm(value: str) -> Algorithm:
    """Return ``value`` as an Algorithm, or raise ValueError naming the ones supported."""
    if value not in ALGORITHMS:
        raise ValueError(f"unknown DKIM algorithm {value!r}; use one of {', '.join(ALGORITHMS)}")
    return value


def dns_record_name(selector: str, domain: str) -> str:
    """Return the key's TXT record name, ``selector._domainkey.domain`` (RFC 6376 §3.6.2.1)."""
    return f"{_check_domain(selector, 'selector')}._domainkey.{_check_domain(domain, 'domain')}"


def keygen(algorithm: Algorithm, bits: int = 2048) -> tuple[bytes, str]:
    """Return a new private key as PEM and the TXT value that publishes its public key."""
    algorithm = check_algorithm(algorithm)
    if algorithm == "rsa-sha256":
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise ValueError(f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        # PKCS#1 ("BEGIN RSA PRIVATE KEY"): what dkimpy and OpenDKIM both read.
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        # RFC 6376 §3.6.1: p= is the base64 DER SubjectPublicKeyInfo.
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode('ascii')}"
    signer = ed25519.Ed25519PrivateKey.generate()
    pem = signer.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # RFC 8463 §4.2: p= is the base64 of the raw 32-byte public key.
    raw = signer.public_key().public_bytes_raw()
    return pem, f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"


def txt_strings(value: str) -> list[str]:
    """Split a TXT value into the 255-octet character-strings DNS needs (RFC 6376 §3.6.2.2)."""
    return [value[i : i + TXT_STRING_LENGTH] for i in range(0, len(value), TXT_STRING_LENGTH)]


def dns_func_from_txt(records: Mapping[str, str]) -> DnsFunc:
    """Return a dkimpy ``dnsfunc`` answering from ``records`` (TXT name to value), not DNS."""
    table = {_dns_key(name): value.encode("ascii") for name, value in records.items()}

    def lookup(name: bytes | str, timeout: float = 5) -> bytes | None:
        return table.get(_dns_key(name))

    return lookup


def _dns_key(name: bytes | str) -> str:
    text = name.decode("ascii") if isinstance(name, bytes) else name
    return text.strip().rstrip(".").lower()


def load_key(private_key: bytes, algorithm: str) -> bytes:
    """Return the key in the form dkimpy signs with, or raise ValueError if it does not fit.

    RSA keys may be PKCS#1 or PKCS#8 PEM; ed25519 keys PKCS#8 PEM or dkimpy's
    base64 32-byte seed.
    """
    return _load_key(bytes(private_key), check_algorithm(algorithm))


@functools.lru_cache(maxsize=16)
def _load_key(private_key: bytes, algorithm: Algorithm) -> bytes:
    stripped = private_key.strip()
    if not stripped.startswith(b"-----BEGIN"):
        if algorithm == "ed25519-sha256":
            try:
                seed = base64.b64decode(stripped, validate=True)
            except binascii.Error:
                seed = b""
            if len(seed) == 32:
                return base64.b64encode(seed)
        raise ValueError(f"the key is not a PEM private key usable for {algorithm}")
    try:
        key = serialization.load_pem_private_key(stripped, password=None)
    except TypeError as exc:
        raise ValueError("the private key is encrypted; give an unencrypted key") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"the private key cannot be read: {exc}") from exc
    if algorithm == "rsa-sha256":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("rsa-sha256 needs an RSA private key")
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"the RSA key has {key.key_size} bits; at least 1024 are needed")
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("ed25519-sha256 needs an Ed25519 private key")
    return base64.b64encode(key.private_bytes_raw())


def _check_domain(value: str, what: str) -> str:
    if not value.isascii():
        raise ValueError(f"the {what} {value!r} must be ASCII (use the A-label form)")
    if not _DOMAIN.fullmatch(value) or len(value) > 253:
        raise ValueError(f"not a usable {what}: {value!r}")
    return value.lower()


# -- signing ---------------------------------------------------------------------------------


def signed_header_names(message: bytes) -> list[str]:
    """Return the h= list for ``message``: each present field once, the oversigned once more."""
    fields, _ = split_message(message)
    return _signed_names(fields)


def _signed_names(fields: Sequence[tuple[str, bytes]]) -> list[str]:
    counts: dict[str, int] = {}
    for name, _ in fields:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    names = [name for name in SIGNED_HEADERS for _ in range(counts.get(name, 0))]
    return names + list(OVERSIGNED_HEADERS)


def signer(
    domain: str,
    selector: str,
    private_key: bytes,
    algorithm: str,
    canonicalize: Canonicalization = (b"relaxed", b"relaxed"),
) -> Signer:
    """Return a ready Signer for the key; the same arguments in one process share one.

    relaxed/relaxed by default: it survives the re-folding and whitespace
    changes relays make (RFC 6376 §3.4).
    """
    return _signer(
        _check_domain(domain, "domain"),
        _check_domain(selector, "selector"),
        bytes(private_key),
        check_algorithm(algorithm),
        canonicalize,
    )


@functools.lru_cache(maxsize=16)
def _signer(
    domain: str,
    selector: str,
    private_key: bytes,
    algorithm: Algorithm,
    canonicalize: Canonicalization,
) -> Signer:
    normalised = _load_key(private_key, algorithm)
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "rsa-sha256":
        loaded = serialization.load_pem_private_key(normalised, password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):  # pragma: no cover - _load_key checked
            raise ValueError("rsa-sha256 needs an RSA private key")
        key = loaded
    else:
        key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(normalised))
    return Signer(domain.encode("ascii"), selector.encode("ascii"), key, canonicalize)


def sign_message(
    message: bytes, signers: Sequence[Signer], *, timestamp: int | None = None
) -> bytes:
    """Return the message as CRLF bytes with one DKIM-Signature per signer, the first on top.

    The first signer signs last so its field is topmost, which verifiers and
    ``dkim.verify`` try first; neither signature covers the other's field
    (RFC 6376 §5.4 leaves DKIM-Signature out of h=), so both verify.
    """
    message = to_crlf(message)
    fields, _ = split_message(message)
    if sum(1 for name, _ in fields if name.lower() == "from") != 1:
        # RFC 6376 §5.4: From must be signed; RFC 5322 §3.6: exactly one.
        raise ValueError("the message must have exactly one From header to be signed")
    include = [name.encode("ascii") for name in _signed_names(fields)]
    parsed = ParsedMessage(message)  # parsed and body-hashed once for every signer
    signed = message
    for each in reversed(signers):
        signed = each.signature(parsed, include, timestamp=timestamp) + signed
    return signed


def sign(
    message: bytes,
    *,
    domain: str,
    selector: str,
    private_key: bytes,
    algorithm: Algorithm = "rsa-sha256",
    timestamp: int | None = None,
) -> bytes:
    """Return the message as CRLF bytes with a DKIM-Signature field prepended (RFC 6376 §3.5).

    dkimpy canonicalises and hashes; OpenSSL signs (``dkim_fast``). The key is
    parsed once per process, so signing many messages pays for it once.
    """
    key = signer(domain, selector, private_key, algorithm)
    return sign_message(message, [key], timestamp=timestamp)


# -- published records -----------------------------------------------------------------------


def parse_txt_records(text: str) -> dict[str, str]:
    """Return TXT name to value from ``name value`` lines (as keygen prints) or zone-file lines.

    Blank lines and lines starting with ``#`` or ``;`` are skipped. A value may
    be given bare, or as quoted character-strings (``"v=DKIM1; ..." "..."``),
    optionally after ``[TTL] [IN] TXT``; quoted strings are joined (RFC 6376 §3.6.2.2).
    """
    records: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        name, *tail = re.split(r"\s+", stripped, maxsplit=1)
        rest = _ZONE_PREFIX.sub("", "".join(tail), count=1).strip().strip("()").strip()
        if rest.startswith('"'):
            rest = "".join(re.sub(r"\\(.)", r"\1", chunk) for chunk in _QUOTED.findall(rest))
        if not rest:
            raise ValueError(f"line {number} has a name but no TXT value")
        records[_dns_key(name)] = rest
    return records
