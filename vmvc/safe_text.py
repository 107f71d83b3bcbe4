"""Text from outside (result files, file names, configs) made safe to show as one line."""

from __future__ import annotations


def one_line(text: str) -> str:
    """No newline, tab or terminal escape code: each becomes its visible escape (\\n, \\x1b).

    An error message is one line on stderr; a file name or key holding a newline would
    split it, and an escape sequence could rewrite the user's terminal.
    """
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


# Markdown that could break out of a table cell or smuggle content into a rendered page
# (a CI job summary): pipes end cells, backticks open code, brackets make links and
# images, '<' raw HTML (as entities), '*'/'~' emphasis, a leading '#' a heading.
_MD_SPECIAL = frozenset("\\|`*~[]#!")


def md_cell(value: object) -> str:
    """Any text as inert GitHub Markdown on one line (for tables, headings, quotes).

    '_' stays as it is: metric names are full of it, and inside a word GitHub does not
    read it as emphasis.
    """
    text = " ".join(one_line(str(value)).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)
