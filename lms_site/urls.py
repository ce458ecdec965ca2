"""URL configuration of the site: the edu_dl app, the admin, login."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("edu_dl.api.urls")),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("xapi/", include("edu_dl.xapi.urls")),
    path("lti/", include("edu_dl.lti.urls")),
    path("", include("edu_dl.urls")),
]

# API paths answer problem details (RFC 9457) here too; pages keep Django's pages.
handler400 = "edu_dl.api.problems.bad_request"
handler404 = "edu_dl.api.problems.page_not_found"
handler500 = "edu_dl.api.problems.server_error"
