"""uv as ``create_env``'s installer: found beside Shipyard or on ``PATH``, and run with pip's
configuration, translated, instead of its own.

pip decides where packages come from on a machine (its config files and ``PIP_*`` variables:
index, extra indexes, find-links, constraints, certificates...) and uv reads none of that.
``pip_settings`` asks the new environment's pip for its effective ``install`` options and
``translate`` turns each one that differs from pip's default into uv's flag or variable, with
pip's way of choosing between indexes (the best match across all of them); a setting uv has
no equivalent for raises ``Untranslatable`` naming it. uv's own config files (``--no-config``)
and ``UV_*`` variables (except ``UV_CACHE_DIR``) are left out: the same machine gives the same
packages whichever installer runs.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.deploy._lock import clean_env

#: pip's default index, passed explicitly so no ``UV_*`` index setting can replace it.
PYPI = "https://pypi.org/simple"

#: uv's message when one requirement cannot be had ("... and you require six==0.0.1, we can
#: conclude that your requirements are unsatisfiable").
_REQUIRE = re.compile(r"you require ([A-Za-z0-9._-]+)==([^\s,]+)")
_ADDED = re.compile(r"^\s*\+ ([A-Za-z0-9._-]+)==")
_MARKS = ("error:", "cause:")

# pip options that change how pip works here, not what it installs (or, for ``compile``, only
# whether .pyc files are written now or at the first import: uv writes none).
_IGNORED = frozenset(
    {
        "cache_dir",
        "check_build_deps",
        "compile",
        "debug_mode",
        "disable_pip_version_check",
        "exists_action",
        "log",
        "no_clean",
        "no_color",
        "no_input",
        "no_python_version_warning",
        "progress_bar",
        "quiet",
        "require_venv",
        "root_user_action",
        "verbose",
        "warn_about_conflicts",
        "warn_script_location",
    }
)

# Run by the new environment's Python: pip's ``install`` options that its configuration
# (files and PIP_* variables) sets to something else than pip's own default, as JSON
# {dest: [flag, value]}. pip has no public API for this; a failure means "not translatable".
_PROBE = r"""
import json, optparse
from pip._internal.commands import create_command

def plain(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "no_binary") and hasattr(value, "only_binary"):
        return {"no_binary": sorted(value.no_binary), "only_binary": sorted(value.only_binary)}
    return repr(value)

# Two parsers: pip's callbacks change a default object (format_control) in place.
declared = vars(optparse.OptionParser.get_default_values(create_command("install").parser))
parser = create_command("install").parser
configured = vars(parser.get_default_values())
flags = {}
for group in [parser, *parser.option_groups]:
    for option in group.option_list:
        if option.dest and option.dest not in flags:
            flags[option.dest] = option.get_opt_string()
print(json.dumps({
    dest: [flags.get(dest, dest), plain(value)]
    for dest, value in configured.items()
    if plain(value) != plain(declared.get(dest))
}))
"""


class Untranslatable(Exception):
    """pip's configuration here cannot be given to uv (the message says which setting)."""


def find_uv() -> str | None:
    """The ``uv`` beside the running Python (``pip install uv`` into Shipyard's environment),
    else the one on ``PATH``; ``None`` when there is neither."""
    name = "uv" + (sysconfig.get_config_var("EXE") or "")
    here = Path(sysconfig.get_path("scripts")) / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("uv")


def pip_settings(python: str, env: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """The ``install`` options pip's configuration sets for ``python``'s pip, run with
    ``env``: ``{dest: (flag, value)}`` (``extra_index_urls: ("--extra-index-url", [...])``)."""
    try:
        done = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, env=dict(env), check=False
        )
    except OSError as exc:
        raise Untranslatable(f"pip's configuration could not be read: {exc}") from exc
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (IndexError, ValueError):
        found = None
    if not isinstance(found, dict):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Untranslatable(f"pip's configuration could not be read: {last[:200]}")
    return {str(dest): (str(pair[0]), pair[1]) for dest, pair in found.items()}


@dataclass(frozen=True)
class UvSettings:
    """pip's configuration as uv's arguments and environment variables."""

    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def translate(settings: Mapping[str, tuple[str, Any]]) -> UvSettings:
    """uv's arguments for pip's ``settings`` (from ``pip_settings``); ``Untranslatable``
    names the first setting uv has no equivalent for.

    >>> translate({"find_links": ("--find-links", ["/opt/wheels"])}).args[-2:]
    ('--find-links', '/opt/wheels')
    """
    index = settings.get("index_url", ("", PYPI))[1]
    args = ["--index-url", str(index), "--index-strategy", "unsafe-best-match"]
    env: dict[str, str] = {}
    each = {
        "extra_index_urls": "--extra-index-url",
        "find_links": "--find-links",
        "constraints": "--constraints",
        "trusted_hosts": "--allow-insecure-host",
    }
    variables = {"cert": "SSL_CERT_FILE", "client_cert": "SSL_CLIENT_CERT"}
    switches = {
        "no_index": ["--no-index"],
        "require_hashes": ["--require-hashes"],
        "pre": ["--prerelease", "allow"],  # pins name exact versions: no effect on them
    }
    for dest, (flag, value) in sorted(settings.items()):
        if dest in _IGNORED or dest == "index_url":
            continue
        if dest in each:
            for item in value or ():
                args += [each[dest], str(item)]
        elif dest in variables:
            env[variables[dest]] = str(value)
        elif dest == "proxy" and value:
            env |= {"HTTPS_PROXY": str(value), "HTTP_PROXY": str(value)}
        elif dest == "timeout":
            env["UV_HTTP_TIMEOUT"] = str(math.ceil(float(value)))
        elif dest == "retries":
            env["UV_HTTP_RETRIES"] = str(int(value))
        elif dest in switches:
            args += switches[dest] if value else []
        elif dest == "build_isolation" and not value:
            args.append("--no-build-isolation")
        elif dest == "keyring_provider" and value in ("disabled", "subprocess"):
            args += ["--keyring-provider", str(value)]
        elif dest == "format_control" and isinstance(value, dict):
            for name in value.get("no_binary", ()):
                args += ["--no-binary", str(name)]
            for name in value.get("only_binary", ()):
                args += ["--only-binary", str(name)]
        else:
            raise Untranslatable(
                f"pip is configured with {flag}={value!r} here, which uv has no equivalent for"
            )
    return UvSettings(args=tuple(args), env=env)


#: ``progress(message, done, total)``, as ``create_env`` takes it.
Progress = Callable[[str, int, int], None]


class Uv:
    """``uv pip install`` into the environment of ``python`` with pip's translated settings,
    streaming uv's output into ``progress``."""

    def __init__(self, binary: str, python: str, settings: UvSettings, progress: Progress):
        self.binary = binary
        self.python = python
        self.settings = settings
        self.progress = progress

    def env(self) -> dict[str, str]:
        """This environment without uv's own settings (but its cache), with pip's."""
        keep = {k: v for k, v in clean_env().items() if not k.startswith("UV_")}
        if "UV_CACHE_DIR" in os.environ:
            keep["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
        return keep | self.settings.env

    def install(self, args: Sequence[str], *, total: int = 0) -> tuple[int, str]:
        """``uv pip install ARGS``: uv's exit code and output (an ``OSError`` is code 127)."""
        cmd = [
            self.binary,
            "pip",
            "install",
            "--no-config",
            "--no-progress",
            "--color",
            "never",
            "--python",
            self.python,
            *self.settings.args,
            *args,
        ]
        lines: list[str] = []
        added = 0
        try:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env()
            )
        except OSError as exc:
            return 127, f"error: cannot run {self.binary}: {exc}"
        with proc:
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    lines.append(line)
                    found = _ADDED.match(line)
                    if found and total:
                        added += 1
                        self.progress(f"Installed {found.group(1)}", added, total)
            except BaseException:
                proc.kill()  # an interrupt stops uv too, before the venv is removed
                raise
            code = proc.wait()
        return code, "".join(lines)


def unsatisfiable(output: str) -> tuple[str, str] | None:
    """``(name, version)`` of the pin uv's resolver could not satisfy, if it says which."""
    found = _REQUIRE.search(output)
    return (found.group(1), found.group(2)) if found else None


def last_error(output: str) -> str:
    """uv's last ``error:``/``cause:`` line (or its last non-empty line), for one sentence."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    marked = [line.split(":", 1)[1].strip() for line in lines if line.startswith(_MARKS)]
    return (marked or lines or ["no output"])[-1]
