"""A griffe extension for the docs build: the package's docstrings name other objects with Sphinx
roles (:func:`run_suite`, :class:`~mrpc_check.checks.observe.Observer`, :mod:`.floors`), which
mkdocstrings would print as text. Each becomes a cross-reference that autorefs resolves, so a role
naming an object that no longer exists (or is on no page) fails `mkdocs build --strict`."""

import re

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):`(~?)([\w.]+)`")


def _reference(match: re.Match) -> str:
    short, target = match.group(1), match.group(2)
    title = target.rsplit(".", 1)[-1] if short else target
    return f"[`{title}`][{target}]"


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_reference, obj.docstring.value)
