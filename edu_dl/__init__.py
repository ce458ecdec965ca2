"""edu_dl: a Django learning-management plugin that grades work, traces each student's mastery and
suggests what to study next, with PyTorch models trained and run by Celery workers."""
