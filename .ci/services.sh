# shellcheck shell=bash
# Starts the servers the tests use, on 127.0.0.1 only, in a throwaway directory, and exports the
# TEST_PINPIPE_* variables that point the tests at them. Source it; call `ci_services_stop` (or
# let the EXIT trap in .ci/run do it) to stop them.
#   PostgreSQL  -> TEST_PINPIPE_POSTGRES_URL (admin URL; tests create and drop their own databases)
#   MariaDB     -> TEST_PINPIPE_MYSQL_URL
#   moto        -> TEST_PINPIPE_S3_ENDPOINT and TEST_PINPIPE_KINESIS_ENDPOINT (S3 and Kinesis APIs),
#                  with dummy AWS credentials

ci_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ci_wait() { # ci_wait SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for $what" >&2; return 1
}

ci_services_start() {
  CI_DIR=$(mktemp -d /tmp/pinpipe-ci.XXXXXX)
  chmod 755 "$CI_DIR"
  export CI_DIR

  # PostgreSQL refuses to run as root: run it as the package's `postgres` user.
  local pgbin; pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  local pgport; pgport=$(ci_free_port)
  install -d -o postgres -g postgres "$CI_DIR/pg" "$CI_DIR/pgsock"
  runuser -u postgres -- "$pgbin/initdb" -D "$CI_DIR/pg/data" -U pinpipe --auth=trust -E UTF8 >"$CI_DIR/pg-init.log" 2>&1
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$CI_DIR/pg/data" -l "$CI_DIR/pg/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pgport -k $CI_DIR/pgsock -c fsync=off -c max_connections=200" start >/dev/null
  export CI_PGBIN=$pgbin
  export TEST_PINPIPE_POSTGRES_URL="postgres://pinpipe@127.0.0.1:$pgport/postgres"

  # MariaDB.
  local myport; myport=$(ci_free_port)
  mkdir -p "$CI_DIR/my"
  mariadb-install-db --no-defaults --datadir="$CI_DIR/my/data" --user=root --auth-root-authentication-method=normal \
    >"$CI_DIR/my-init.log" 2>&1
  mariadbd --no-defaults --datadir="$CI_DIR/my/data" --user=root --bind-address=127.0.0.1 --port="$myport" \
    --socket="$CI_DIR/my/sock" --pid-file="$CI_DIR/my/pid" --skip-name-resolve --innodb-flush-log-at-trx-commit=0 \
    --max-connections=300 --character-set-server=utf8mb4 --log-error="$CI_DIR/my/server.log" &
  ci_wait 60 "MariaDB" mariadb-admin --no-defaults --socket="$CI_DIR/my/sock" -uroot ping
  mariadb --no-defaults --socket="$CI_DIR/my/sock" -uroot -e \
    "CREATE USER 'pinpipe'@'127.0.0.1' IDENTIFIED BY 'pinpipe'; GRANT ALL ON *.* TO 'pinpipe'@'127.0.0.1' WITH GRANT OPTION;"
  export TEST_PINPIPE_MYSQL_URL="mysql://pinpipe:pinpipe@127.0.0.1:$myport/mysql"

  # moto: the S3 (and Kinesis) API on one port.
  local motoport; motoport=$(ci_free_port)
  moto_server -H 127.0.0.1 -p "$motoport" >"$CI_DIR/moto.log" 2>&1 &
  echo $! >"$CI_DIR/moto.pid"
  ci_wait 60 "moto" curl -sf -o /dev/null "http://127.0.0.1:$motoport/moto-api/"
  export TEST_PINPIPE_S3_ENDPOINT="http://127.0.0.1:$motoport"
  export TEST_PINPIPE_KINESIS_ENDPOINT="http://127.0.0.1:$motoport"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

  export TEST_PINPIPE_REQUIRE_SERVERS=1
  echo "services: PostgreSQL on 127.0.0.1:$pgport, MariaDB on 127.0.0.1:$myport, moto on 127.0.0.1:$motoport (logs in $CI_DIR)"
}

ci_services_stop() {
  [ -n "${CI_DIR:-}" ] || return 0
  if [ -n "${CI_PGBIN:-}" ] && [ -d "$CI_DIR/pg/data" ]; then
    runuser -u postgres -- "$CI_PGBIN/pg_ctl" -D "$CI_DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -f "$CI_DIR/moto.pid" ]; then
    kill "$(cat "$CI_DIR/moto.pid")" 2>/dev/null || true
  fi
  if [ -f "$CI_DIR/my/pid" ]; then
    mariadb-admin --no-defaults --socket="$CI_DIR/my/sock" -uroot shutdown >/dev/null 2>&1 || kill "$(cat "$CI_DIR/my/pid")" 2>/dev/null || true
  fi
  rm -rf "$CI_DIR"
  CI_DIR=
}
