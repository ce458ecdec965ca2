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
    path("courses/<slug:slug>/review/", views.review_queue, name="review_queue"),
    path(
        "courses/<slug:slug>/review/accept-shown/",
        views.review_accept_many,
        name="review_accept_many",
    ),
    path(
        "courses/<slug:slug>/review/<int:response_id>/",
        views.review_detail,
        name="review_detail",
    ),
    path(
        "courses/<slug:slug>/review/<int:response_id>/accept/",
        views.review_accept,
        name="review_accept",
    ),
    path(
        "courses/<slug:slug>/review/<int:response_id>/override/",
        views.review_override,
        name="review_override",
    ),
    path(
        "courses/<slug:slug>/submissions/<int:submission_id>/",
        views.submission_detail,
        name="submission_detail",
    ),
]
