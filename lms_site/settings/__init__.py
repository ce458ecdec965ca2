"""The site's settings: ``base`` (shared), ``local`` (default), ``production``, ``test``."""
