#!/usr/bin/env python
"""Django's command-line utility for the edu_dl site."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_site.settings.local")
    from django.core.management import execute_from_command_line

    from lms_site.startup import load_settings_or_exit

    load_settings_or_exit()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
