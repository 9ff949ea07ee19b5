"""Credentials found in text by detect-secrets' detectors, and replaced by placeholders.

The one detector of secrets, below every layer that writes text down: the intake redacts the
input with it (``app.security.redaction``), and the provider hub scrubs the error text an
upstream sends back (``app.providers.hub``), which may echo the juror's own key.

Why detect-secrets: it is Yelp's maintained scanner, used in pre-commit hooks across the industry,
and its detectors are precise patterns for named credential formats (AWS, GitHub, GitLab, Slack,
Stripe, OpenAI, JWTs, private keys, credentials in URLs, ...) plus a keyword detector for
``password = ...``-style assignments, the shape of a committed ``.env`` file. Its high-entropy
detectors are left out: they flag commit hashes and checksums, which jurors need to read in a diff.

Redaction is idempotent: a redacted text redacts to itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote

from detect_secrets.plugins.artifactory import ArtifactoryDetector
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import (
    CONFIG_DENYLIST_REGEX_TO_GROUP,
    DENYLIST,
    QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
    KeywordDetector,
)
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

# Each detector under the kind its placeholder names.
DETECTORS: tuple[tuple[str, RegexBasedDetector], ...] = (
    ("aws_key", AWSKeyDetector()),
    ("artifactory_token", ArtifactoryDetector()),
    ("azure_storage_key", AzureStorageKeyDetector()),
    ("basic_auth", BasicAuthDetector()),
    ("discord_token", DiscordBotTokenDetector()),
    ("github_token", GitHubTokenDetector()),
    ("gitlab_token", GitLabTokenDetector()),
    ("jwt", JwtTokenDetector()),
    ("mailchimp_key", MailchimpDetector()),
    ("npm_token", NpmDetector()),
    ("openai_key", OpenAIDetector()),
    ("pypi_token", PypiTokenDetector()),
    ("sendgrid_key", SendGridDetector()),
    ("slack_token", SlackDetector()),
    ("square_token", SquareOAuthDetector()),
    ("stripe_key", StripeDetector()),
    ("telegram_token", TelegramBotTokenDetector()),
    ("twilio_key", TwilioKeyDetector()),
)
KEYWORD_KIND = "credential"
PRIVATE_KEY_KIND = "private_key"
KINDS = frozenset({kind for kind, _ in DETECTORS} | {KEYWORD_KIND, PRIVATE_KEY_KIND})

_KEYWORD = KeywordDetector()
# Quoted assignments (code, JSON) and unquoted ones (.env, YAML, INI).
_KEYWORD_SHAPES = (QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP, CONFIG_DENYLIST_REGEX_TO_GROUP)

# Screening a request ran every pattern on every line: 1.1 ms of CPU per verdict in `jury bench`
# (a 25-line diff), a tenth of Jury's own. Each pattern now first runs once over the whole text,
# and only a pattern that matches there runs line by line. The answer is the same: a match in
# a line is a match in the text, since the patterns use no ``\A``, ``\Z`` or lookbehind, a
# newline ends a word as the end of a line does, and ``^``/``$`` match at every line
# (MULTILINE). Every keyword shape contains one of the keywords (any case): a line without one
# yields nothing. tests/security/test_redaction.py holds the patterns to these conditions.
#
# Some whole-text searches still cost more than the rest of the scan together: a pattern that
# opens on a class or an alternation (``(?:\s|=|:|"|^)AKC...``) is tried at every position
# of the text, where one that opens on a literal skips to where it occurs, and a pattern that
# ignores case compares every character folded. Every match of each pattern below holds the
# text it maps to (a literal outside any alternation or repetition), so a text without it
# cannot match and is not searched: a ``str`` containment test, a fraction of a microsecond.
# For a pattern that ignores case the text is lowered first, and only ASCII text is tested so
# (IGNORECASE folds a few other characters onto ASCII letters, the long s onto "s"): other
# text is searched. A bench verdict (a 1 kB diff) costs 1.2 M instructions fewer so, of 17.8 M.
# Keyed by the pattern's own text: a pattern a detect-secrets upgrade changes loses its
# pre-check, not its matches. tests/security/test_redaction.py checks each against the parsed
# pattern.
_REQUIRED_TEXT: dict[str, str] = {
    r'(?:\s|=|:|"|^)AKC[a-zA-Z0-9]{10,}(?:\s|"|$)': "AKC",
    r'(?:\s|=|:|"|^)AP[\dABCDEF][a-zA-Z0-9]{8,}(?:\s|"|$)': "AP",
    r"[0-9a-z]{32}-us[0-9]{1,2}": "-us",
    r"(?:r|s)k_live_[0-9a-zA-Z]{24}": "k_live_",
    # These open on a literal, which sre looks for a character at a time: str's search is
    # several times faster.
    r"AccountKey=[a-zA-Z0-9+\/=]{88}": "AccountKey=",
    r"://[^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+:([^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+)@": "://",
    r"(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36}": "gh",
    r"(glpat|gldt|glft|glsoat|glrt)-[A-Za-z0-9_\-]{20,50}(?!\w)": "gl",
    r"GR1348941[A-Za-z0-9_\-]{20,50}(?!\w)": "GR1348941",
    r"glcbt-([0-9a-fA-F]{2}_)?[A-Za-z0-9_\-]{20,50}(?!\w)": "glcbt-",
    r"glimt-[A-Za-z0-9_\-]{25}(?!\w)": "glimt-",
    r"glptt-[A-Za-z0-9_\-]{40}(?!\w)": "glptt-",
    r"glagent-[A-Za-z0-9_\-]{50,1024}(?!\w)": "glagent-",
    r"gloas-[A-Za-z0-9_\-]{64}(?!\w)": "gloas-",
    r"eyJ[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.?[A-Za-z0-9-_.+/=]*?": "eyJ",
    r"\/\/.+\/:_authToken=\s*((npm_.+)|([A-Fa-f0-9-]{36})).*": "/:_authToken=",
    r"sk-[A-Za-z0-9-_]*[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}": "T3BlbkFJ",
    r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9-_]{70,}": "pypi-AgEIcHlwaS5vcmc",
    r"pypi-AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9-_]{70,}": "pypi-AgENdGVzdC5weXBpLm9yZw",
    r"SG\.[a-zA-Z0-9_-]{22}\.[a-zA-Z0-9_-]{43}": "SG.",
    r"sq0csp-[0-9A-Za-z\\\-_]{43}": "sq0csp-",
    r"AC[a-z0-9]{32}": "AC",
    r"SK[a-z0-9]{32}": "SK",
    # These three ignore case: their text is in lower case.
    r"aws.{0,20}?(?:key|pwd|pw|password|pass|token).{0,20}?[\'\"]([0-9a-zA-Z/+]{40})[\'\"]": "aws",
    r"xox(?:a|b|p|o|s|r)-(?:\d+-)+[a-z0-9]+": "xox",
    r"https://hooks\.slack\.com/services/T[a-zA-Z0-9_]+/B[a-zA-Z0-9_]+/[a-zA-Z0-9_]+": (
        "hooks.slack.com/services/t"
    ),
}

# Telegram's pattern holds no literal but ":", common in code. A match holds a ":" right after
# eight decimal digits (``\d`` is the class of ``str.isdecimal``), which a text without one
# cannot: 0.14 M instructions of a bench verdict, the costliest search of its screening left.
_DIGITS_THEN_COLON = r"\d{8,10}:[0-9A-Za-z_-]{35}"


def _has_digits_then_colon(text: str) -> bool:
    """Return whether some ":" in ``text`` follows eight decimal digits."""
    return any(len(piece) >= 8 and piece[-8:].isdecimal() for piece in text.split(":")[:-1])


@dataclass(frozen=True, slots=True)
class _Detector:
    """One detector pattern: its kind, its forms for a line and for the whole text, and the
    text any match holds ("": none known), lowered if the pattern ignores case (``folded``)."""

    kind: str
    line: re.Pattern[str]
    whole: re.Pattern[str]
    required: str
    folded: bool
    digits_then_colon: bool = False  # telegram's: see ``_has_digits_then_colon``

    def may_match(self, text: str, lowered: str | None) -> bool:
        """Return whether ``text`` may match (``lowered``: it lowered, None if not ASCII)."""
        if self.digits_then_colon and not _has_digits_then_colon(text):
            return False
        if not self.folded:
            return self.required in text
        return lowered is None or self.required in lowered


_DETECTOR_PATTERNS: tuple[_Detector, ...] = tuple(
    _Detector(
        kind=kind,
        line=pattern,
        whole=re.compile(pattern.pattern, pattern.flags | re.MULTILINE),
        required=_REQUIRED_TEXT.get(pattern.pattern, ""),
        # Read once: ``&`` with a RegexFlag runs the enum's Python code.
        folded=bool(pattern.flags & re.IGNORECASE),
        digits_then_colon=pattern.pattern == _DIGITS_THEN_COLON,
    )
    for kind, detector in DETECTORS
    for pattern in detector.denylist
)
_ANY_KEYWORD = re.compile("|".join(DENYLIST), re.IGNORECASE)
# The same keywords, case-sensitive, for ASCII text lowered first: 15x faster than the search
# above (0.2 ms for the bench's 1 kB diff, the costliest pattern of the scan), and the same
# answer there, since every keyword is lowercase and IGNORECASE folds no other character onto
# an ASCII letter. Other text keeps the search above (its case folding is not str.lower's).
_ANY_LOWER_KEYWORD = re.compile("|".join(DENYLIST))
# Every keyword holds one of these (tests/security/test_redaction.py checks it): lowered ASCII
# text without any is not searched, as the required texts above (0.15 M instructions saved
# per bench request).
_KEYWORD_PARTS = ("key", "pass", "pwd", "secret", "contrase")
# detect-secrets matches a private key by its header line; the whole block must go.
_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
PLACEHOLDER = re.compile(r"\[REDACTED:([a-z0-9_]+)\]")
# Shorter hits are too common to be credentials ('password: "none"').
MIN_SECRET_CHARS = 6


def placeholder(kind: str) -> str:
    """Return the text that stands in for a secret of ``kind``."""
    return f"[REDACTED:{kind}]"


@dataclass(frozen=True, slots=True)
class Redaction:
    """A text with its secrets replaced, and the kinds found in it."""

    text: str
    found: frozenset[str]


def redact_text(text: str) -> Redaction:
    """Replace every secret in ``text`` by its placeholder; ``found``: the kinds replaced now."""
    text, blocks = _KEY_BLOCK.subn(placeholder(PRIVATE_KEY_KIND), text)
    redaction = replace_hits(text, hits_in(text))
    if blocks:
        return Redaction(redaction.text, redaction.found | {PRIVATE_KEY_KIND})
    return redaction


def hits_in(text: str) -> set[tuple[str, str]]:
    """Return (kind, value) for each secret detect-secrets finds, line by line."""
    lines = text.splitlines()
    whole = "\n".join(lines)  # every line break a "\n", where MULTILINE's ^ and $ match
    lowered = _lowered_ascii(whole)
    patterns = [
        (detector.kind, detector.line)
        for detector in _DETECTOR_PATTERNS
        if detector.may_match(whole, lowered) and detector.whole.search(whole)
    ]
    keywords = _has_keyword(whole, lowered)
    if not patterns and not keywords:
        return set()
    return {hit for line in lines for hit in _hits(line, patterns, keywords=keywords)}


def replace_hits(text: str, hits: set[tuple[str, str]]) -> Redaction:
    found: set[str] = set()
    # Longest first: a secret that contains another is replaced whole.
    for kind, value in sorted(hits, key=lambda hit: (-len(hit[1]), hit)):
        if value in text:
            text = text.replace(value, placeholder(kind))
            found.add(kind)
    return Redaction(text, frozenset(found))


def _hits(
    line: str, patterns: Iterable[tuple[str, re.Pattern[str]]], *, keywords: bool
) -> Iterator[tuple[str, str]]:
    for kind, pattern in patterns:
        # The whole match: some patterns capture only a prefix ('ghp' of a GitHub token).
        for match in pattern.finditer(line):
            yield from _kept(kind, match.group(0))
    if not keywords or not _has_keyword(line, _lowered_ascii(line)):
        return
    for shape in _KEYWORD_SHAPES:
        for value in _KEYWORD.analyze_string(line, denylist_regex_to_group=shape):
            yield from _kept(KEYWORD_KIND, value)


def _lowered_ascii(text: str) -> str | None:
    """Return ``text`` lowered if ASCII (there lowering folds as IGNORECASE does), else None."""
    return text.lower() if text.isascii() else None


def _has_keyword(text: str, lowered: str | None) -> bool:
    """Return whether ``text`` holds one of the keyword detector's keywords, in any case.

    ``lowered``: ``text`` lowered if it is ASCII (``_lowered_ascii``), else None.
    """
    if lowered is not None:
        if not any(part in lowered for part in _KEYWORD_PARTS):
            return False
        return _ANY_LOWER_KEYWORD.search(lowered) is not None
    return _ANY_KEYWORD.search(text) is not None


def _kept(kind: str, value: str) -> Iterator[tuple[str, str]]:
    # Unquoted shapes may take the quotes along; the secret is what they enclose.
    value = value.strip("\"'")
    # A placeholder already stands where a secret was: leave it (and its kind) as it is.
    if len(value) >= MIN_SECRET_CHARS and "[REDACTED:" not in value:
        yield kind, value


# --- provider error text --------------------------------------------------------------------

# What a provider's error text is scrubbed of beyond detect-secrets' named formats: the shapes
# in which upstreams and gateways echo a key back ("Incorrect API key provided: ...", an echoed
# Authorization header, a key in a query string) and hosted-model key formats detect-secrets
# does not name (its OpenAI pattern is the legacy one only).
KNOWN_KIND = "api_key"
_TOKEN = r"[A-Za-z0-9._~+/=-]{8,}"
_ERROR_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("bearer_token", re.compile(rf"(?i)\b(?:bearer|basic)\s+(?P<secret>{_TOKEN})")),
    (
        KNOWN_KIND,
        re.compile(
            r"(?i)(?:api[ _-]?key|access[ _-]?key|secret|token|password|passwd|auth(?:orization)?)"
            rf"(?:\s+provided)?[\"']?\s*[:=]\s*[\"']?(?P<secret>{_TOKEN})"
        ),
    ),
    (KNOWN_KIND, re.compile(r"(?P<secret>\b(?:sk|rk|pk)-[A-Za-z0-9_-]{16,})")),
    (KNOWN_KIND, re.compile(r"(?P<secret>\bAIza[0-9A-Za-z_-]{30,})")),
)
# A shorter configured key would match ordinary words of the text.
MIN_KNOWN_CHARS = 4


def scrub(text: str, known: Iterable[str] = ()) -> str:
    """Return provider error text without the ``known`` keys or anything credential-shaped.

    ``known`` are the keys Jury itself sent (the juror's own first): they are replaced in every
    spelling an echo may use (as sent, JSON-escaped, URL-encoded), and a trailing piece of one is
    cut off, since providers bound their error text and the bound may fall inside the key.
    """
    for secret in _spellings(known):
        text = text.replace(secret, placeholder(KNOWN_KIND))
        text = _without_cut_tail(text, secret)
    for kind, pattern in _ERROR_SHAPES:
        text = pattern.sub(partial(_replaced, kind=kind), text)
    return redact_text(text).text


def _spellings(known: Iterable[str]) -> list[str]:
    keys = {key for key in known if len(key) >= MIN_KNOWN_CHARS}
    spellings = (
        keys | {json.dumps(key)[1:-1] for key in keys} | {quote(key, safe="") for key in keys}
    )
    # Longest first: a spelling that contains another is replaced whole.
    return sorted(spellings, key=lambda value: (-len(value), value))


def _without_cut_tail(text: str, secret: str) -> str:
    for size in range(len(secret) - 1, MIN_KNOWN_CHARS - 1, -1):
        if text.endswith(secret[:size]):
            return text[:-size] + placeholder(KNOWN_KIND)
    return text


def _replaced(match: re.Match[str], *, kind: str) -> str:
    whole, start = match.group(0), match.start("secret") - match.start(0)
    if "[REDACTED:" in match.group("secret"):
        return whole
    return whole[:start] + placeholder(kind) + whole[start + len(match.group("secret")) :]
