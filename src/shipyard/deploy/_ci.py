"""``ci_pipeline``: a GitHub Actions workflow or a GitLab CI pipeline that registers a model
on every change and validates the new version."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from shipyard.deploy._files import render
from shipyard.errors import AlreadyExists, InvalidInput

CI_SYSTEMS = {"github": Path(".github/workflows/shipyard.yml"), "gitlab": Path(".gitlab-ci.yml")}

# The step run when no --train script was named: it fails, saying what to do.
_PLACEHOLDER = (
    "echo 'Name the script that trains and registers the model: shipyard init --ci {ci} "
    "--train train.py (or edit this step).' >&2; exit 1"
)
# The newest version of MODEL, for `shipyard validate MODEL VERSION`.
_LATEST = (
    "shipyard models show {model} --json | python -c "
    "\"import json, sys; print(max(r['version'] for r in json.load(sys.stdin)))\""
)


def ci_pipeline(
    ci: str,
    *,
    train: str | None,
    model: str | None,
    install: str = "pip install -r requirements.txt",
) -> tuple[Path, str]:
    """The path (relative to the repository) and text of the ``ci`` pipeline.

    ``train`` is the script that trains and registers (run with ``python``); ``model``, when
    given, is validated after it (``shipyard validate``).

    >>> path, text = ci_pipeline("gitlab", train="train.py", model="churn")
    >>> str(path), "python train.py" in text
    ('.gitlab-ci.yml', True)
    """
    if ci not in CI_SYSTEMS:
        raise InvalidInput(f"--ci must be github or gitlab. Got '{ci}' instead.")
    train_command = f"python {shlex.quote(train)}" if train else _PLACEHOLDER.format(ci=ci)
    validate_command = ""
    if model:
        quoted = shlex.quote(model)
        latest = _LATEST.format(model=quoted)
        validate_command = f'shipyard validate {quoted} "$({latest})"'
    text = render(
        f"{ci}.yml.j2",
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
        install=install,
        train_command=_yaml_scalar(train_command),
        validate=bool(model),
        validate_command=_yaml_scalar(validate_command),
    )
    return CI_SYSTEMS[ci], text


def _yaml_scalar(command: str) -> str:
    """A shell command as one YAML scalar (single-quoted: no escapes but '')."""
    return "'" + command.replace("'", "''") + "'"


def write_ci(root: Path, ci: str, *, train: str | None, model: str | None, force: bool) -> Path:
    """Write the pipeline under ``root``; an existing one is kept unless ``force``."""
    if train is not None and not (root / train).is_file():
        raise InvalidInput(f"There is no training script '{train}' in {root}.")
    rel, text = ci_pipeline(ci, train=train, model=model)
    path = root / rel
    if path.exists() and not force:
        raise AlreadyExists(f"'{rel}' exists already: pass --force to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
