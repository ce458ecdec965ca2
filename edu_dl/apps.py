from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EduDlConfig(AppConfig):
    name = "edu_dl"
    verbose_name = _("Learning with deep learning")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from edu_dl import checks  # noqa: F401  (registers the system checks)
