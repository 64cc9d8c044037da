"""The answers waitress gives by itself, before the application sees a
request (a malformed request, headers or a body over the limit, a request
too slow to arrive), in the API's JSON envelope (spec §3) with the same
security and CORS headers as every other answer.

waitress builds these from an ``Error`` object it stores on the request
parser; ``EnvelopeParser.error`` turns each one into an ``EnvelopeError``
as it is stored, whichever code path stores it. The parser also answers
two things waitress would otherwise leave waiting: a request head with a
bare LF line end (waitress only ends a head at CRLF CRLF, so it waited for
more), and an oversized body announced with ``Expect: 100-continue``
(waitress said "100 Continue" and read the body up to the limit first).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from http import HTTPStatus

from waitress.parser import HTTPRequestParser, ParsingError
from waitress.task import ErrorTask
from waitress.utilities import (
    BadRequest,
    Error,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    ServerNotImplemented,
)

from services.api.web.body import MAX_BODY_BYTES
from services.api.web.errors import JSON_CONTENT_TYPE, STATUS_BY_CODE, dumps
from services.api.web.headers import CommonHeaders

# waitress's default, kept: long URLs and many headers reach the application
# (tests/node/test_bad_input_limits.py); the header timeout bounds a slow one.
MAX_HEADER_BYTES = 256 * 1024
BARE_LF = re.compile(rb"(?<!\r)\n")
# waitress joins a repeated header's lines with string +=, which takes time
# growing with the square of the head: 50,000 repeats of "A:b" held a
# worker's event loop for 0.7 s. A head this large is counted first (the
# usual one, a few hundred bytes, is not), and a name repeated more often
# than any client needs is refused.
REPEAT_SCAN_BYTES = 16 * 1024
MAX_HEADER_REPEATS = 100


class EnvelopeError(Error):
    """A waitress error answer rendered as ``{"success":false,...}``; its
    status is the code's in ``STATUS_BY_CODE`` (so every code it can send
    is registered and documented there)."""

    def __init__(self, code: str, msg: str):
        super().__init__(msg)
        self.code = STATUS_BY_CODE[code]  # waitress's name for the status
        self.reason = HTTPStatus(self.code).phrase
        self.api_code = code
        self.msg = msg

    def to_response(self, ident=None):
        body = dumps({"success": False, "code": self.api_code, "msg": self.msg}).encode()
        headers = [("Content-Type", JSON_CONTENT_TYPE), *CommonHeaders.STATIC]
        return f"{self.code} {self.reason}", headers, body


def request_timeout(seconds: float) -> EnvelopeError:
    return EnvelopeError(
        "REQUEST_TIMEOUT", f"The request did not arrive within {seconds:g} seconds"
    )


def as_envelope(error: Error) -> EnvelopeError:
    """The envelope version of one of waitress's error objects."""
    if isinstance(error, EnvelopeError):
        return error
    # Subclasses first: both are BadRequests to waitress.
    if isinstance(error, RequestHeaderFieldsTooLarge):
        return EnvelopeError(
            "HEADERS_TOO_LARGE", f"Request headers are larger than {MAX_HEADER_BYTES} bytes"
        )
    if isinstance(error, RequestEntityTooLarge):
        return EnvelopeError(
            "PAYLOAD_TOO_LARGE", f"Request body is larger than {MAX_BODY_BYTES} bytes"
        )
    if isinstance(error, BadRequest):
        # waitress's detail names the fault ("Invalid header"), but a few
        # also quote the offending line ('Malformed header line "..."'): the
        # quote is cut, so no byte of the request is echoed.
        fault = str(error.body).split(' "', 1)[0]
        return EnvelopeError("INVALID_REQUEST", f"Malformed HTTP request: {fault}")
    if isinstance(error, ServerNotImplemented):
        return EnvelopeError("NOT_IMPLEMENTED", str(error.body))
    # InternalServerError, or an error class of a newer waitress: never a traceback.
    return EnvelopeError("UNKNOWN_ERROR", "Internal server error")


def _most_repeated(header_plus: bytes) -> int:
    """How often the most repeated header name occurs in a request head."""
    lines = header_plus.split(b"\n")[1:]
    counts = Counter(line.split(b":", 1)[0].strip().lower() for line in lines if line.strip())
    return max(counts.values(), default=0)


class EnvelopeParser(HTTPRequestParser):
    """waitress's request parser, with errors in the envelope, the time the
    request's first byte arrived (for the header timeout, limits.py) and
    the two early answers of the module doc."""

    _error: EnvelopeError | None = None
    repeats_refused = False

    def __init__(self, adj):
        super().__init__(adj)
        # waitress makes a parser when a request's first bytes arrive.
        self.started = time.monotonic()

    @property
    def error(self) -> EnvelopeError | None:
        return self._error

    @error.setter
    def error(self, value: Error | None) -> None:
        self._error = None if value is None else as_envelope(value)

    def parse_header(self, header_plus: bytes) -> None:
        if (
            len(header_plus) > REPEAT_SCAN_BYTES
            and _most_repeated(header_plus) > MAX_HEADER_REPEATS
        ):
            self.repeats_refused = True
            raise ParsingError("too many repeated headers")  # answered 431 by received()
        super().parse_header(header_plus)

    def received(self, data: bytes) -> int:
        in_head = self.body_rcv is None and not self.completed
        before = self.header_plus[-1:]
        consumed = super().received(data)
        if self.repeats_refused:
            self.error = EnvelopeError(
                "HEADERS_TOO_LARGE",
                f"A request header is repeated more than {MAX_HEADER_REPEATS} times",
            )
        if in_head and not self.headers_finished and not self.completed:
            # Every byte of ``data`` went into the unfinished head.
            if BARE_LF.search(before + data, len(before)):
                self.error = BadRequest("Bare LF found in the request head (lines end with CRLF)")
                self.completed = True
        if self.error is not None:
            self.expect_continue = False
        return consumed


class CountedErrorTask(ErrorTask):
    """Sends one of the answers above and counts it in /metrics
    (``ksnode_http_rejected_requests_total``, connection_metrics.py)."""

    def execute(self):
        super().execute()
        error = self.request.error
        if isinstance(error, EnvelopeError):
            self.channel.server.metrics.server_answer(error.code, error.api_code)
