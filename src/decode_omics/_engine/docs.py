"""Parameter text shared by several docstrings (in the manner of docrep): a ``{name}`` line is replaced by the text."""

from __future__ import annotations

import inspect


def fill_docs(params: dict[str, str]):
    """A decorator that replaces each line ``{name}`` of a docstring by ``params[name]``, indented as the line is."""

    def decorate(function):
        lines = []
        for line in inspect.cleandoc(function.__doc__).splitlines():
            stripped = line.strip()
            key = stripped[1:-1] if stripped.startswith("{") and stripped.endswith("}") else None
            if key in params:
                indent = line[: len(line) - len(stripped)]
                lines += [indent + text for text in params[key].splitlines()]
            else:
                lines.append(line)
        function.__doc__ = "\n".join(lines)
        return function

    return decorate
