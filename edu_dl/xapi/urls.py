"""xAPI endpoints (mounted at /xapi/ by the site)."""

from django.urls import path

from edu_dl.xapi import views

app_name = "edu_dl_xapi"

urlpatterns = [
    path("statements", views.StatementsView.as_view(), name="statements"),
    path("about", views.AboutView.as_view(), name="about"),
]
