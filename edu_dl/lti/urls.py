"""LTI endpoints (mounted at /lti/ by the site)."""

from django.urls import path

from edu_dl.lti import views

app_name = "edu_dl_lti"

urlpatterns = [
    path("login/", views.login, name="login"),
    path("launch/", views.launch, name="launch"),
    path("deep-linking/", views.deep_linking_choice, name="deep_linking"),
    path("jwks/", views.jwks, name="jwks"),
]
