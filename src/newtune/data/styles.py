"""Prompt styles: format strings that render an instruction (with optional input and system) as text.

The strings are axolotl 0.21.0's (prompters.py), so `type: alpaca:chat` gives the same prompt text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from string import Formatter

from newtune.errors import ConfigError


@dataclass(frozen=True, slots=True)
class PromptStyle:
    """`turn_format` (with {instruction} and {input}), `turn_no_input_format`, `system_format` ({system})."""

    turn_format: str
    turn_no_input_format: str
    system_format: str = "{system}"

    def render(self, instruction: str, input: str = "", system: str | None = None) -> str:
        """The prompt text: the system part when `system` is non-empty, then the turn.

        An empty `input` selects `turn_no_input_format`, as axolotl does.
        """
        head = _fill(self.system_format, "system_format", system=system) if system and self.system_format else ""
        if input:
            return head + _fill(self.turn_format, "format", instruction=instruction, input=input)
        return head + _fill(self.turn_no_input_format, "no_input_format", instruction=instruction)

    def render_parts(self, instruction: str, input: str = "", system: str | None = None) -> tuple[str, ...]:
        """`render`'s text cut before and after the instruction and the input (empty parts left out); the system
        text stays with the fixed text around it. One part, the whole text, when a format string is more than
        literal text and {name} fields."""
        values = {"instruction": instruction, "input": input, "system": system or ""}
        templates = [(self.system_format, ("system",))] if system and self.system_format else []
        templates.append((self.turn_format, ("instruction", "input")) if input else (self.turn_no_input_format, ("instruction",)))
        parts = [""]
        for template, names in templates:
            pieces = _pieces(template, names)
            if pieces is None:
                return (self.render(instruction, input, system),)
            for literal, name in pieces:
                parts[-1] += literal
                if name == "system":
                    parts[-1] += values[name]
                elif name:
                    parts += [values[name], ""]
        return tuple(p for p in parts if p)


@lru_cache(maxsize=256)
def _pieces(template: str, names: tuple[str, ...]) -> tuple[tuple[str, str | None], ...] | None:
    """(literal text, field name or None) in order, as str.format reads `template`; None unless every field is one
    of `names`, plain ({name}, no conversion or format spec)."""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError:
        return None
    if any(name is not None and (name not in names or spec or conv) for _, name, spec, conv in parsed):
        return None
    return tuple((literal, name) for literal, name, _, _ in parsed)


def _fill(template: str, name: str, **values: str | None) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as e:
        allowed = ", ".join("{" + k + "}" for k in values)
        raise ConfigError("config", [f"{name}: cannot fill {template!r} ({type(e).__name__}: {e}); it may use {allowed}; "
                                     "write literal braces as {{ and }}"]) from None


STYLE_FORMATS: dict[str, PromptStyle] = {
    "instruct": PromptStyle(
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
        "### Instruction:\n{instruction}\n\n### Response:\n",
        "{system}\n\n",
    ),
    "chat": PromptStyle("USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:", "SYSTEM: {system}\n"),
    "chatml": PromptStyle(
        "<|im_start|>user\n{instruction}\n{input}<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>system\n{system}<|im_end|>\n",
    ),
    # axolotl's phi turn has no newline around {input}; kept as is for identical tokens.
    "phi": PromptStyle(
        "<|user|>\n{instruction}<|end|>{input}<|assistant|>",
        "<|user|>\n{instruction}<|end|>\n<|assistant|>\n",
        "<|system|>\n{system}<|end|>\n",
    ),
}
STYLES = tuple(STYLE_FORMATS)
# The types that take a style after ':' (`alpaca:chat`) declare it: their Options have FROM_TYPE = ("style",).


def style(name: str) -> PromptStyle:
    """The named style; config validation has already checked the name."""
    if name not in STYLE_FORMATS:
        raise ConfigError("config", [f"unknown prompt style '{name}'; known: {', '.join(STYLES)}"])
    return STYLE_FORMATS[name]


@dataclass(frozen=True, slots=True)
class Prompter:
    """A style plus the default system prompts axolotl's prompter classes carry.

    `system` goes with rows that have an input, `system_no_input` with rows that have none.
    """

    style: PromptStyle
    system: str = ""
    system_no_input: str = ""

    def prompt(self, instruction: str, input: str = "") -> str:
        return self.style.render(instruction, input, self.system if input else self.system_no_input)

    def prompt_parts(self, instruction: str, input: str = "") -> tuple[str, ...]:
        """`prompt`'s text cut where the instruction and the input go (PromptStyle.render_parts)."""
        return self.style.render_parts(instruction, input, self.system if input else self.system_no_input)


# AlpacaPrompter's default system prompts (axolotl prompters.py).
ALPACA_SYSTEM = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request."
)
ALPACA_SYSTEM_NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately completes the request."


def alpaca_prompter(style_name: str) -> Prompter:
    """axolotl's AlpacaPrompter(style)."""
    return Prompter(style(style_name), ALPACA_SYSTEM, ALPACA_SYSTEM_NO_INPUT)


# User-defined `type:` mappings: axolotl's UserDefinedDatasetConfig defaults.
USER_DEFINED_DEFAULTS = {
    "system_prompt": "",
    "field_system": "system",
    "field_instruction": "instruction",
    "field_input": "input",
    "field_output": "output",
    "format": "{instruction} {input} ",
    "no_input_format": "{instruction} ",
    "system_format": "{system}",
}
