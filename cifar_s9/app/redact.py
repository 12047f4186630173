"""Server paths out of what a visitor reads: `scrub` turns every absolute path in a message into
its last part (a file name says what is meant without mapping the server's disk).

The app passes every message it shows that may hold a path through `scrub`: exception texts,
training and activation messages, model-card fields. Messages are best written without paths
in the first place (name the run or the file); this is the net under them.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

# An absolute POSIX path of two parts or more (/a/b...), or a Windows one (C:\a or C:/a); not
# the path part of a URL (preceded by ':' or '/' or a word character: http://h/a, 3/s, img/s).
_POSIX = re.compile(r"(?<![\w/:.~-])(?:~)?/(?:[^\s/'\"`<>()\[\],;]+/)+[^\s/'\"`<>()\[\],;]*")
# A relative path that climbs out of the working folder (../a/b, as model cards record --data-dir)
_CLIMB = re.compile(r"(?<![\w/.~-])(?:\.\./)+(?:[^\s/'\"`<>()\[\],;]+/)*[^\s/'\"`<>()\[\],;]+")
_WINDOWS = re.compile(r"(?<![\w])[A-Za-z]:[\\/](?:[^\s\\/'\"`<>()\[\],;]+[\\/])*[^\s\\/'\"`<>()\[\],;]*")


def _last_part(match: re.Match) -> str:
    text = match.group(0)
    trailing = ""
    while text and text[-1] in ".:!?":  # sentence punctuation after a path is not part of it
        trailing, text = text[-1] + trailing, text[:-1]
    name = re.split(r"[\\/]", text.rstrip("\\/"))[-1]
    return (name or "[server folder]") + trailing


def scrub(text: object, roots: Iterable[str | Path] = ()) -> str:
    """`text` with absolute server paths replaced by their last part. `roots` (folders whose
    names may contain spaces, such as the app's own folder) are removed first, wherever they
    appear."""
    text = str(text)
    for root in sorted((str(r).rstrip("/\\") for r in roots if str(r).strip("/\\")), key=len, reverse=True):
        text = text.replace(root + "/", "").replace(root + "\\", "").replace(root, "[server folder]")
    text = _POSIX.sub(_last_part, _CLIMB.sub(_last_part, text))
    return _WINDOWS.sub(_last_part, text)
