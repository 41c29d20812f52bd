"""What a conversation trains: message flags, roles_to_train, train_on_inputs, and EOS/EOT tokens.

The rules are axolotl 0.21.0's (prompt_strategies/chat_template.py):

- a message's own flag (message_field_training) wins; else a non-empty training_detail trains it;
  else it is trained when train_on_inputs is set or its role is in roles_to_train (default: assistant);
- after each located message, the first EOT token (eot_tokens, default the EOS token) and the first
  EOS token within 3 tokens of its end are candidates: `all` trains every one, `turn` those after
  trained messages, `last` only the last one found, `none` none. train_on_eot defaults to train_on_eos,
  which defaults to `turn`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newtune.data.types import Message, Tokenizer
from newtune.errors import DataError

# The role aliases axolotl applies when a dataset sets no `roles:`.
DEFAULT_ROLES: dict[str, str] = {
    "human": "user",
    "user": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "system": "system",
    "tool": "tool",
}
EOT_MAX_GAP = 3  # tokens allowed between a message's end and its EOT/EOS token (template padding)


def role_aliases(roles: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
    """`roles: {user: [human, user]}` → {"human": "user", "user": "user"}; targets also map to themselves."""
    if not roles:
        return dict(DEFAULT_ROLES)
    aliases = {target: target for target in roles}
    aliases.update({src: target for target, sources in roles.items() for src in sources})
    return aliases


@dataclass(frozen=True, slots=True)
class TrainOn:
    """The resolved training rules of one dataset."""

    train_on_inputs: bool
    roles_to_train: frozenset[str]
    eos: str  # all | turn | last | none
    eot: str
    eot_tokens: tuple[str, ...]  # texts of single-token EOT markers
    eos_token: str | None

    def message_trained(self, m: Message) -> bool:
        if m.train is not None:
            return bool(m.train)
        if m.train_detail is not None:
            return bool(m.train_detail)
        return self.train_on_inputs or m.role in self.roles_to_train

    @property
    def locate_all(self) -> bool:
        """Untrained messages must be located too (their EOT/EOS may be trained)."""
        return self.eos == "all" or self.eot == "all"


def resolve(opts: object, train_on_inputs: bool, eot_tokens: Sequence[str] | None, roles: Mapping[str, str],
            template: str, tokenizer: Tokenizer, extra_roles_to_train: Sequence[str] = ()) -> TrainOn:
    """The dataset's TrainOn from its keys, the top-level eot_tokens, and the tokenizer's EOS token."""
    eos_token = getattr(tokenizer, "eos_token", None)
    rtt = getattr(opts, "roles_to_train", None)
    rtt = ["assistant"] if rtt is None else list(rtt)
    rtt_mapped = frozenset(roles.get(r, r) for r in [*rtt, *extra_roles_to_train])
    eos = getattr(opts, "train_on_eos", None) or "turn"
    eot = getattr(opts, "train_on_eot", None) or eos
    eots = _check_eot_tokens(list(eot_tokens) if eot_tokens is not None else [eos_token] if eos_token else [],
                             template, tokenizer, eos_token)
    if eos_token in eots and eos != eot:
        raise DataError(
            "train_on_eot",
            f"train_on_eos ({eos}) and train_on_eot ({eot}) disagree, but the EOS token {eos_token!r} is also "
            f"an EOT token (eot_tokens: {list(eots)})",
            "set them to the same value, or leave train_on_eot unset",
        )
    return TrainOn(train_on_inputs, rtt_mapped, eos, eot, eots, eos_token)


def _check_eot_tokens(eots: list[str], template: str, tokenizer: Tokenizer, eos_token: str | None) -> tuple[str, ...]:
    """Keep the EOT tokens the template writes; each must be one token (as axolotl requires)."""
    if len(eots) == 1 and eots[0] == eos_token:
        kept = eots
    else:
        kept = [t for t in eots if t in template]
    single = []
    for t in kept:
        ids = tokenizer.encode(t, add_special_tokens=False)  # type: ignore[attr-defined]
        if len(ids) > 1 and not (len(eots) == 1 and eots[0] == eos_token):
            raise DataError(
                "eot_tokens", f"EOT token {t!r} is encoded as {len(ids)} tokens {ids}",
                f"add it under `tokens:` (tokens: [{t!r}]) so it is one token, or list a single-token EOT marker",
            )
        if len(ids) == 1:
            single.append(t)
    return tuple(single)


def special_positions(located: Sequence[tuple[bool, int | None, int | None]], policy: TrainOn) -> set[int]:
    """Which EOT/EOS occurrences are trained. `located`: per located message (trained, eot_pos, eos_pos).

    Positions are whatever the caller uses (character offsets); None means not found after that message.
    """
    out: set[int] = set()
    last_eot = last_eos = None
    for trained, eot_pos, eos_pos in located:
        for pos, mode in ((eot_pos, policy.eot), (eos_pos, policy.eos)):
            if pos is not None and (mode == "all" or (mode == "turn" and trained)):
                out.add(pos)
        last_eot = eot_pos if eot_pos is not None else last_eot
        last_eos = eos_pos if eos_pos is not None else last_eos
    if policy.eot == "last" and last_eot is not None:
        out.add(last_eot)
    if policy.eos == "last" and last_eos is not None:
        out.add(last_eos)
    return out
