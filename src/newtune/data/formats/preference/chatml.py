"""`chatml.*` and `llama3.*` preference types: axolotl 0.21.0's prompt_strategies/dpo/{chatml,llama3}.py.

Both families build the same strings with their own turn markers, so one table of readers serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from newtune.data.formats.preference.pair import Pair, PairFormat, last_content, text
from newtune.data.types import Row


@dataclass(frozen=True, slots=True)
class Markers:
    system: str  # format with {0}: the system text
    user: str  # format with {0}: the prompt text, ending with the assistant header
    end: str  # appended to chosen and rejected


CHATML = Markers("<|im_start|>system\n{0}<|im_end|>\n", "<|im_start|>user\n{0}<|im_end|>\n<|im_start|>assistant\n",
                 "<|im_end|>")
LLAMA3 = Markers("<|start_header_id|>system<|end_header_id|>\n\n{0}<|eot_id|>",
                 "<|start_header_id|>user<|end_header_id|>\n\n{0}<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>")


def prompt_text(m: Markers, row: Row, question: str, system: bool = True) -> str:
    sys_text = row.get("system") if system else None
    head = m.system.format(sys_text) if sys_text else ""
    return head + m.user.format(question)


def ends(m: Markers, chosen: str, rejected: str) -> tuple[str, str, tuple[str, str]]:
    return chosen + m.end, rejected + m.end, (chosen, rejected)


def default(m: Markers, row: Row) -> Pair:
    """prompt / input / question / instruction; chosen or chosen_response; rejected or rejected_response."""
    key = next((k for k in ("prompt", "input", "question") if k in row), "instruction")
    chosen = "chosen" if "chosen" in row else "chosen_response"
    rejected = "rejected" if "rejected" in row else "rejected_response"
    return Pair(prompt_text(m, row, text(row, key)), *ends(m, text(row, chosen), text(row, rejected)))


def argilla_chat(m: Markers, row: Row) -> Pair:
    """argilla/dpo-mix-7k: chosen and rejected are [user, assistant] message lists; no system."""
    return Pair(m.user.format(last_content(row, "chosen", 0)),
                *ends(m, last_content(row, "chosen", 1), last_content(row, "rejected", 1)))


def field_reader(field: str) -> Callable[[Markers, Row], Pair]:
    """icr (input), intel (question), prompt_pairs (prompt): a system, that field, chosen, rejected."""
    def read(m: Markers, row: Row) -> Pair:
        return Pair(prompt_text(m, row, text(row, field)), *ends(m, text(row, "chosen"), text(row, "rejected")))
    return read


def ultra(m: Markers, row: Row) -> Pair:
    """ultrafeedback binarized: prompt string; chosen/rejected message lists whose [1] is the answer."""
    return Pair(prompt_text(m, row, text(row, "prompt")),
                *ends(m, last_content(row, "chosen", 1), last_content(row, "rejected", 1)))


READERS: dict[str, tuple[Callable[[Markers, Row], Pair], str]] = {
    "default": (default, "prompt (or input/question/instruction), chosen, rejected; optional system"),
    "argilla_chat": (argilla_chat, "chosen/rejected as [user, assistant] message lists"),
    "icr": (field_reader("input"), "system, input, chosen, rejected"),
    "intel": (field_reader("question"), "system, question, chosen, rejected (Intel Orca DPO pairs)"),
    "prompt_pairs": (field_reader("prompt"), "system, prompt, chosen, rejected"),
    "ultra": (ultra, "prompt; chosen/rejected message lists (ultrafeedback binarized)"),
}


def bind(m: Markers, reader: Callable[[Markers, Row], Pair]) -> Callable[[Row, Any, Any], Pair]:
    return lambda row, _ds, _ctx: reader(m, row)


TYPES: dict[str, PairFormat] = {}
for family, markers in (("chatml", CHATML), ("llama3", LLAMA3)):
    for name, (reader, doc) in READERS.items():
        TYPES[f"{family}.{name}"] = PairFormat(bind(markers, reader), f"{family}: {doc}",
                                               prompt=markers.user.format)
    TYPES[family] = TYPES[f"{family}.default"]  # axolotl: a bare module name loads its `default`
