"""`consume`: read requests from a queue, invoke an endpoint, store the answers
(endpointkit.consume); stops cleanly on SIGTERM and Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

from endpointkit.cli._inputs import endpoint_for
from endpointkit.cli._output import output_format

if TYPE_CHECKING:
    from endpointkit.consume import Event, Report


def cmd_consume(args: argparse.Namespace) -> int:
    """Consume until SIGTERM/SIGINT, --max-messages or --idle-exit; exit 0 then. An error that
    would fail every message (endpoint not found, access denied) exits with its code, its
    message back on the queue."""
    import json

    from endpointkit.consume import Consumer, open_sink, open_source

    as_json = output_format(args) == "json"
    aws = {"region": args.region} if args.region else {}
    endpoint = endpoint_for(args)
    on_aws = args.queue.startswith(("sqs://", "https://", "http://"))
    source = open_source(args.queue, **(aws if on_aws else {}))
    sink = open_sink(args.results, **(aws if args.results.startswith("s3://") else {}))

    def show(event: Event) -> None:
        if as_json:
            print(json.dumps(event.as_dict()), flush=True)
        else:
            where = f" -> {event.location}" if event.location else ""
            why = f" ({event.error})" if event.error and event.outcome != "stored" else ""
            print(f"{event.outcome} {event.message_id}{where}{why}", flush=True)

    consumer = Consumer(
        source,
        endpoint,
        sink,
        concurrency=args.concurrency,
        visibility_s=args.visibility_timeout,
        wait_s=args.wait,
        max_messages=args.max_messages,
        idle_exit_s=args.idle_exit,
        max_receives=args.max_receives or None,
        drain_s=args.drain_timeout,
        content_type=args.content_type,
        accept=args.accept,
        invoke_timeout=args.timeout,
        on_event=show,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        consumer.stop("signal")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    if not as_json:
        print(
            f"consuming {source.description} -> {endpoint.name} -> {sink.description} "
            f"({args.concurrency} at a time; SIGTERM or Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )
    try:
        report = consumer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        source.close()
        sink.close()
    _summary(report, as_json)
    if report.fatal is not None:
        raise report.fatal
    return 0


def _summary(report: Report, as_json: bool) -> None:
    import json

    if as_json:
        print(json.dumps({"summary": report.as_dict()}), flush=True)
        return
    print(
        f"stopped ({report.stopped_by}): {report.received} received, {report.stored} stored, "
        f"{report.error} errors, {report.skipped} already stored, {report.retry} back on the "
        f"queue to retry, {report.released} released unfinished",
        file=sys.stderr,
    )
