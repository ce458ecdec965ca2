"""WSGI entry point (gunicorn lms_site.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

from lms_site.startup import load_settings_or_exit, run_checks_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_site.settings.local")
load_settings_or_exit()
application = get_wsgi_application()
run_checks_or_exit()
# Everything loaded at start-up (Django, the app, its URLs and settings) lives as long as the
# process: moved out of the garbage collector's sight, a full collection during a request scans
# only what requests made. On the class overview (1,000 students x 100 skills) this took p95
# from about 280 ms to about 225 ms (benchmarks/bench_course_overview.py).
gc.collect()
gc.freeze()
