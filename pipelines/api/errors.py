"""One error body for the whole API.

Every error answer is ``{"detail": "...", "errors": [{"path": ..., "message": ...}]}``:
``detail`` is a sentence for people, ``errors`` (validation only) names each field
by its JSON path. A refused definition also lists its ``warnings`` (AWS-only
providers), which a successful save returns as well.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from pipelines.services import BuildProjectInvalid, DefinitionInvalid, PipelineNotFound


class Conflict(exceptions.APIException):
    """A state conflict (e.g. retrying a superseded execution): 409."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def _flatten(data, prefix: str = "") -> list[dict]:
    out = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, int):
                # DRF reports the failing items of a list serializer by index.
                out += _flatten(value, f"{prefix}[{key}]")
                continue
            path = key if not prefix else (f"{prefix}.{key}" if key != "non_field_errors"
                                           else prefix)
            if key == "non_field_errors" and not prefix:
                path = ""
            out += _flatten(value, path)
    elif isinstance(data, list):
        if all(not isinstance(v, dict | list) for v in data):
            out += [{"path": prefix, "message": str(v)} for v in data]
        else:
            for i, value in enumerate(data):
                out += _flatten(value, f"{prefix}[{i}]")
    else:
        out.append({"path": prefix, "message": str(data)})
    return out


def problems_body(problems) -> dict:
    errs = [p.as_dict() for p in problems if p.severity == "error"]
    return {
        "detail": f"The definition has {len(errs)} problem{'s' if len(errs) != 1 else ''}.",
        "errors": errs,
        "warnings": [p.as_dict() for p in problems if p.severity == "warning"],
    }


def exception_handler(exc, context):
    if isinstance(exc, DefinitionInvalid | BuildProjectInvalid):
        return Response(problems_body(exc.problems), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, PipelineNotFound):
        exc = exceptions.NotFound(f'No pipeline is named "{exc}".')
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errs = _flatten(response.data)
        response.data = {
            "detail": "; ".join(f"{e['path']}: {e['message']}" if e["path"] else e["message"]
                                for e in errs) or "Invalid request.",
            "errors": errs,
        }
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    else:
        response.data = {"detail": str(response.data)}
    return response
