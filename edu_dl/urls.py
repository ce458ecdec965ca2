"""URLs of the edu_dl app: pages (and, later, the API)."""

from django.urls import path

from edu_dl.web import views

app_name = "edu_dl"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("courses/<slug:slug>/", views.course_detail, name="course_detail"),
    path(
        "courses/<slug:slug>/training/",
        views.course_training_request,
        name="course_training_request",
    ),
]
