"""WSGI entry point (gunicorn lms_site.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from lms_site.startup import load_settings_or_exit, run_checks_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_site.settings.local")
load_settings_or_exit()
application = get_wsgi_application()
run_checks_or_exit()
