#!/bin/sh
# The MLflow tracking server behind MLflow's basic-auth app (the compose file's `mlflow`
# service runs this; tests run it on loopback). Every credential comes from the environment:
#   MLFLOW_AUTH_ADMIN_USERNAME, MLFLOW_AUTH_ADMIN_PASSWORD  admin account, created on first start
#   MLFLOW_FLASK_SERVER_SECRET_KEY  signs CSRF tokens of the auth app's forms; one per deployment
#   MLFLOW_BACKEND_STORE_URI    runs and registry, e.g. postgresql://user:pass@postgres/mlflow
#   MLFLOW_AUTH_DATABASE_URI    users and permissions, e.g. postgresql://user:pass@postgres/mlflow_auth
#   MLFLOW_ARTIFACTS_DESTINATION  where the server stores artifacts, e.g. s3://mlflow
#                               (with MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
# Optional: MLFLOW_HOST (0.0.0.0), MLFLOW_PORT (5000), MLFLOW_WORKERS (2),
#           MLFLOW_ALLOWED_HOSTS (Host headers to accept when reached by a name other than localhost)
set -eu
: "${MLFLOW_AUTH_ADMIN_USERNAME:?set MLFLOW_AUTH_ADMIN_USERNAME (the admin account)}"
: "${MLFLOW_AUTH_ADMIN_PASSWORD:?set MLFLOW_AUTH_ADMIN_PASSWORD (used when the admin is first created)}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?set MLFLOW_FLASK_SERVER_SECRET_KEY (a long random string)}"
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (where runs are stored)}"
: "${MLFLOW_AUTH_DATABASE_URI:?set MLFLOW_AUTH_DATABASE_URI (where users are stored)}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION (where artifacts are stored)}"

# The auth app reads its settings from an ini file; write it outside the repo, from the env.
config="${MLFLOW_AUTH_CONFIG_PATH:-$(mktemp -d)/basic_auth.ini}"
umask 077
cat >"$config" <<INI
[mlflow]
default_permission = READ
database_uri = ${MLFLOW_AUTH_DATABASE_URI}
admin_username = ${MLFLOW_AUTH_ADMIN_USERNAME}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
export MLFLOW_AUTH_CONFIG_PATH="$config"

set -- --app-name basic-auth \
    --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
    --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
    --host "${MLFLOW_HOST:-0.0.0.0}" --port "${MLFLOW_PORT:-5000}" \
    --workers "${MLFLOW_WORKERS:-2}"
if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then
    set -- "$@" --allowed-hosts "$MLFLOW_ALLOWED_HOSTS"
fi
exec mlflow server "$@"
