"""Settings modules of the site: ``base`` (shared), ``local`` (default), ``production``, ``test``."""
