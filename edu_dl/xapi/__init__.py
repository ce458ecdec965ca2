"""xAPI 1.0.3 statements endpoint: learning events from learning-record stores and other tools
become Interactions and ResourceInteractions. A sub-app with its own tables (app label
``edu_dl_xapi``)."""
