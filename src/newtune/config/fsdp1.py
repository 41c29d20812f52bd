"""FSDP1-style keys → axolotl 0.21's FSDP2 `fsdp_config`, each translation named in a warning.

axolotl 0.20+ refuses FSDP1 configs (top-level `fsdp:` list, `fsdp_version: 1`, `fsdp_sharding_strategy`, ...);
their meaning carries over to FSDP2, so newtune translates them (and `newtune migrate` writes the result).
What has no FSDP2 meaning (NO_SHARD, HYBRID_SHARD without sizes) is a problem, never dropped silently.
"""

from __future__ import annotations

from typing import Any

# FSDP1 sharding strategy → FSDP2's reshard_after_forward (torch's FSDP2 migration guide).
SHARDING = {"FULL_SHARD": True, "SHARD_GRAD_OP": False, "1": True, "2": False}
# FSDP1-only knobs that FSDP2 does by itself (prefetching, orig params, module-state sync): dropped, with a warning.
DROPPED = ("sync_module_states", "backward_prefetch", "backward_prefetch_policy", "limit_all_gathers",
           "use_orig_params", "forward_prefetch", "activation_checkpointing_offload")
# fsdp: list options of HF TrainingArguments / axolotl < 0.20.
LIST_OPTIONS = {"full_shard": ("reshard_after_forward", True), "shard_grad_op": ("reshard_after_forward", False),
                "offload": ("offload_params", True), "auto_wrap": ("auto_wrap_policy", "TRANSFORMER_BASED_WRAP")}


def translate(data: dict) -> tuple[dict, list[str], list[str]]:
    """(translated config, warnings, problems); `data` is left unchanged. FSDP2 configs pass as they are."""
    out = dict(data)
    fsdp_list = out.pop("fsdp", None)
    raw = out.get("fsdp_config")
    cfg: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    if not cfg and not fsdp_list:
        return data, [], []  # no FSDP asked for (an empty `fsdp:` asks for nothing)
    warnings: list[str] = []
    problems: list[str] = []
    for key in list(cfg):
        if key.startswith("fsdp_") and key != "fsdp_version":
            cfg[key[5:]] = cfg.pop(key)
            warnings.append(f"fsdp_config.{key} → fsdp_config.{key[5:]}")
    translate_version(out, cfg, warnings)
    translate_strategy(cfg, warnings, problems)
    if fsdp_list:  # after fsdp_config's own keys, which decide where both say something
        translate_list(fsdp_list, cfg, warnings, problems)
    for key in DROPPED:
        if key in cfg:
            cfg.pop(key)
            warnings.append(f"fsdp_config.{key} dropped: FSDP2 has no such option (it prefetches and syncs by itself)")
    if isinstance(cfg.get("transformer_layer_cls_to_wrap"), list):
        cfg["transformer_layer_cls_to_wrap"] = ",".join(cfg["transformer_layer_cls_to_wrap"])
    final = out.pop("fsdp_final_state_dict_type", None)
    if final is not None:
        cfg.setdefault("final_state_dict_type", final)
        warnings.append("fsdp_final_state_dict_type → fsdp_config.final_state_dict_type")
    out["fsdp_config"] = cfg
    return out, warnings, problems


def translate_version(out: dict, cfg: dict, warnings: list[str]) -> None:
    if "version" in cfg:
        cfg.setdefault("fsdp_version", cfg.pop("version"))
    versions = {str(v) for v in (cfg.get("fsdp_version"), out.get("fsdp_version")) if v is not None}
    if versions - {"2"}:
        warnings.append(f"fsdp_version: {', '.join(sorted(versions - {'2'}))} → 2 (FSDP1 configs run on FSDP2)")
    cfg["fsdp_version"] = 2
    if out.get("fsdp_version") is not None:
        out["fsdp_version"] = 2


def translate_strategy(cfg: dict, warnings: list[str], problems: list[str]) -> None:
    strategy = cfg.pop("sharding_strategy", None)
    if strategy is None:
        return
    name = str(strategy).upper()
    if name in SHARDING:
        cfg.setdefault("reshard_after_forward", SHARDING[name])
        warnings.append(f"fsdp_config.sharding_strategy: {strategy} → reshard_after_forward: {SHARDING[name]}")
    elif name in ("HYBRID_SHARD", "_HYBRID_SHARD_ZERO2", "4", "5"):
        problems.append(f"fsdp_config.sharding_strategy: {strategy} → set dp_replicate_size (replicas) and "
                        "dp_shard_size (processes per replica) instead")
    elif name in ("NO_SHARD", "3"):
        problems.append(f"fsdp_config.sharding_strategy: {strategy} shards nothing: remove fsdp_config (plain DDP)")
    else:
        problems.append(f"fsdp_config.sharding_strategy: unknown strategy '{strategy}'")


def translate_list(fsdp_list: Any, cfg: dict, warnings: list[str], problems: list[str]) -> None:
    items = fsdp_list.split() if isinstance(fsdp_list, str) else list(fsdp_list) if isinstance(fsdp_list, list) else []
    for item in items:
        if item not in LIST_OPTIONS:
            problems.append(f"fsdp: '{item}' has no FSDP2 translation (known: {', '.join(LIST_OPTIONS)})")
            continue
        key, value = LIST_OPTIONS[item]
        if key in cfg and cfg[key] != value:
            warnings.append(f"fsdp: [{item}] dropped: fsdp_config.{key}: {cfg[key]} decides")
        else:
            cfg[key] = value
            warnings.append(f"fsdp: [{item}] → fsdp_config.{key}: {value}")
