"""URLs of the edu_dl app's pages; each area of pages declares its own (see edu_dl.web)."""

from django.urls import path

from edu_dl.web import content, models_pages, overview, people, portal, review, views

app_name = "edu_dl"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("courses/<slug:slug>/", views.course_detail, name="course_detail"),
    *overview.urlpatterns,
    *review.urlpatterns,
    *people.urlpatterns,
    *models_pages.urlpatterns,
    *content.urlpatterns,
    *portal.urlpatterns,
]
