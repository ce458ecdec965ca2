from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LtiConfig(AppConfig):
    name = "edu_dl.lti"
    label = "edu_dl_lti"
    verbose_name = _("LTI 1.3 tool")
    default_auto_field = "django.db.models.BigAutoField"
