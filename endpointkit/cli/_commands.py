"""The command table: each command's name and the function that runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from endpointkit.cli._changes import (
    cmd_deploy,
    cmd_promote,
    cmd_rollback,
    cmd_rollout,
    cmd_scale,
    cmd_traffic,
    cmd_undeploy,
)
from endpointkit.cli._consume import cmd_consume
from endpointkit.cli._export import cmd_export, cmd_tf
from endpointkit.cli._inspect import cmd_history, cmd_list, cmd_status
from endpointkit.cli._invoke import cmd_invoke, cmd_result
from endpointkit.cli._lifecycle import cmd_apply, cmd_destroy, cmd_plan

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "plan": cmd_plan,
    "apply": cmd_apply,
    "destroy": cmd_destroy,
    "status": cmd_status,
    "list": cmd_list,
    "deploy": cmd_deploy,
    "rollout": cmd_rollout,
    "traffic": cmd_traffic,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "undeploy": cmd_undeploy,
    "scale": cmd_scale,
    "invoke": cmd_invoke,
    "result": cmd_result,
    "consume": cmd_consume,
    "history": cmd_history,
    "export": cmd_export,
    "tf": cmd_tf,
}
