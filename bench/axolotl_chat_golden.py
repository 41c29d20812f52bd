"""Golden ids and labels for newtune's named chat templates, from axolotl 0.21.0 itself.

Run with the *axolotl* venv's python (axolotl is never a newtune dependency):

    /path/to/axolotl-venv/bin/python bench/axolotl_chat_golden.py TOKENIZER_DIR OUT.json

(an axolotl venv: `python3 -m venv V && V/bin/pip install torch==2.13.0 axolotl==0.21.0`; axolotl 0.21.0
declares Python >= 3.12, so on 3.11 add --ignore-requires-python and a constraint numpy<2.5.)

TOKENIZER_DIR is the SmolLM2-135M-Instruct tokenizer saved as an HF directory (as tests/conftest.py's
smol_tok_dir builds it). For every case below, axolotl's config validation (load_cfg) and tokenizer
loading (load_tokenizer, which applies `tokens:`) run as in `axolotl preprocess`; each dataset entry
gets the strategy axolotl's dataset wrapper gets (prompt_strategies.load) and each row goes through
its tokenize_prompt (a batch of one row, as dataset.map(batched=True) calls it). A row axolotl refuses is recorded
with its error. tests/data/templates/ replays
every case through newtune.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

for _k, _v in {"AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "AXOLOTL_LOG_LEVEL": "ERROR"}.items():
    os.environ.setdefault(_k, _v)

TEMPLATES = (
    "alpaca aya chatml cohere command_a command_a_rag command_a_tool_use deepseek_v2 deepseek_v3 exaone exaone4 "
    "falcon_h1 gemma gemma3 gemma3n gemma4 gemma4_unified jamba llama3 llama3_2_vision llama4 llava metharme "
    "mistral_v1 mistral_v2v3 mistral_v3_tekken mistral_v7_tekken nemotron_h phi_3 phi_35 phi_4 pixtral qwen2_vl qwen3 "
    "qwen3_5 qwen_25"
).split()
# the text that ends a turn in each template (EOS itself where the template writes eos_token)
EOT = {"chatml": "<|im_end|>", "qwen_25": "<|im_end|>", "qwen2_vl": "<|im_end|>", "qwen3": "<|im_end|>",
       "qwen3_5": "<|im_end|>", "nemotron_h": "<|im_end|>", "falcon_h1": "<|im_end|>", "jamba": "<|im_end|>", "phi_4": "<|im_end|>",
       "llama3": "<|eot_id|>", "llama3_2_vision": "<|eot_id|>", "llama4": "<|eot|>",
       "gemma": "<end_of_turn>", "gemma3": "<end_of_turn>", "gemma3n": "<end_of_turn>",
       "gemma4": "<turn|>", "gemma4_unified": "<turn|>", "phi_3": "<|end|>", "phi_35": "<|end|>",
       "exaone": "[|endofturn|]", "exaone4": "[|endofturn|]", "aya": "<|END_OF_TURN_TOKEN|>",
       "cohere": "<|END_OF_TURN_TOKEN|>", "command_a": "<|END_OF_TURN_TOKEN|>",
       "command_a_rag": "<|END_OF_TURN_TOKEN|>", "command_a_tool_use": "<|END_OF_TURN_TOKEN|>",
       "deepseek_v3": "<｜end▁of▁sentence｜>"}
EOS = "<|im_end|>"  # SmolLM2's


def m(role, content, **kw):
    return {"role": role, "content": content, **kw}


SYS = {"messages": [m("system", "You are terse."), m("user", "Hi!"), m("assistant", "Hello."),
                    m("user", "What is 2+2?"), m("assistant", "4.")]}
NOSYS = {"messages": [m("user", "Hi!"), m("assistant", "Hello there."), m("user", "Bye?"), m("assistant", "Bye.")]}


def template_cases() -> list[dict]:
    """Per template: multi-turn with and without a system turn under each training rule."""
    plain, eot = [], []
    for t in TEMPLATES:
        base = {"type": "chat_template", "chat_template": t}
        plain += [
            {"name": f"{t}/default", "dataset": base, "rows": [SYS, NOSYS]},
            {"name": f"{t}/users_eos_all", "dataset": {**base, "roles_to_train": ["user", "assistant"],
                                                        "train_on_eos": "all"}, "rows": [SYS, NOSYS]},
            {"name": f"{t}/eos_last", "dataset": {**base, "train_on_eos": "last"}, "rows": [SYS]},
        ]
        eos_is_eot = EOT.get(t) == EOS
        eot += [
            {"name": f"{t}/eot_all", "dataset": {**base, "train_on_eot": "all",
                                                  "train_on_eos": "all" if eos_is_eot else "none"}, "rows": [SYS, NOSYS]},
            {"name": f"{t}/eot_last", "dataset": {**base, "train_on_eot": "last",
                                                   "train_on_eos": "last" if eos_is_eot else "none"}, "rows": [NOSYS]},
        ]
    added = sorted({v for v in EOT.values() if v != EOS})
    return [{"top": {}, "cases": plain},
            {"top": {"tokens": added, "eot_tokens": [EOS, *added]}, "cases": eot}]


REASON = {"messages": [m("user", "Hi!"), m("assistant", "Hello.", reasoning_content="Greet back."),
                       m("user", "What is 2+2?"), m("assistant", "4.", reasoning_content="Two plus two.")]}
INLINE = {"messages": [m("user", "Hi!"), m("assistant", "<think>Greet back.</think>\n\nHello."),
                       m("user", "What is 2+2?"), m("assistant", "<think>\nTwo plus two.\n</think>\n4.")]}
FIELD = {"messages": [m("user", "What is 2+2?"), m("assistant", "4.", thinking="Two plus two.")]}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
          "parameters": json.dumps({"type": "object", "properties": {"city": {"type": "string"}}})}}]
CALL = [{"type": "function", "id": "call00001", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
TOOL_ROW = {"tools": TOOLS, "messages": [
    m("user", "Weather in Paris?"), m("assistant", "", tool_calls=CALL),
    m("tool", "18C", tool_call_id="call00001", name="get_weather"), m("assistant", "It is 18C.")]}
TOOL_JSON = {"functions": json.dumps(TOOLS), "messages": json.dumps(TOOL_ROW["messages"])}
THINK_KEY = ("{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}{%- if message.thoughts %}"
             "{{ '<think>' + message.thoughts + '</think>' }}{% endif %}{{ message['content'] + '<|im_end|>\\n' }}"
             "{%- endfor %}")
REASON_FIELD = {"messages": [m("user", "What is 2+2?"), m("assistant", "4.", reasoning_content="Two plus two.")]}
TOOL_ROW_STR = {"tools": json.dumps(TOOLS), "messages": json.dumps(TOOL_ROW["messages"])}
REASONING_TEMPLATES = ("qwen3", "qwen3_5", "deepseek_v3", "exaone4", "gemma4", "chatml")
TOOL_TEMPLATES = ("qwen_25", "qwen3", "qwen3_5", "llama3_2_vision", "llama4", "exaone4", "falcon_h1",
                  "mistral_v2v3", "mistral_v3_tekken", "command_a_tool_use", "jamba", "gemma4")


def reasoning_and_tool_cases() -> list[dict]:
    cases = []
    for t in REASONING_TEMPLATES:
        base = {"type": "chat_template", "chat_template": t}
        cases += [
            {"name": f"{t}/reasoning", "dataset": base, "rows": [REASON]},
            {"name": f"{t}/reasoning_users_eos_all", "dataset": {**base, "roles_to_train": ["user", "assistant"],
                                                                  "train_on_eos": "all"}, "rows": [REASON]},
            {"name": f"{t}/split_thinking", "dataset": {**base, "split_thinking": True}, "rows": [INLINE]},
            {"name": f"{t}/inline_think", "dataset": base, "rows": [INLINE]},
            # axolotl 0.21.0 ignores field_thinking (its validator always fills message_property_mappings, so
            # the reasoning field is never mapped): axolotl renders the row with the field renamed
            {"name": f"{t}/field_thinking", "dataset": base, "rows": [REASON_FIELD],
             "newtune": {"dataset": {**base, "field_thinking": "thinking"}, "rows": [FIELD]}},
        ]
    cases.append({"name": "jinja/template_thinking_key", "dataset": {
        "type": "chat_template", "chat_template": "jinja", "chat_template_jinja": THINK_KEY,
        "template_thinking_key": "thoughts", "split_thinking": True}, "rows": [INLINE]})
    for t in TOOL_TEMPLATES:
        base = {"type": "chat_template", "chat_template": t}
        cases += [
            {"name": f"{t}/tools", "dataset": base, "rows": [TOOL_ROW]},
            {"name": f"{t}/tools_json_strings", "dataset": base, "rows": [TOOL_ROW_STR]},
            # axolotl 0.21.0 ignores field_tools (its loader never passes it on): axolotl reads `tools`
            {"name": f"{t}/field_tools", "dataset": base, "rows": [TOOL_ROW_STR],
             "newtune": {"dataset": {**base, "field_tools": "functions"}, "rows": [TOOL_JSON]}},
        ]
    kwargs = [{"name": "exaone4/reasoning_skip_think_false", "dataset": {"type": "chat_template", "chat_template": "exaone4"},
               "rows": [REASON]},
              {"name": "qwen3/reasoning_kwargs", "dataset": {"type": "chat_template", "chat_template": "qwen3"},
               "rows": [REASON]}]
    return [{"top": {}, "cases": cases},
            {"top": {"chat_template_kwargs": {"skip_think": False, "enable_thinking": False}}, "cases": kwargs}]


DOCS = [{"title": "Paris", "text": "Paris is the capital of France."},
        {"text": "Lyon is on the Rhone.", "url": "https://example.com/lyon"}]
CALL2 = [*CALL, {"type": "function", "id": "call00002", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}}]
TWO_CALLS = {"tools": TOOLS, "messages": [
    m("system", "You are terse."), m("user", "Weather and time in Paris?"),
    m("assistant", "", tool_calls=CALL2, tool_plan="I will look up the weather and the time."),
    m("tool", "18C", tool_call_id="call00001", name="get_weather"), m("tool", "12:00", tool_call_id="call00002", name="get_time"),
    m("assistant", "18C at noon.")]}
CITED = {"messages": [m("user", "Where is Paris?", name="ann"),
                      m("assistant", "In France.", citations=[{"document_id": 0}])]}
SCHEMA_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", "parameters": {
    "type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["C", "F"]},
        "days": {"type": "integer", "nullable": True}, "tags": {"type": "array", "items": {"type": "string"}},
        "opts": {"type": "object", "properties": {"exact": {"type": "boolean"}}, "required": ["exact"]}}}}}]
GEMMA_CALL = [{"type": "function", "id": "call00001", "function": {"name": "get_weather", "arguments": {
    "city": "Paris", "days": 2, "tags": ["now"], "opts": {"exact": True}}}}]
# gemma's own tool format: the results ride on the calling assistant turn (axolotl 0.21.0 drops a tool
# message's name and tool_call_id, which gemma4's template then fails on)
GEMMA_TOOLS = {"tools": SCHEMA_TOOLS, "messages": [
    m("system", "You are terse."), m("user", "Weather in Paris?"),
    m("assistant", "", tool_calls=GEMMA_CALL, reasoning_content="The user wants the weather.",
      tool_responses=[{"name": "get_weather", "response": {"temp": "18C", "sunny": True}}]),
    m("assistant", "It is 18C.")]}
GEMMA_RESULTS = {"tools": SCHEMA_TOOLS, "messages": [
    {**msg, "reasoning_content": None} if msg.get("reasoning_content") else msg for msg in GEMMA_TOOLS["messages"]]}
GEMMA_OPEN_CALL = {"messages": [m("user", "Weather in Paris?"), m("assistant", "Checking.", tool_calls=GEMMA_CALL),
                                m("user", "Never mind."), m("assistant", "Ok.")]}


def document_and_tool_cases() -> list[dict]:
    """Documents (chat_template_kwargs, as axolotl passes them), several tool calls, gemma4's tool formats."""
    docs = []
    for t in ("command_a", "command_a_rag", "command_a_tool_use", "jamba"):
        base = {"type": "chat_template", "chat_template": t}
        docs += [{"name": f"{t}/documents", "dataset": base, "rows": [SYS, NOSYS]},
                 {"name": f"{t}/documents_users_eos_all", "dataset": {**base, "roles_to_train": ["user", "assistant"],
                                                                       "train_on_eos": "all"}, "rows": [SYS]}]
    docs.append({"name": "command_a_tool_use/documents_tools", "dataset": {"type": "chat_template",
                 "chat_template": "command_a_tool_use"}, "rows": [TOOL_ROW]})
    more = []
    for t in ("command_a", "command_a_rag"):
        more.append({"name": f"{t}/tools", "dataset": {"type": "chat_template", "chat_template": t}, "rows": [TOOL_ROW]})
    for t in ("command_a_tool_use", "jamba"):
        base = {"type": "chat_template", "chat_template": t}
        more += [{"name": f"{t}/two_calls", "dataset": base, "rows": [TWO_CALLS]},
                 {"name": f"{t}/two_calls_users_eos_all", "dataset": {**base, "roles_to_train": ["user", "assistant"],
                                                                       "train_on_eos": "all"}, "rows": [TWO_CALLS]}]
    more.append({"name": "jamba/named_cited", "dataset": {"type": "chat_template", "chat_template": "jamba"}, "rows": [CITED]})
    for t in ("gemma4", "gemma4_unified"):
        base = {"type": "chat_template", "chat_template": t}
        more += [{"name": f"{t}/tool_responses", "dataset": base, "rows": [GEMMA_TOOLS]},
                 {"name": f"{t}/tool_responses_users_eos_all", "dataset": {**base, "roles_to_train": ["user", "assistant"],
                                                                           "train_on_eos": "all"}, "rows": [GEMMA_TOOLS]},
                 {"name": f"{t}/open_tool_call", "dataset": base, "rows": [GEMMA_OPEN_CALL]},
                 {"name": f"{t}/tool_results_users_eos_all", "dataset": {**base, "roles_to_train": ["user", "assistant"],
                                                                         "train_on_eos": "all"}, "rows": [GEMMA_RESULTS]}]
    think = [{"name": f"{t}/enable_thinking", "dataset": {"type": "chat_template", "chat_template": t}, "rows": [SYS, NOSYS]}
             for t in ("gemma4", "gemma4_unified")]
    return [{"top": {"chat_template_kwargs": {"documents": DOCS}}, "cases": docs}, {"top": {}, "cases": more},
            {"top": {"chat_template_kwargs": {"enable_thinking": True}}, "cases": think}]


def runs() -> list[dict]:
    return template_cases() + reasoning_and_tool_cases() + document_and_tool_cases()


class FixedDate:
    """Templates that print today's date (llama3_2_vision, mistral_v7_tekken) see this one, here and in the tests."""

    @staticmethod
    def now(tz=None):
        import datetime

        return datetime.datetime(2026, 1, 15, 12, 0, 0)


def dump(about: str, cases: list[dict]) -> str:
    """Readable JSON: one line per expected row, the rendered text first."""
    lines = ["{", f' "about": {json.dumps(about)},', ' "cases": [']
    for i, c in enumerate(cases):
        head = {k: v for k, v in c.items() if k != "expected"}
        lines.append("  {" + json.dumps(head, ensure_ascii=False)[1:-1] + ', "expected": [')
        rows = [f"   {json.dumps(e, ensure_ascii=False)}" for e in c["expected"]]
        lines.append(",\n".join(rows))
        lines.append("  ]}" + ("," if i < len(cases) - 1 else ""))
    lines += [" ]", "}"]
    return "\n".join(lines) + "\n"


def run(tokenizer_dir: Path, spec: dict, scratch: Path) -> list[dict]:
    from axolotl.cli.config import load_cfg
    from axolotl.loaders import load_tokenizer
    from axolotl.prompt_strategies import load
    from axolotl.utils.dict import DictDefault

    raw = {"base_model": str(tokenizer_dir), "tokenizer_config": str(tokenizer_dir), "sequence_len": 4096,
           "learning_rate": 1e-4, "micro_batch_size": 1, "num_epochs": 1, "gradient_accumulation_steps": 1,
           "output_dir": str(scratch / "out"), "dataset_prepared_path": str(scratch / "prep"),
           "val_set_size": 0, "sample_packing": False, "dataset_num_proc": 1,
           "datasets": [{"path": "unused.jsonl", **c["dataset"]} for c in spec["cases"]], **spec["top"]}
    cfg = load_cfg(DictDefault(raw), is_preprocess=True)
    tok = load_tokenizer(cfg)
    out = []
    for case, ds_cfg in zip(spec["cases"], cfg.datasets, strict=True):
        expected = []
        try:
            strategy = load(ds_cfg.type, tok, cfg, ds_cfg)
        except Exception as e:  # noqa: BLE001 - recorded: newtune must refuse it too
            strategy, setup_error = None, f"{type(e).__name__}: {e}"
        for row in case["rows"]:
            if strategy is None:
                expected.append({"error": setup_error})
                continue
            try:
                # a batch of one, as axolotl's dataset.map(batched=True) calls it
                res = strategy.tokenize_prompt({k: [v] for k, v in json.loads(json.dumps(row)).items()})
                res = {k: v[0] for k, v in res.items()}
                expected.append({"text": tok.decode(res["input_ids"]), "input_ids": list(res["input_ids"]),
                                 "labels": list(res["labels"])})
            except Exception as e:  # noqa: BLE001
                expected.append({"error": f"{type(e).__name__}: {e}"})
        out.append({**case, "top": spec["top"], "expected": expected})
    return out


def main() -> int:
    import axolotl
    import transformers
    import transformers.utils.chat_template_utils as ctu

    ctu.datetime = FixedDate

    tokenizer_dir, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        import shutil

        from transformers import AutoTokenizer, LlamaConfig

        shutil.copytree(tokenizer_dir, model_dir)
        tok = AutoTokenizer.from_pretrained(model_dir)
        LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                    num_attention_heads=4, num_key_value_heads=2).save_pretrained(model_dir)
        for spec in runs():
            cases += run(model_dir, spec, Path(tmp))
    about = (f"axolotl {axolotl.__version__} (transformers {transformers.__version__}): ids and labels of each row "
             "from bench/axolotl_chat_golden.py on the SmolLM2-135M-Instruct tokenizer (embedded GGUF); "
             "templates that print today's date see 2026-01-15")
    out_path.write_text(dump(about, cases))
    print(f"{len(cases)} cases → {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
