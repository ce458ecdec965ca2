"""Problem details for every error under the machine-facing paths, whichever view made it.

DRF views already answer problems (see :mod:`edu_dl.api.problems`); plain Django views under
``/api/``, ``/xapi/`` and ``/lti/`` (a 405 from ``require_http_methods``, say) would answer an
HTML page. This turns any such 4xx or 5xx into the same problem format.
"""

from __future__ import annotations

from http import HTTPStatus

from edu_dl.api.problems import PROBLEM_CONTENT_TYPE, problem_json

MACHINE_PREFIXES = ("/api/", "/xapi/", "/lti/")


class ProblemResponsesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith(MACHINE_PREFIXES)
            and not response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            try:
                phrase = HTTPStatus(response.status_code).phrase
            except ValueError:
                phrase = "Error"
            problem = problem_json(request, response.status_code, f"{phrase}.")
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if header in response:
                    problem[header] = response[header]
            return problem
        return response
