"""Credentials of network sources: named in the sources file, never written in it.

    token: {env: MOODLE_TOKEN}            # an environment variable
    token: {prefect_secret: moodle-token} # a Prefect Secret block

The value is read when the connector opens and kept only in memory; it is never logged,
never stored in the warehouse, and never part of an error message.
"""

from __future__ import annotations

import os
from typing import Any

from connectors.base import SourceError


def resolve_secret(spec: Any, where: str) -> str:
    """The secret described by `spec` (see above); `where` names the setting in errors,
    e.g. 'source moodle-prod: token'. Line breaks around it are dropped: an env file or a
    mounted secret often ends with a newline, which no token or password means, and which
    servers refuse as wrong credentials (spaces are kept: a password may end with one)."""
    value = _read_secret(spec, where)
    if not isinstance(value, str):
        # a Prefect Secret block may hold JSON
        raise SourceError(f"{where}: the secret is not text ({type(value).__name__}); store "
                          f"the token or password itself in it")
    return value.strip("\r\n")


def _read_secret(spec: Any, where: str) -> str:
    if isinstance(spec, str):
        raise SourceError(
            f"{where}: write credentials as a reference, not in the file: "
            f"{{env: VARIABLE_NAME}} or {{prefect_secret: block-name}}")
    if not isinstance(spec, dict) or len(spec) != 1 or not set(spec) <= {"env", "prefect_secret"}:
        raise SourceError(f"{where}: expected {{env: VARIABLE_NAME}} or "
                          f"{{prefect_secret: block-name}}, got {spec!r}")
    if "env" in spec:
        value = os.environ.get(str(spec["env"]))
        if not value or not value.strip("\r\n"):
            raise SourceError(f"{where}: the environment variable {spec['env']} is not set; "
                              f"export it before the sync (e.g. export {spec['env']}=...)")
        return value
    name = str(spec["prefect_secret"])
    try:
        from prefect.blocks.system import Secret
        return Secret.load(name).get()
    except Exception as exc:  # the block's value must not leak into the message
        raise SourceError(f"{where}: cannot read the Prefect Secret block {name!r} "
                          f"({type(exc).__name__}); create it with "
                          f"`prefect block create secret` or in the UI") from None


def describe_secret(spec: Any) -> str:
    """Where a secret comes from, for errors that must say what to fix (never its value)."""
    if isinstance(spec, dict) and "env" in spec:
        return f"the environment variable {spec['env']}"
    if isinstance(spec, dict) and "prefect_secret" in spec:
        return f"the Prefect Secret block {spec['prefect_secret']!r}"
    return "the configured secret"
