#!/usr/bin/env bash
# Runs the web server (127.0.0.1:8000), a Celery worker on every queue and Celery beat, on the
# embedded defaults (SQLite file and filesystem broker under var/). Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-lms_site.settings.local}
mkdir -p var/log

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "Stopping web, worker and beat ..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$BIN/celery" -A lms_site worker -Q default,grading,training -c 2 --prefetch-multiplier 1 \
  -n "demo@%h" -l info >var/log/worker.log 2>&1 &
pids+=($!)
"$BIN/celery" -A lms_site beat -l info >var/log/beat.log 2>&1 &
pids+=($!)
"$BIN/python" manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)

cat <<TEXT

  edu_dl demo: http://127.0.0.1:8000/   (admin: http://127.0.0.1:8000/admin/)
  worker log: var/log/worker.log   beat log: var/log/beat.log
  Press Ctrl-C to stop web, worker and beat.

TEXT
# Stop everything as soon as one of the three ends.
wait -n "${pids[@]}"
