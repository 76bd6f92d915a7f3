"""Exit codes: the table every `--help` ends with, their constants, and which error gets which."""

from __future__ import annotations

EXIT_CODES = """\
exit codes:
  0    success
  1    any other error: the backend refused or failed (see the message), or
       'serve' could not start (port in use, model failed to load)
  2    invalid input: bad spec, flag or argument (nothing was changed)
  3    endpoint or version not found
  4    a deployment failed or was rolled back
  5    timed out waiting
  6    throttled or temporarily unavailable: retry later
  7    the model answered with an error (invoke)
  10   plan --detailed-exitcode: the plan has changes
  130  interrupted (Ctrl-C); a change already started may still be running:
       'endpointkit status NAME' shows where it is
  141  the output pipe was closed early (e.g. '| head'): the output was cut short,
       nothing else went wrong
"""

EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_DEPLOY, EXIT_TIMEOUT, EXIT_RETRY, EXIT_MODEL = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
)
EXIT_CHANGES = 10
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class UsageProblem(Exception):
    """A command-line mistake detected after parsing (bad KEY=VALUE, missing file...)."""


def exit_code(exc: BaseException) -> int:
    from endpointkit import errors

    table: list[tuple[type[BaseException], int]] = [
        (errors.ValidationError, EXIT_USAGE),
        (errors.NotFound, EXIT_NOT_FOUND),
        (errors.DeploymentFailed, EXIT_DEPLOY),
        (errors.RolledBack, EXIT_DEPLOY),
        (errors.Timeout, EXIT_TIMEOUT),
        (errors.Retryable, EXIT_RETRY),
        (errors.ModelError, EXIT_MODEL),
    ]
    return next((code for kind, code in table if isinstance(exc, kind)), EXIT_ERROR)
