"""Where newtune writes (output_dir, dataset_prepared_path, --dump): refused up front when an existing file
is in the way, before any work and before anything is created."""

from __future__ import annotations

from pathlib import Path


def blocking_file(path: Path) -> Path | None:
    """The existing non-directory at `path` or on the way to it, which a directory there would need to replace."""
    path = Path(path).expanduser()
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            return None if part.is_dir() else part
    return None


def directory_problem(key: str, value: str | None) -> str | None:
    """`key: value` names a directory newtune creates: a problem if a file is in the way."""
    if not value:
        return None
    blocker = blocking_file(Path(value))
    if blocker is None:
        return None
    if blocker == Path(value).expanduser():
        return f"{key}: {value} is a file, not a directory; newtune writes a directory there: choose another path"
    return f"{key}: {value} cannot be created: {blocker} is a file; choose another path, or move the file"


GGUF_MAGIC = b"GGUF"
GIT_LFS_POINTER = b"version https://git-lfs"


def looks_like_path(src: str) -> bool:
    """'./x', '/x', '~/x' or 'a/b/c' are paths; 'gpt2' and 'org/name' may be hub ids."""
    return src.startswith((".", "/", "~")) or src.count("/") > 1


def model_path_missing(value: str | None) -> bool:
    """`base_model` (or tokenizer_config, base_model_config) names a local path, .gguf file or directory,
    that does not exist; a hub id (`gpt2`, `org/name`) is never a missing path."""
    if not value or value.startswith("embedded:"):
        return False
    path = Path(value).expanduser()
    return (path.suffix == ".gguf" or looks_like_path(value)) and not path.exists()


def model_not_found(key: str, value: str) -> tuple[str, str, str]:
    """(where, problem, hint) of a missing model path, as preprocess and train report it."""
    kind = "GGUF file " if Path(value).suffix == ".gguf" else ""
    relative = "" if Path(value).expanduser().is_absolute() else f" (relative to {Path.cwd()})"
    return (key, f"{kind}{value} not found{relative}",
            "give an existing model directory (with config.json), a .gguf file, or a hub id (org/name)")


def model_source_problem(key: str, value: str | None) -> str | None:
    """`base_model` / `tokenizer_config` naming an existing local path that cannot be a model: a file that is not
    a .gguf (model.safetensors instead of its directory), a .gguf that is not GGUF (a git-lfs pointer), a
    directory named .gguf. A missing path is not one (it may be made later; check warns)."""
    if not value or value.startswith("embedded:") or model_path_missing(value):
        return None
    path = Path(value).expanduser()
    if path.suffix == ".gguf" or (looks_like_path(value) and not path.is_dir()):
        if path.is_dir():
            return f"{key}: {value} is a directory, not a .gguf file"
        if path.suffix != ".gguf":
            return (f"{key}: {value} is a file; give the model's directory (with config.json), a .gguf file "
                    "or a hub id")
        with open(path, "rb") as f:
            head = f.read(64)
        if not head.startswith(GGUF_MAGIC):
            lfs = " (a git-lfs pointer: fetch the real file with `git lfs pull`)" if head.startswith(GIT_LFS_POINTER) else ""
            return f"{key}: {value} is not a GGUF file: it does not start with the GGUF magic bytes{lfs}"
    return None
