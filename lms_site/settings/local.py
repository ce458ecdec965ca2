"""Settings for one machine with no servers: ``make demo`` and development."""

from lms_site.settings.base import *  # noqa: F403
from lms_site.settings.env import env_bool

DEBUG = env_bool("DJANGO_DEBUG", default=True)
