"""`invoke`: send one request to an endpoint and print the answer (or stream it, or queue it);
`result`: a queued request's status and answer."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from endpointkit.cli._codes import UsageProblem
from endpointkit.cli._inputs import endpoint_for, json_arg
from endpointkit.cli._output import output_format, print_json

if TYPE_CHECKING:
    from endpointkit.async_invocation import AsyncInvocation
    from endpointkit.invocation import InvokeResult


def cmd_invoke(args: argparse.Namespace) -> int:
    from endpointkit.invocation import encode_instances

    if args.instances is not None:
        instances = json_arg(args.instances, "--instances")
        if not isinstance(instances, list):
            raise UsageProblem(
                f"--instances must be a JSON list, one item per prediction (got a JSON "
                f"{type(instances).__name__}); e.g. --instances '[[5.1, 3.5, 1.4, 0.2]]'"
            )
        body = encode_instances(instances)
    elif args.data is not None:
        body = args.data.encode()
    elif args.file is not None:
        try:
            if args.file == "-":
                body = sys.stdin.buffer.read()
            else:
                with open(args.file, "rb") as handle:
                    body = handle.read()
        except OSError as exc:
            raise UsageProblem(f"cannot read {args.file!r}: {exc.strerror}") from None
    else:
        raise UsageProblem("invoke needs --instances, --data or --file")
    if args.stream:
        return _invoke_stream(args, body)
    if args.queued:
        return _invoke_async(args, body)
    result = endpoint_for(args).invoke(
        body, accept=args.accept, inference_id=args.inference_id, **_request(args)
    )
    _print_result(args, result)
    return 0


def _print_result(args: argparse.Namespace, result: InvokeResult, **extra: Any) -> None:
    if output_format(args) == "json":
        decoded = result.decode()
        print_json(
            {
                **extra,
                "version": result.version,
                "content_type": result.content_type,
                "body": decoded if not isinstance(decoded, bytes) else decoded.hex(),
                "custom_attributes": result.custom_attributes,
            }
        )
    else:
        text = result.body.decode("utf-8", "replace")
        print(text)
        if result.version:
            print(f"(served by {result.version})", file=sys.stderr)


def _invoke_async(args: argparse.Namespace, body: bytes) -> int:
    """Queue the request; print its id and where the answer will be written."""
    if args.timeout is not None:
        raise UsageProblem("--timeout applies to an answer; with --async use 'result --wait'")
    job = endpoint_for(args).invoke_async(
        body,
        accept=args.accept,
        content_type=args.content_type,
        version=args.target_version,
        custom_attributes=args.custom_attributes,
        inference_id=args.inference_id,
    )
    if output_format(args) == "json":
        print_json(_job_dict(job))
    else:
        print(job.inference_id)
        note = " (already queued: nothing new was queued)" if job.duplicate else ""
        print(f"queued{note}; the answer will be at {job.output_location}", file=sys.stderr)
        print(
            f"read it with: endpointkit result {job.inference_id} --endpoint {job.endpoint}",
            file=sys.stderr,
        )
    return 0


def cmd_result(args: argparse.Namespace) -> int:
    """Look once (or wait up to --wait seconds); print the status, and the answer once done.
    A failed request exits as its error does (a model error: 7); still queued after --wait:
    5 when waiting was asked for, else 0 with the status printed."""
    job = endpoint_for(args).invocation(args.inference_id)
    if args.wait > 0:
        result = job.result(timeout=args.wait)  # raises the request's error, or Timeout
        _print_result(args, result, **_job_dict(job), status="Completed")
        return 0
    outcome = job.outcome()
    if outcome.status.done:
        _print_result(args, job.result(timeout=0), **_job_dict(job), status=str(outcome.status))
        return 0
    if output_format(args) == "json":
        print_json({**_job_dict(job), "status": str(outcome.status), "attempts": outcome.attempts})
    else:
        print(outcome.status)
        print(f"the answer will be at {job.output_location}", file=sys.stderr)
    return 0


def _job_dict(job: AsyncInvocation) -> dict[str, Any]:
    return {
        "endpoint": job.endpoint,
        "inference_id": job.inference_id,
        "output_location": job.output_location,
        "failure_location": job.failure_location,
        "duplicate": job.duplicate,
    }


def _request(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of invoke and invoke_stream from the flags; not accept, whose default
    differs between the two."""
    return {
        "content_type": args.content_type,
        "version": args.target_version,
        "custom_attributes": args.custom_attributes,
        "timeout": args.timeout,
    }


def _invoke_stream(args: argparse.Namespace, body: bytes) -> int:
    """Print each chunk the moment it arrives (text: raw bytes; json: one line per chunk)."""
    import json

    from endpointkit.invocation import EVENT_STREAM

    as_json = output_format(args) == "json"
    out = sys.stdout.buffer
    with endpoint_for(args).invoke_stream(
        body, accept=args.accept or EVENT_STREAM, **_request(args)
    ) as stream:
        if stream.version and not as_json:
            print(f"(served by {stream.version})", file=sys.stderr, flush=True)
        for chunk in stream:
            if as_json:
                line = {"version": stream.version, "chunk": chunk.decode("utf-8", "replace")}
                out.write(json.dumps(line).encode() + b"\n")
            else:
                out.write(chunk)
            out.flush()
    if not as_json:
        out.write(b"\n")
        out.flush()
    return 0
