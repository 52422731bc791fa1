"""A griffe extension for the API reference (mkdocs.yml): the docstrings are written with Sphinx roles
(``:func:`resolve```, ``:class:`Verdict```, ``:mod:`.base```), which Markdown would show as typed;
this turns each role into plain inline code (``resolve``) before mkdocstrings renders the page.
"""
from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):`~?\.?([^`]+)`")


class RstRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(r"`\1`", obj.docstring.value)
