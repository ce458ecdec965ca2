"""The REST API, version 1 (mounted at /api/v1/ by the site)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

app_name = "edu_dl_api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="edu_dl_api:schema", permission_classes=[]),
        name="docs",
    ),
]
