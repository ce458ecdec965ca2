"""Settings for one machine with no servers: ``make demo`` and development."""

from lms_site.settings.base import *  # noqa: F403
from lms_site.settings.base import EDU_DL
from lms_site.settings.env import env_bool

DEBUG = env_bool("DJANGO_DEBUG", default=True)

# A webhook receiver under development runs on this machine (http://localhost:...), which
# production refuses as a loopback address. Allowed here by this module, not by DEBUG: DEBUG
# alone never opens the network to webhooks.
EDU_DL = {
    **EDU_DL,
    "WEBHOOK_ALLOW_PRIVATE_HOSTS": env_bool("EDU_DL_WEBHOOK_ALLOW_PRIVATE_HOSTS", default=True),
}
