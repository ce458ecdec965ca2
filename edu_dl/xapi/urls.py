"""xAPI endpoints (mounted at /xapi/ by the site)."""

from django.urls import path  # noqa: F401

app_name = "edu_dl_xapi"

urlpatterns: list = []
