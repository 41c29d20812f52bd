"""`newtune inference`: answer with the trained model in output_dir, in the prompt format it was trained with."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newtune.config.run import RunConfig
from newtune.data.types import Tokenizer
from newtune.errors import ModelError
from newtune.export.artifacts import describe_prompt_format, read_prompt_format, trained_tokenizer
from newtune.export.prompt import Turn, prompt_ids
from newtune.feedback import Waiting

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("newtune.export")
EXIT_WORDS = ("/exit", "/quit")


def run_inference(cfg: RunConfig, console: Console, out: Console, *, prompt: str | None, chat: bool,
                  max_new_tokens: int, temperature: float, base: bool, task_id: int | None = None) -> list[str]:
    """Answer `prompt` (stdin when None), or chat turn by turn with --chat; returns the answers.

    `task_id` (multitask prompt tuning): whose prompt answers; default the first dataset's task_id, else 0."""
    model, tokenizer, fmt = load_for_inference(cfg, console, base=base)
    stops = stop_token_ids(model, tokenizer, (cfg.data.eot_tokens or []) + fmt.get("stop", []))
    task = resolve_task_id(cfg, task_id)

    answer = Replier(model, tokenizer, fmt, cfg, out, stops=stops, task_id=task, max_new_tokens=max_new_tokens,
                     temperature=temperature)

    if not chat:
        text = prompt if prompt is not None else sys.stdin.read().strip()
        if not text:
            raise ModelError("--prompt", "no prompt given", "pass --prompt TEXT, pipe text on stdin, or use --chat")
        return [answer([Turn("user", text)])]
    console.print(f"[dim]chat with the {'base' if base else 'fine-tuned'} model; an empty line or /exit ends it[/dim]")
    history: list[Turn] = []
    replies: list[str] = []
    text = prompt
    while True:
        if text is None:
            try:
                text = console.input("[bold cyan]you>[/bold cyan] ")
            except EOFError:
                break
        if not text.strip() or text.strip() in EXIT_WORDS:
            break
        history.append(Turn("user", text))
        reply = answer(history, prefix="[bold green]model>[/bold green] ")
        history.append(Turn("assistant", reply))
        replies.append(reply)
        text = None
    return replies


class Replier:
    """Streams each reply to `out`; the first one shows a spinner until its first text (the model's first
    forward pass is the slow one) and then says how long that took."""

    def __init__(self, model: Any, tokenizer: Tokenizer, fmt: dict, cfg: RunConfig, out: Console, **options: Any) -> None:
        self.model, self.tokenizer, self.fmt, self.cfg, self.out, self.options = model, tokenizer, fmt, cfg, out, options
        self.replies = 0

    def __call__(self, history: list[Turn], prefix: str = "") -> str:
        ids = prompt_ids(self.fmt, history, self.tokenizer, self.cfg.data)
        wait = Waiting("first reply: time to its first text") if not self.replies else None
        started = False

        def on_text(t: str) -> None:
            nonlocal started
            if not started:
                started = True
                if wait is not None:
                    wait.stop()
                if prefix:
                    self.out.print(prefix, end="")
            self.out.print(t, end="", markup=False, highlight=False, emoji=False, soft_wrap=True)

        o = self.options
        try:
            reply = generate(self.model, self.tokenizer, ids, max_new_tokens=o["max_new_tokens"],
                             temperature=o["temperature"], stop_ids=o["stops"], task_id=o["task_id"], on_text=on_text)
        finally:
            if wait is not None:
                wait.stop()  # a failed or interrupted reply ends the spinner too
        if not started:  # an empty reply: still end the spinner and show the prefix
            on_text("")
        self.out.print()
        if wait is not None:
            wait.report()
        self.replies += 1
        return reply


def resolve_task_id(cfg: RunConfig, task_id: int | None) -> int:
    if task_id is None:
        return next((ds.task_id for ds in cfg.data.datasets if ds.task_id is not None), 0)
    if cfg.adapter.adapter != "multitask_prompt_tuning":
        raise ModelError("--task-id", "--task-id picks the task of a multitask prompt; this run has "
                         f"adapter: {cfg.adapter.adapter}", "drop --task-id")
    if not 0 <= task_id < cfg.adapter.peft_num_tasks:
        raise ModelError("--task-id", f"task {task_id} is not one of the {cfg.adapter.peft_num_tasks} tasks",
                         f"choose 0 to {cfg.adapter.peft_num_tasks - 1}")
    return task_id


def load_for_inference(cfg: RunConfig, console: Console, *, base: bool) -> tuple[Any, Tokenizer, dict]:
    """(model in eval mode, tokenizer, prompt format) from output_dir, or the base model with `base`."""
    from newtune.model.load import load_model

    trained = Path(cfg.train.output_dir)
    has_adapter = (trained / "adapter_config.json").exists()
    has_full = (trained / "config.json").exists()
    if not base and not (has_adapter or has_full):
        raise ModelError("output_dir", f"{trained} holds no trained model (no adapter_config.json or config.json)",
                         "run `newtune train CONFIG` first, or pass --base to answer with the base model")
    tokenizer = trained_tokenizer(trained, cfg)
    fmt = read_prompt_format(trained)
    if fmt is None:
        fmt = describe_prompt_format(cfg.data, tokenizer)
        if fmt["kind"] == "chat":
            tokenizer.chat_template = fmt.pop("template")
    dtype = inference_dtype()
    if not base and has_full and not has_adapter:
        console.print(f"[dim]model: fully fine-tuned weights in {trained}[/dim]")
        model = load_full(trained, dtype, cfg.model.trust_remote_code)
    else:
        model = load_model(cfg.model, tokenizer, dtype=dtype, device=device())
        if not base:
            from peft import PeftModel

            console.print(f"[dim]model: base {cfg.model.base_model or 'embedded SmolLM2-135M-Instruct'} "
                          f"+ adapter in {trained}[/dim]")
            with warnings.catch_warnings():  # peft 0.21 calls transformers' deprecated is_gradient_checkpointing
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                model = PeftModel.from_pretrained(model, trained)
        else:
            console.print(f"[dim]model: base {cfg.model.base_model or 'embedded SmolLM2-135M-Instruct'}[/dim]")
    model.eval()
    return model, tokenizer, fmt



def load_full(d: Path, dtype: Any, trust_remote_code: bool) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(d, dtype=dtype, trust_remote_code=trust_remote_code).to(device())


def device() -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def inference_dtype() -> Any:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def stop_token_ids(model: Any, tokenizer: Tokenizer, eot_tokens: list[str] | None) -> list[int]:
    """EOS, the model's generation EOS ids, and the configured end-of-turn tokens."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    gen = getattr(model, "generation_config", None)
    extra = getattr(gen, "eos_token_id", None)
    ids += extra if isinstance(extra, list) else [extra] if extra is not None else []
    for tok in eot_tokens or []:
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is not None and tid != tokenizer.unk_token_id:
            ids.append(tid)
    return list(dict.fromkeys(ids))


def generate(model: Any, tokenizer: Tokenizer, ids: list[int], *, max_new_tokens: int, temperature: float,
             stop_ids: list[int], on_text: Any = None, task_id: int = 0) -> str:
    """Generate after `ids`, streaming decoded text to `on_text`; greedy when temperature is 0.

    `task_id`: the task whose prompt a multitask prompt-tuning adapter uses."""
    import torch
    from transformers import TextStreamer

    class Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if on_text is not None and text:
                on_text(text)

    dev = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=dev)
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    options = {"max_new_tokens": max_new_tokens, "eos_token_id": stop_ids or None,
               "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop_ids or [0])[0],
               "streamer": Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True), **sampling}
    with torch.no_grad():
        if soft_prompt_config_of(model) is not None:
            new = soft_prompt_generate(model, input_ids, task_id=task_id, **options)
        else:
            new = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **options)[0, len(ids):]
    return tokenizer.decode(new, skip_special_tokens=True)


def soft_prompt_config_of(model: Any) -> Any:
    """The active peft config of a soft-prompt model (prompt, prefix, p-tuning, multitask), else None."""
    cfg = getattr(model, "active_peft_config", None)
    return cfg if getattr(cfg, "is_prompt_learning", False) else None


def soft_prompt_generate(model: Any, input_ids: Any, *, task_id: int = 0, **options: Any) -> Any:
    """New token ids after `input_ids` (one row) from a soft-prompt peft model, through the base model's generate.

    peft 0.21's `PeftModel.generate` injects the prompt through `past_key_values`, which transformers 5 renamed
    `cache` in generation: the prefix is dropped (prefix tuning answers like the base model) and the virtual
    tokens are prepended again at every step (prompt and p-tuning). Here the virtual tokens go in as the
    training forward puts them: prompt embeddings before the input embeddings, or the prefix as a
    pre-filled cache whose positions a placeholder row covers (generate treats cached positions as given).
    """
    import torch
    from peft import PeftType

    cfg = soft_prompt_config_of(model)
    base = model.get_base_model()
    n_virtual = cfg.num_virtual_tokens
    if cfg.peft_type == PeftType.PREFIX_TUNING:
        cache = model.get_prompt(batch_size=1)
        placeholder = torch.zeros((1, n_virtual), dtype=input_ids.dtype, device=input_ids.device)
        full = torch.cat([placeholder, input_ids], dim=1)
        out = base.generate(input_ids=full, attention_mask=torch.ones_like(full), cache=cache, **options)
        return out[0, full.shape[1]:]
    task_ids = torch.tensor([task_id], device=input_ids.device) if cfg.peft_type == PeftType.MULTITASK_PROMPT_TUNING else None
    embeds = model.word_embeddings(input_ids)
    prompts = model.get_prompt(batch_size=1, task_ids=task_ids).to(embeds.dtype)
    embeds = torch.cat([prompts, embeds], dim=1)
    mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
    return base.generate(inputs_embeds=embeds, attention_mask=mask, **options)[0]
