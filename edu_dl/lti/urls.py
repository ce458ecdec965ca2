"""LTI endpoints (mounted at /lti/ by the site)."""

from django.urls import path  # noqa: F401

app_name = "edu_dl_lti"

urlpatterns: list = []
