"""Keys that decide the tokens and labels. Everything here is part of the dataset cache key, except
AFTER_CACHE: the keys applied to the cached rows each run (shuffle, split) or that only say where and how
fast to build them.

Keep other keys that do not change the prepared data out of this file: they would only defeat the cache.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from newtune.config.base import NonEmptyStr, Section

# `chat_template:` choices that are not a named template.
CHAT_TEMPLATE_CHOICES = ("tokenizer_default", "jinja")
CHAT_TEMPLATE_FALLBACK_PREFIX = "tokenizer_default_fallback_"
# axolotl 0.21.0's named templates, all of them; each is src/newtune/data/templates/<name>.jinja, written for
# newtune and rendering byte for byte what axolotl's does (tests/data/templates/).
NAMED_TEMPLATES = (
    "alpaca aya chatml cohere command_a command_a_rag command_a_tool_use deepseek_v2 deepseek_v3 exaone exaone4 "
    "falcon_h1 gemma gemma3 gemma3n gemma4 gemma4_unified jamba llama3 llama3_2_vision llama4 llava metharme "
    "mistral_v1 mistral_v2v3 mistral_v3_tekken mistral_v7_tekken nemotron_h phi_3 phi_35 phi_4 pixtral qwen2_vl "
    "qwen3 qwen3_5 qwen_25"
).split()
CHAT_TEMPLATES = (*CHAT_TEMPLATE_CHOICES, *NAMED_TEMPLATES)

TrainOn = Literal["all", "turn", "last", "none"]


def check_chat_template_name(v: str | None) -> str | None:
    if v is None or v in CHAT_TEMPLATES:
        return v
    if v.startswith(CHAT_TEMPLATE_FALLBACK_PREFIX):
        fallback = v[len(CHAT_TEMPLATE_FALLBACK_PREFIX) :]
        if fallback in CHAT_TEMPLATE_CHOICES:
            raise ValueError(f"'{v}' falls back to '{fallback}', which is not a named template")
        check_chat_template_name(fallback)
        return v
    close = get_close_matches(v, CHAT_TEMPLATES, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ValueError(
        f"unknown chat template '{v}'{hint}; known: tokenizer_default, jinja, tokenizer_default_fallback_<name>, "
        f"and the named templates {', '.join(NAMED_TEMPLATES)}"
    )


class InstructKeys(Section):
    """Keys of a user-defined instruct format: under a `type:` mapping, or on the dataset entry itself."""

    system_prompt: str | None = None
    system_format: str | None = None
    field_system: str | None = None
    field_instruction: str | None = None
    field_input: str | None = None
    field_output: str | None = None
    format: str | None = None
    no_input_format: str | None = None


class UserDefinedType(InstructKeys):
    """`type:` given as a mapping: an instruct format built from format strings."""


class DatasetConfig(Section):
    """One entry of `datasets:`: the keys every type shares (axolotl's SFTDataset keys).

    The keys a format reads besides these (field_messages, conversation, roles_to_train, ...) are that
    format's `Options` (data/formats): they are kept here as extras, unvalidated, and the data layer
    checks them against the format of `type:` (`newtune check` reports them with the other problems).
    """

    model_config = ConfigDict(extra="allow", frozen=True, validate_default=True)

    path: NonEmptyStr = Field(..., description="Local file or directory, or a hub dataset id.")
    type: str | UserDefinedType | None = Field(
        None, description="Dataset format: alpaca, chat_template, input_output, ... or a user-defined mapping."
    )
    ds_type: Literal["json", "jsonl", "parquet", "csv", "arrow", "text"] | None = Field(
        None, description="File format, when the file name does not tell."
    )
    data_files: str | list[str] | None = Field(None, description="Files to read inside path.")
    split: str = Field("train", description="Dataset split to read.")
    name: str | None = Field(None, description="Dataset configuration name (hub datasets).")
    shards: int | None = Field(None, ge=1, description="Split the dataset into this many shards and keep one.")
    shards_idx: int | None = Field(None, ge=0, description="Which shard to keep (default 0).")
    revision: str | None = Field(None, description="Hub revision of the dataset.")
    trust_remote_code: bool = False
    weight: float | None = Field(None, gt=0, le=1, description="Use this share of the rows (seeded sample, taken "
                                 "before tokenizing, as axolotl's weight).")
    task_id: int | None = Field(None, ge=0, description="adapter: multitask_prompt_tuning: the task of this dataset's "
                                "rows (0 to peft_num_tasks - 1; default 0).")

    # hf_use_auth_token (a top-level key), set by DataConfig: where a hub dataset is loaded, only the entry is at hand.
    _hub_token: bool | None = PrivateAttr(None)

    @property
    def options(self) -> dict[str, Any]:
        """The format's keys as written (validated by the data layer against the format of `type:`)."""
        return dict(self.model_extra or {})

    @property
    def type_name(self) -> str:
        """The registry name of `type:` (a mapping → 'user_defined'; 'alpaca:chat' → 'alpaca')."""
        if isinstance(self.type, UserDefinedType):
            return "user_defined"
        return (self.type or "").split(":", 1)[0]


class PretrainingDataset(Section):
    """`pretraining_dataset:` entry: streamed raw text."""

    path: str
    name: str | None = None
    split: str = "train"
    text_column: str = "text"
    type: str | None = "pretrain"
    data_files: str | list[str] | None = None
    skip: int = Field(0, ge=0, description="Rows to skip at the start of the stream.")
    trust_remote_code: bool = False
    _hub_token: bool | None = PrivateAttr(None)  # as DatasetConfig's


# Applied after the cache (seeded shuffle, val_set_size split) or not about its content (where, how many processes).
AFTER_CACHE = frozenset({"val_set_size", "shuffle_merged_datasets", "shuffle_before_merging_datasets", "dataset_num_proc",
                         "dataset_prepared_path", "skip_prepare_dataset", "hf_use_auth_token"})


RL_METHODS = ("dpo", "ipo", "orpo", "simpo")  # implemented `rl:` methods
RL_LATER = ("kto", "grpo", "gdpo", "ebft")  # axolotl's other ones: "not supported yet"


def check_rl(v: str | None) -> str | None:
    if v is None or v in RL_METHODS:
        return v
    if v in RL_LATER:
        raise ValueError(f"rl: {v} is not supported by newtune yet (supported: {', '.join(RL_METHODS)})")
    raise ValueError(f"unknown rl method '{v}'; known: {', '.join(RL_METHODS + RL_LATER)}")


class DataConfig(Section):
    rl: str | None = Field(None, description="Preference training: dpo, ipo, orpo or simpo (dataset types then give "
                           "prompt/chosen/rejected pairs).")
    datasets: list[DatasetConfig] = Field(default_factory=list, description="Training datasets, merged in order.")
    test_datasets: list[DatasetConfig] | None = Field(None, description="Evaluation datasets.")
    pretraining_dataset: list[PretrainingDataset] | None = Field(None, description="Streamed pretraining text.")
    sequence_len: int = Field(2048, ge=8, description="Maximum tokens per training row.")
    dataset_prepared_path: NonEmptyStr | None = Field(
        None, description="Where tokenized datasets are cached (default ~/.cache/newtune/prepared)."
    )
    val_set_size: float = Field(0.0, ge=0, description="Eval split: a fraction (<1) or a row count (>=1).")
    train_on_inputs: bool = Field(False, description="Also train on prompt tokens.")
    chat_template: str | None = Field(
        None, description="tokenizer_default, jinja, a named template (chatml, llama3, ...), tokenizer_default_fallback_<name>.")
    chat_template_jinja: str | None = Field(None, description="Inline Jinja or a path to a .jinja file.")
    default_system_message: str | None = Field(None, description="System message used when a row has none.")
    eot_tokens: list[str] | None = Field(None, description="End-of-turn tokens for train_on_eot.")
    chat_template_kwargs: dict[str, Any] | None = Field(
        None, description="Extra variables every chat template render sees (enable_thinking, skip_think, ...)."
    )
    shuffle_merged_datasets: bool = Field(True, description="Shuffle rows after merging datasets.")
    shuffle_before_merging_datasets: bool = Field(
        False, description="Shuffle each dataset's rows before merging (several datasets; seeded by seed).")
    dataset_exact_deduplication: bool = Field(False, description="Drop exact duplicate rows.")
    excess_length_strategy: Literal["drop", "truncate", "raise"] = Field(
        "drop", description="Rows longer than sequence_len: drop, truncate, or raise."
    )
    min_sample_len: int = Field(2, ge=1, description="Drop rows with fewer tokens than this (axolotl's default 2).")
    skip_prepare_dataset: bool = Field(
        False, description="Tokenize in each run without reading or writing the prepared-dataset cache.")
    dataset_num_proc: int | None = Field(None, ge=1, description="Worker processes for tokenizing (axolotl's dataset_processes).")
    hf_use_auth_token: bool | None = Field(
        None, description="Hub datasets: true sends the saved Hugging Face token, false sends none (default: the hub's).")

    _check_template = field_validator("chat_template")(classmethod(lambda cls, v: check_chat_template_name(v)))
    _check_rl = field_validator("rl")(classmethod(lambda cls, v: check_rl(v)))

    @model_validator(mode="after")
    def _token_to_entries(self) -> DataConfig:
        for entry in [*self.datasets, *(self.test_datasets or []), *(self.pretraining_dataset or [])]:
            entry._hub_token = self.hf_use_auth_token  # a private attribute: allowed on a frozen model
        return self

    @field_validator("val_set_size")
    @classmethod
    def _fraction_or_count(cls, v: float) -> float:
        if v >= 1 and v != int(v):
            raise ValueError(f"{v} is neither a fraction below 1 (0.05: 5% of the rows) nor a whole row count (100)")
        return v

    @field_validator("datasets", "test_datasets", "pretraining_dataset", mode="before")
    @classmethod
    def _one_as_list(cls, v: Any, info: Any) -> Any:
        if v is None and info.field_name == "datasets":
            return []  # `datasets:` left empty, as in pretraining configs
        return [v] if isinstance(v, dict) else v
