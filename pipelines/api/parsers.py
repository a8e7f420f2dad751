"""Request body parsers of the API: JSON and YAML, bounded (``config.bodies``).

DRF parses a body only when a view first reads ``request.data``, which every view does
after authentication and permissions (``APIView.initial``): an unauthenticated caller's
body is never parsed. These parsers also read at most ``CONVEYOR_MAX_BODY_BYTES`` (DRF's
own read as much as Content-Length says), refuse nesting deeper than
``config.bodies.MAX_DEPTH``, and YAML aliases. Every refusal is a 400 (413 for the size)
naming the limit.

The YAML is read as JSON-compatible data (dates stay strings, NaN and non-string
keys are refused), the same way ``manage.py import_pipeline`` and the admin read it.
"""

from rest_framework import exceptions
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser

from config.bodies import BodyRefused, check_depth, json_loads, read_bounded
from pipelines.documents import DocumentError, parse_yaml


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"


def _read(stream) -> bytes:
    try:
        return read_bounded(stream) if stream is not None else b""
    except BodyRefused as exc:
        raise BodyTooLarge(f"Refused: {exc}.") from None


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser within the size and depth limits."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = _read(stream)
        try:
            return json_loads(raw.decode("utf-8"), parse_constant=self._reject)
        except BodyRefused as exc:
            raise ParseError(f"Refused: {exc}.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None

    @staticmethod
    def _reject(name: str):
        raise ValueError(f"{name} is not a number JSON allows")


class YAMLParser(BaseParser):
    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            text = _read(stream).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("the YAML body is not UTF-8 text") from exc
        try:
            data = parse_yaml(text)
            check_depth(data)   # depth was checked while parsing; this adds NUL characters
            return data
        except DocumentError as exc:
            raise ParseError(str(exc)) from exc
        except BodyRefused as exc:
            raise ParseError(f"Refused: {exc}.") from None


class TextYAMLParser(YAMLParser):
    media_type = "text/yaml"


class XYAMLParser(YAMLParser):
    media_type = "application/x-yaml"
