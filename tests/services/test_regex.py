"""The portable regular-expression dialect: what it accepts, how it writes it for both
databases, and what it refuses (each with a message that says why)."""

from __future__ import annotations

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.services.regex import MAX_LENGTH, portable
from canopy.store.regexp import search


@pytest.mark.parametrize(
    ("pattern", "canonical"),
    [
        ("web", "web"),
        ("^web-\\d+$", "^web-[0-9]+$"),
        ("\\D\\w\\W\\s\\S", "[^0-9][0-9A-Za-z_][^0-9A-Za-z_][\\t\\n\\v\\f\\r ][^\\t\\n\\v\\f\\r ]"),
        ("(a|b)+", "(?:a|b)+"),  # groups never capture: only "does it match" is asked
        ("(?:a)", "(?:a)"),
        ("a*?b+?c??d{1,2}?", "a*b+c?d{1,2}"),  # laziness does not change whether it matches
        ("a{2}b{2,}c{0,3}", "a{2}b{2,}c{0,3}"),
        ("\\.\\$\\^\\|\\-\\_\\/", "\\.\\$\\^\\|-_/"),  # escaped punctuation is that character
        ("a}", "a\\}"),
        ("[]a]", "[\\]a]"),
        ("[^]a-c]", "[^\\]a-c]"),
        ("[-a]", "[\\-a]"),
        ("[a-]", "[a\\-]"),
        ("[\\d.]", "[0-9.]"),
        ("[a\\]\\\\]", "[a\\]\\\\]"),
        ("tab\there", "tab\\there"),
        ("new\nline", "new\\nline"),
        ("é[à-ü]日本", "é[à-ü]日本"),
        ("a|", "a|"),
        ("", ""),
    ],
)
def test_accepted_patterns_are_written_in_the_canonical_form(pattern: str, canonical: str) -> None:
    assert portable("name", pattern) == canonical


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(?P<n>b)", "no flags, named groups or look-around"),
        ("(?a)b", "no flags"),
        ("(?i)web", "no flags"),
        ("(?=a)", "look-around"),
        ("\\bword", "word boundary"),
        ("\\Bx", "not a word boundary"),
        ("(a)\\1", "backreferences"),
        ("\\Aa", "use ^"),
        ("a\\Z", "use $"),
        ("\\x41", "write the character itself"),
        ("\\p{L}", "Unicode classes"),
        ("\\é", "not supported"),
        ("a**", "cannot follow another"),
        ("a*+", "cannot follow another"),
        ("a{1}{2}", "cannot follow another"),
        ("*a", "nothing to repeat"),
        ("^*", "nothing to repeat"),
        ("a{", "must start a bound"),
        ("a{,3}", "must start a bound"),
        ("{1}", "must start a bound"),
        ("a{3,2}", "out of order"),
        ("a{256}", "at most 255"),
        ("[z-a]", "out of order"),
        ("[a", "missing ']'"),
        ("(a", "missing ')'"),
        ("a)", "unbalanced ')'"),
        ("web(", "missing ')'"),
        ("[[:alpha:]]", "POSIX classes"),
        ("[\\D]", "inside [...]"),
        ("[a-\\d]", "must end with a character"),
        ("a\x00", "NUL"),
        ("x\\", "cannot end with"),
        ("(" * 40 + ")" * 40, "nested deeper"),
        ("(?:(?:(?:.*){1,10}){1,10}){1,10}y", "too complex"),
        ("x" * (MAX_LENGTH + 1), f"longer than {MAX_LENGTH}"),
    ],
)
def test_patterns_outside_the_dialect_are_refused_with_the_reason(pattern: str, why: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        portable("name", pattern)
    assert why in str(e.value)
    assert "regular expression for name" in str(e.value)


def test_sqlite_regexp_is_re2_and_matches_in_linear_time() -> None:
    # Python's re needs about 2**40 steps for this one; RE2 answers at once.
    assert search(portable("name", "^(a+)+$"), "a" * 40 + "!") is False
    assert search(portable("name", "^(a+)+$"), "a" * 40) is True
    assert search("x", None) is None  # NULL in, NULL out, as SQL expects


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (".", "\n", True),  # `.` matches a newline, as PostgreSQL's does
        ("line$", "line\n", False),  # `$` is the end of the text only
        ("\\d", "\u0663", False),  # ASCII digits only (an Arabic-Indic three is not one)
        ("\\w", "é", False),
        ("\\s", "\u00a0", False),
        ("[à-ü]", "é", True),  # ranges are by code point
        ("É", "é", False),  # case matters
    ],
)
def test_the_dialect_means_one_thing(pattern: str, text: str, matches: bool) -> None:
    assert search(portable("name", pattern), text) is matches
