"""Run the service model's Java regular expressions with Python's `re`.

botocore's patterns are written for `java.util.regex` and are matched against the whole
value (`String.matches`). Python's `re` understands all but a few Java constructs; this
module rewrites those and compiles for `fullmatch`.
"""

from __future__ import annotations

import functools
import re

# Unicode category Z (Zs, Zl, Zp) written out: Python's `re` has no \p{..} classes and its
# \s also matches control characters that are not separators.
_Z = "\\u0020\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"

# Java construct -> Python equivalent, valid inside and outside a character class.
_REWRITES = [
    # Java matches code points, so a range between two UTF-16 surrogate pairs means the
    # supplementary planes; Python would read four code units and a backwards range.
    ("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF"),
    ("\\p{ASCII}", "\\x00-\\x7f"),
    ("\\p{Print}", "\\x20-\\x7e"),  # Java's \p{Print} is ASCII-only unless UNICODE_CHARACTER_CLASS
    # In Python, \w is exactly letters (L) + numbers (N) + '_'; the model only uses
    # \p{L} and \p{N} inside classes that already admit '_'.
    ("\\p{L}", "\\w"),
    ("\\p{N}", "\\w"),
    ("\\p{Z}", _Z),
    ("\\z", "\\Z"),
]
_NEEDS_CLASS = ("\\x00-\\x7f", "\\x20-\\x7e", _Z)


def translate(pattern: str) -> str:
    """Return a Python regex equivalent to the Java `pattern`."""
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            for java, python in _REWRITES:
                if pattern.startswith(java, i):
                    if not in_class and python in _NEEDS_CLASS:
                        python = "[" + python + "]"
                    out.append(python)
                    i += len(java)
                    break
            else:
                out.append(pattern[i : i + 2])
                i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=None)
def compile_java(pattern: str) -> re.Pattern[str]:
    return re.compile(translate(pattern))


def java_matches(pattern: str, value: str) -> bool:
    """True when the whole of `value` matches the Java `pattern`, as `String.matches` does."""
    return compile_java(pattern).fullmatch(value) is not None
