"""Chat templates compiled with jinja2's immutable sandbox, with the globals and filters that
transformers' `apply_chat_template` gives them (transformers 5.x chat_template_utils), so a template
renders the same text here as there, without importing transformers (or torch) to preprocess.

Written here rather than imported because transformers keeps its compiler private
(`_compile_jinja_template`) and importing it pulls in torch.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from newtune.errors import DataError


class GenerationBlock(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` renders its body (transformers uses it to find assistant
    tokens; newtune finds them by rendering, so the tag only has to parse)."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Any) -> str:
        return caller()


def raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
           sort_keys: bool = False) -> str:
    """JSON without Jinja's HTML escaping, with the options transformers exposes."""
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class TemplateDict:
    """`dict(...)` for templates, without attribute access to the real type."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict:
        return dict.fromkeys(*args, **kwargs)


class TemplateNamespace(jinja2.utils.Namespace):
    """`namespace(...)` that refuses underscore-prefixed attributes (no way to CPython internals)."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: N805 (jinja's own signature trick)
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(
                f"Chat templates cannot store underscore-prefixed attributes on a namespace, but got {name!r}.")


@lru_cache(maxsize=64)
def compile_template(source: str) -> jinja2.Template:
    """The template compiled as apply_chat_template compiles it (trim_blocks, lstrip_blocks, loop controls)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = TemplateDict()
    env.globals["namespace"] = TemplateNamespace
    return env.from_string(source)


def is_template_path(value: str) -> bool:
    """`chat_template_jinja` holds a path, not inline Jinja: no `{` and short (as axolotl tells them apart)."""
    return "{" not in value and len(value) < 4096


def template_text(value: str | None, field: str) -> str:
    """The Jinja source `chat_template_jinja` gives: inline text, or the text of the file it names."""
    if not value:
        raise DataError(field, "chat_template: jinja needs chat_template_jinja (inline Jinja or a .jinja file path)")
    if not is_template_path(value):
        return value
    path = Path(value).expanduser()
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{field} ({value})", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    raise DataError(field, f"{value!r} is neither a Jinja template nor an existing file "
                    f"(relative paths start at the working directory, {Path.cwd()})")


def template_problems(choice: Any, jinja: Any, where: str) -> list[str]:
    """At check: `chat_template: jinja` without a template, a template file that is missing, a template that
    does not compile (with its line). `where` prefixes the keys (`datasets[0].`)."""
    if not isinstance(jinja, str | None) or not isinstance(choice, str | None):
        return []  # a wrong type: the config layer reports it
    if jinja is None and choice != "jinja":
        return []
    field = f"{where}chat_template_jinja"
    try:
        source = template_text(jinja, field)
    except DataError as e:
        return [e.render()]
    try:
        compile_template(source)
    except jinja2.TemplateSyntaxError as e:
        shown = f"{jinja} line {e.lineno}" if is_template_path(jinja) else f"line {e.lineno} of the template"
        return [f"{field}: {shown}: Jinja syntax error: {e.message}; fix the template"]
    return []
