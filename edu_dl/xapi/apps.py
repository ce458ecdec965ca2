from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class XapiConfig(AppConfig):
    name = "edu_dl.xapi"
    label = "edu_dl_xapi"
    verbose_name = _("xAPI statements")
    default_auto_field = "django.db.models.BigAutoField"
