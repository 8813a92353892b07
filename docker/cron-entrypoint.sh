#!/bin/sh
# Entry point of the indexer container: hand the container's PAPERS_* settings to the
# cron job (cron starts jobs with an empty environment), then run cron in the foreground.
set -eu
umask 022
: > /etc/papers.env
env | grep -E '^(PAPERS_|HF_|TRANSFORMERS_|TZ=)' | while IFS='=' read -r key value; do
  printf "export %s='%s'\n" "$key" "$(printf '%s' "$value" | sed "s/'/'\\\\''/g")" >> /etc/papers.env
done
chmod 0644 /etc/papers.env
mkdir -p "${PAPERS_DATA_DIR:-/data}"
chown papers:papers "${PAPERS_DATA_DIR:-/data}"
exec cron -f
