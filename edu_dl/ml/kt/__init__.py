"""Knowledge-tracing models. Importing this package registers them by name."""

from edu_dl.ml.kt import akt, dkt  # noqa: F401
