"""One AWS session for the SageMaker backend: a client per service, and one way to call it.

Every call goes through `Aws.call`: botocore errors become endpointkit errors in `aws_errors`
(`_errors.py`), and control-plane calls are retried by `retry.control_plane` (jittered backoff
on Throttled/Unavailable only). botocore's own retries are off, so that policy and its
deadline are the only ones. boto3 is imported on the first call, never by `import endpointkit`.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from endpointkit.adapters.sagemaker._errors import BACKEND, aws_errors
from endpointkit.errors import (
    EndpointKitError,
    MissingDependency,
    NotFound,
    Retryable,
    Timeout,
    ValidationError,
)
from endpointkit.retry import Clock, Sleep, control_plane

__all__ = ["Aws"]

T = TypeVar("T")


class Aws:
    """A boto3 session and its clients (one per service and read timeout), shared by threads."""

    def __init__(
        self,
        *,
        region: str | None,
        profile: str | None,
        credentials: Mapping[str, str | None],
        endpoint_url: str | None,
        runtime_endpoint_url: str | None,
        connect_timeout: float,
        read_timeout: float,
        max_pool_connections: int,
        retry_attempts: int,
        retry_deadline_s: float,
        sleep: Sleep,
        clock: Clock,
    ) -> None:
        self._region_setting = region
        self._profile = profile
        self._credentials = {k: v for k, v in credentials.items() if v}
        self._endpoint_url = endpoint_url
        self._runtime_endpoint_url = runtime_endpoint_url
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_pool = max_pool_connections
        self._retry_attempts = retry_attempts
        self._retry_deadline_s = retry_deadline_s
        self.sleep = sleep
        self.clock = clock
        #: Guards the clients here and the caches of the objects built on this one.
        self.lock = threading.RLock()
        self._session: Any = None
        self._clients: dict[tuple[str, float | None], Any] = {}

    def session(self) -> Any:
        with self.lock:
            if self._session is None:
                try:
                    import boto3
                except ImportError as exc:
                    raise MissingDependency(
                        "SageMaker support needs boto3.",
                        hint="pip install 'endpointkit[sagemaker]'",
                        backend=BACKEND,
                    ) from exc
                with aws_errors("connect"):
                    self._session = boto3.Session(
                        profile_name=self._profile,
                        region_name=self._region_setting,
                        **self._credentials,
                    )
            return self._session

    @property
    def region(self) -> str:
        """The AWS region in use (setting, AWS_REGION, or the profile's)."""
        region = self._region_setting or os.environ.get("AWS_REGION") or self.session().region_name
        if not region:
            raise ValidationError(
                "no AWS region is configured for the sagemaker backend.",
                hint="Pass the 'region' setting (--set region=eu-west-1) or set AWS_REGION.",
                backend=BACKEND,
            )
        return str(region)

    def client(self, service: str, read_timeout: float | None = None) -> Any:
        if read_timeout is not None:
            read_timeout = float(math.ceil(read_timeout))  # few distinct clients, not one a call
        key = (service, read_timeout)
        with self.lock:
            client = self._clients.get(key)
            if client is not None:
                return client
            from botocore.config import Config

            runtime = service == "sagemaker-runtime"
            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=self._connect_timeout,
                read_timeout=read_timeout or (self._read_timeout if runtime else 60.0),
                max_pool_connections=self._max_pool,
                user_agent_extra="endpointkit/0.1",
            )
            url = (self._runtime_endpoint_url or self._endpoint_url) if runtime else None
            url = url or self._endpoint_url
            session = self.session()
            with aws_errors("connect", region=self._region_setting):
                client = session.client(
                    service, region_name=self.region, endpoint_url=url, config=config
                )
            self._clients[key] = client
            return client

    def call(
        self,
        service: str,
        method: str,
        *,
        operation: str,
        endpoint: str | None = None,
        version: str | None = None,
        what: str | None = None,
        retry: bool = True,
        **kwargs: Any,
    ) -> Any:
        """One AWS call: errors translated, retried on Throttled/Unavailable if `retry`."""

        def attempt() -> Any:
            with aws_errors(
                operation, endpoint=endpoint, version=version, region=self.region, what=what
            ):
                return getattr(self.client(service), method)(**kwargs)

        if not retry:
            return attempt()
        return self.retrying(attempt)

    def pages(
        self,
        service: str,
        method: str,
        *,
        operation: str,
        endpoint: str | None = None,
        token_in: str = "NextToken",
        token_out: str = "NextToken",
        **request: Any,
    ) -> Iterator[dict[str, Any]]:
        """Each page of a listing `call`, following `token_out` of one page into `token_in`
        of the next request."""
        while True:
            page: dict[str, Any] = self.call(
                service, method, operation=operation, endpoint=endpoint, **request
            )
            yield page
            token = page.get(token_out)
            if not token:
                return
            request[token_in] = token

    def retrying(self, fn: Callable[[], T]) -> T:
        """`fn()` under the control-plane retry policy."""
        policy = control_plane(
            attempts=self._retry_attempts, deadline_s=self._retry_deadline_s, sleep=self.sleep
        )
        return policy(fn)

    def sm(self, method: str, *, operation: str, **kwargs: Any) -> Any:
        """`call` on the sagemaker service."""
        return self.call("sagemaker", method, operation=operation, **kwargs)

    def mutate(
        self,
        method: str,
        *,
        operation: str,
        endpoint: str,
        applied: Callable[[], bool],
        version: str | None = None,
        **kwargs: Any,
    ) -> None:
        """A mutating sagemaker call that is never re-sent blindly.

        An answer can be lost after SageMaker applied the change (a 5xx, a dropped
        connection); re-sending then meets an endpoint that is Updating (refused) or changes
        it twice. So every retry first asks `applied()` (does SageMaker already show the
        change?) and stops there if it does, and a last transient error or timeout is no
        error when `applied()` says the change went through.
        """
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and applied():
                return
            with aws_errors(operation, endpoint=endpoint, version=version, region=self.region):
                getattr(self.client("sagemaker"), method)(**kwargs)

        try:
            self.retrying(attempt)
        except (Retryable, Timeout):
            try:
                done = applied()
            except EndpointKitError:
                done = False  # cannot tell: the call's own error says more
            if not done:
                raise

    def exists(self, describe: str, endpoint: str, **key: Any) -> bool:
        """True if the sagemaker `describe` call finds the resource named by `key`."""
        try:
            self.sm(describe, operation="get", endpoint=endpoint, **key)
        except NotFound:
            return False
        return True

    def close(self) -> None:
        with self.lock:
            for client in self._clients.values():
                close = getattr(client, "close", None)
                if close is not None:
                    close()
            self._clients.clear()
