"""The CLI's logging: newtune's INFO lines on rank 0 only; library notices newtune handled silenced."""

from __future__ import annotations

import logging
import warnings

from newtune import cli


def test_only_rank_0_logs_info(monkeypatch):
    logger = logging.getLogger("newtune")
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    try:
        monkeypatch.setenv("RANK", "1")
        with warnings.catch_warnings():
            cli.setup_logging()
        assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING)
        monkeypatch.setenv("RANK", "0")
        with warnings.catch_warnings():
            cli.setup_logging()
        assert logger.isEnabledFor(logging.INFO)
    finally:
        logger.setLevel(logging.INFO)


def test_handled_notices_are_silenced_unless_verbose(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cli.setup_logging()
        warnings.warn("Position ids are not supported for parameter efficient tuning. Ignoring position ids.", UserWarning, stacklevel=1)
        warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["something else"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cli.setup_logging(verbose=True)
        warnings.warn("Position ids are not supported for parameter efficient tuning.", UserWarning, stacklevel=1)
    assert len(seen) == 1
    gguf = logging.getLogger("transformers.quantizers.quantizer_gguf")
    record = gguf.makeRecord(gguf.name, logging.WARNING, "f", 1, "Loading a GGUF checkpoint with its weights packed is "
                             "fastest in float32", None, None)
    assert not gguf.filter(record)
