#!/usr/bin/env bash
# Start the real test servers on 127.0.0.1, in the background, and wait until
# each one answers. Idempotent: a server already running and answering is left
# alone. Run as root (MariaDB runs as user mysql, PostgreSQL as user postgres).
#
#   tests/servers/start.sh NAME...     NAME: mariadb postgres ferretdb minio toxiproxy | all
#                                      or moto, trino (not in all; trino also starts minio, moto)
#
# Data, logs and sockets go under ${INGESTA_TEST_RUN:-/tmp/ingesta-test-run}/<name>/,
# each server's PID into $INGESTA_TEST_RUN/<name>.pid, and the connection settings
# into $INGESTA_TEST_RUN/env (source it). Missing Go tools are built first with
# build-tools.sh (set INGESTA_TEST_NO_BUILD=1 to fail instead).
#
# Environment: INGESTA_TEST_RUN, INGESTA_TEST_CACHE, INGESTA_TEST_START_TIMEOUT
# (seconds to wait for each server, default 90).
set -euo pipefail

SCRIPT_NAME="start"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

START_TIMEOUT="${INGESTA_TEST_START_TIMEOUT:-90}"
PYTHON=/usr/bin/python3
AWS=/usr/bin/aws
PG_BIN=/usr/lib/postgresql/15/bin

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

# ---------------------------------------------------------------- helpers

# fail_with_log NAME LOGFILE MESSAGE: print the server log tail and exit.
fail_with_log() {
    local name="$1" logfile="$2" msg="$3"
    {
        printf '%s: error: %s: %s\n' "$SCRIPT_NAME" "$name" "$msg"
        if [[ -f "$logfile" ]]; then
            printf -- '----- last 40 lines of %s -----\n' "$logfile"
            tail -n 40 "$logfile"
            printf -- '-----\n'
        else
            printf '(no log at %s)\n' "$logfile"
        fi
    } >&2
    exit 1
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/$TEST_HOST/$1") 2>/dev/null
}

# spawn PIDFILE LOGFILE CMD...: run CMD detached (own session), stdout/stderr to
# LOGFILE; PIDFILE gets the PID of CMD itself (exec keeps it).
spawn() {
    local pidfile="$1" logfile="$2"
    shift 2
    rm -f "$pidfile"
    # shellcheck disable=SC2016 # $$ and $@ expand in the inner shell
    # 9>&-: the server must not inherit start.sh's lock.
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.1
    done
    return 1
}

# wait_ready NAME PIDFILE LOGFILE CHECKFN: poll CHECKFN until it succeeds, the
# process dies, or START_TIMEOUT passes.
wait_ready() {
    local name="$1" pidfile="$2" logfile="$3" check="$4" deadline=$((SECONDS + START_TIMEOUT))
    while ! "$check"; do
        if ! pid_alive "$pidfile" >/dev/null; then
            fail_with_log "$name" "$logfile" "the server exited during start-up"
        fi
        if ((SECONDS >= deadline)); then
            fail_with_log "$name" "$logfile" "not answering after ${START_TIMEOUT} s (pid $(cat "$pidfile" 2>/dev/null || echo '?') still running)"
        fi
        sleep 0.3
    done
}

# already_running NAME CHECKFN: true if our PID file names a live process of this
# server and it answers (waiting for it if it is still starting).
already_running() {
    local name="$1" check="$2" pidfile="$INGESTA_TEST_RUN/$1.pid" pid
    if pid="$(server_pid "$name")"; then
        wait_ready "$name" "$pidfile" "$(server_log "$name")" "$check"
        log "$name: already running (pid $pid), answering"
        return 0
    fi
    rm -f "$pidfile"
    return 1
}

# ensure_port_free NAME PORT: fail if a process that is not ours holds the port.
ensure_port_free() {
    if port_open "$2"; then
        die "$1: port $TEST_HOST:$2 is in use by another process (not in $INGESTA_TEST_RUN/$1.pid); stop it first"
    fi
}

need_tool() {
    local name="$1" bin="$INGESTA_TEST_BIN/$2"
    if [[ ! -x "$bin" ]]; then
        [[ "${INGESTA_TEST_NO_BUILD:-0}" != 1 ]] || die "$name: $bin missing; run tests/servers/build-tools.sh"
        log "$name: $bin missing, building it with build-tools.sh"
        "$SERVERS_DIR/build-tools.sh" "$name"
    fi
    [[ -x "$bin" ]] || die "$name: $bin still missing after build-tools.sh"
}

need_cmd() {
    [[ -x "$1" ]] || command -v "$1" >/dev/null 2>&1 || die "$1 not found; run tests/servers/install-deps.sh"
}

# ---------------------------------------------------------------- MariaDB

MARIADB_DIR="$INGESTA_TEST_RUN/mariadb"
MARIADB_SOCK="$MARIADB_DIR/mariadb.sock"

mariadb_root() {
    mariadb --no-defaults --socket="$MARIADB_SOCK" --user=root "$@"
}

check_mariadb() {
    mariadb-admin --no-defaults --socket="$MARIADB_SOCK" --user=root --connect-timeout=2 ping >/dev/null 2>&1
}

mariadb_setup_users() {
    mariadb_root --batch <<SQL
CREATE DATABASE IF NOT EXISTS \`$TEST_DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASSWORD';
CREATE USER IF NOT EXISTS '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASSWORD';
ALTER USER '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASSWORD';
ALTER USER '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
    MYSQL_PWD="$TEST_PASSWORD" mariadb --no-defaults --host="$TEST_HOST" --port="$MARIADB_PORT" \
        --user="$TEST_USER" --batch --skip-column-names "$TEST_DB" -e 'SELECT 1' >/dev/null \
        || fail_with_log mariadb "$MARIADB_DIR/mariadb.log" "password login over TCP as $TEST_USER failed"
}

start_mariadb() {
    local pidfile="$INGESTA_TEST_RUN/mariadb.pid" logfile="$MARIADB_DIR/mariadb.log"
    need_cmd mariadbd
    need_cmd mariadb-install-db
    if already_running mariadb check_mariadb; then
        mariadb_setup_users
        return 0
    fi
    ensure_port_free mariadb "$MARIADB_PORT"
    id mysql >/dev/null 2>&1 || die "mariadb: user mysql missing (install mariadb-server)"

    mkdir -p "$MARIADB_DIR/data"
    chown -R mysql:mysql "$MARIADB_DIR"
    if [[ ! -d "$MARIADB_DIR/data/mysql" ]]; then
        log "mariadb: initializing $MARIADB_DIR/data"
        mariadb-install-db --no-defaults --user=mysql --datadir="$MARIADB_DIR/data" \
            --auth-root-authentication-method=socket --skip-test-db >>"$logfile" 2>&1 \
            || fail_with_log mariadb "$logfile" "mariadb-install-db failed"
    fi
    log "mariadb: starting on $TEST_HOST:$MARIADB_PORT"
    spawn "$pidfile" "$logfile" mariadbd --no-defaults --user=mysql \
        --datadir="$MARIADB_DIR/data" --socket="$MARIADB_SOCK" \
        --pid-file="$MARIADB_DIR/mariadbd.pid" \
        --port="$MARIADB_PORT" --bind-address="$TEST_HOST" --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --max-connections=200 \
        || fail_with_log mariadb "$logfile" "could not launch mariadbd"
    wait_ready mariadb "$pidfile" "$logfile" check_mariadb
    mariadb_setup_users
    log "mariadb: ready (pid $(cat "$pidfile"))"
}

# ---------------------------------------------------------------- PostgreSQL

POSTGRES_DIR="$INGESTA_TEST_RUN/postgres"
POSTGRES_DATA="$POSTGRES_DIR/data"

as_postgres() {
    (cd / && runuser -u postgres -- "$@")
}

check_postgres() {
    "$PG_BIN/pg_isready" -q -h "$POSTGRES_DIR" -p "$POSTGRES_PORT" -t 2 2>/dev/null
}

postgres_setup_users() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$POSTGRES_DIR" -p "$POSTGRES_PORT" -U postgres -d postgres <<SQL >/dev/null
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$TEST_USER') THEN
        CREATE ROLE "$TEST_USER" LOGIN SUPERUSER PASSWORD '$TEST_PASSWORD';
    ELSE
        ALTER ROLE "$TEST_USER" LOGIN SUPERUSER PASSWORD '$TEST_PASSWORD';
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE "$TEST_DB" OWNER "$TEST_USER" ENCODING ''UTF8'''
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$TEST_DB')
\gexec
SQL
    PGPASSWORD="$TEST_PASSWORD" psql -X -q -h "$TEST_HOST" -p "$POSTGRES_PORT" -U "$TEST_USER" \
        -d "$TEST_DB" -tAc 'select 1' >/dev/null \
        || fail_with_log postgres "$POSTGRES_DIR/postgres.log" "password login over TCP as $TEST_USER failed"
}

# After a crash (kill -9) the old postmaster can linger a moment, or as a zombie
# until init reaps it; PostgreSQL then refuses its postmaster.pid. Wait for the
# old PID to go, and drop the lock file if only a zombie is left.
postgres_clear_stale_lock() {
    local lockfile="$POSTGRES_DATA/postmaster.pid" pid i
    [[ -f "$lockfile" ]] || return 0
    pid="$(head -n 1 "$lockfile" | tr -dc '0-9')"
    [[ -n "$pid" ]] || return 0
    if pid_is postgres "$pid"; then
        die "postgres: pid $pid from $lockfile is running but does not answer on $TEST_HOST:$POSTGRES_PORT"
    fi
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    log "postgres: old postmaster $pid is a zombie; removing its stale $lockfile"
    rm -f "$lockfile"
}

start_postgres() {
    local pidfile="$INGESTA_TEST_RUN/postgres.pid" logfile="$POSTGRES_DIR/postgres.log"
    need_cmd "$PG_BIN/initdb"
    need_cmd psql
    if already_running postgres check_postgres; then
        postgres_setup_users
        return 0
    fi
    ensure_port_free postgres "$POSTGRES_PORT"
    id postgres >/dev/null 2>&1 || die "postgres: user postgres missing (install postgresql)"

    mkdir -p "$POSTGRES_DIR"
    chown postgres:postgres "$POSTGRES_DIR"
    chmod 0700 "$POSTGRES_DIR"
    as_postgres test -w "$POSTGRES_DIR" \
        || die "postgres: user postgres cannot write $POSTGRES_DIR (is a parent of $INGESTA_TEST_RUN closed to other users?)"
    touch "$logfile"
    chown postgres:postgres "$logfile"
    if [[ ! -f "$POSTGRES_DATA/PG_VERSION" ]]; then
        log "postgres: initializing $POSTGRES_DATA"
        as_postgres "$PG_BIN/initdb" -D "$POSTGRES_DATA" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >>"$logfile" 2>&1 \
            || fail_with_log postgres "$logfile" "initdb failed"
    fi
    postgres_clear_stale_lock
    log "postgres: starting on $TEST_HOST:$POSTGRES_PORT"
    # pg_ctl -w waits until the server accepts connections; the postmaster's PID
    # is then the first line of postmaster.pid.
    # shellcheck disable=SC2094 # pg_ctl appends to the log; so do we, on error
    as_postgres "$PG_BIN/pg_ctl" -D "$POSTGRES_DATA" -l "$logfile" -w -t "$START_TIMEOUT" \
        -o "-p $POSTGRES_PORT -k $POSTGRES_DIR -c listen_addresses=$TEST_HOST -c max_connections=200" \
        start >/dev/null 2>>"$logfile" 9>&- \
        || fail_with_log postgres "$logfile" "pg_ctl start failed"
    head -n 1 "$POSTGRES_DATA/postmaster.pid" >"$pidfile"
    wait_ready postgres "$pidfile" "$logfile" check_postgres
    postgres_setup_users
    log "postgres: ready (pid $(cat "$pidfile"))"
}

# ---------------------------------------------------------------- FerretDB

FERRETDB_DIR="$INGESTA_TEST_RUN/ferretdb"

check_ferretdb() {
    "$PYTHON" - "$FERRETDB_PORT" <<'PY' >/dev/null 2>&1
import sys, pymongo
c = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), serverSelectionTimeoutMS=2000, connectTimeoutMS=2000)
c.admin.command("ping")
PY
}

start_ferretdb() {
    local pidfile="$INGESTA_TEST_RUN/ferretdb.pid" logfile="$FERRETDB_DIR/ferretdb.log"
    need_cmd "$PYTHON"
    if already_running ferretdb check_ferretdb; then return 0; fi
    need_tool ferretdb ferretdb
    ensure_port_free ferretdb "$FERRETDB_PORT"
    mkdir -p "$FERRETDB_DIR/data"
    log "ferretdb: starting on $TEST_HOST:$FERRETDB_PORT (SQLite backend)"
    spawn "$pidfile" "$logfile" "$INGESTA_TEST_BIN/ferretdb" \
        -listen "$TEST_HOST:$FERRETDB_PORT" -data-dir "$FERRETDB_DIR/data" \
        || fail_with_log ferretdb "$logfile" "could not launch ferretdb"
    wait_ready ferretdb "$pidfile" "$logfile" check_ferretdb
    log "ferretdb: ready (pid $(cat "$pidfile"))"
}

# ---------------------------------------------------------------- MinIO

MINIO_DIR="$INGESTA_TEST_RUN/minio"

check_minio() {
    curl -fsS -o /dev/null --max-time 2 "http://$TEST_HOST:$MINIO_PORT/minio/health/live" 2>/dev/null
}

minio_aws() {
    AWS_ACCESS_KEY_ID="$MINIO_ROOT_USER_VALUE" AWS_SECRET_ACCESS_KEY="$MINIO_ROOT_PASSWORD_VALUE" \
        AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        AWS_EC2_METADATA_DISABLED=true AWS_PAGER="" \
        "$AWS" --endpoint-url "http://$TEST_HOST:$MINIO_PORT" "$@"
}

# A signed request: proves the root credentials work, not just the health probe.
minio_check_auth() {
    local deadline=$((SECONDS + START_TIMEOUT)) out
    until out="$(minio_aws s3api list-buckets --output text 2>&1)"; do
        ((SECONDS < deadline)) || fail_with_log minio "$MINIO_DIR/minio.log" "signed ListBuckets failed: $out"
        sleep 0.5
    done
}

start_minio() {
    local pidfile="$INGESTA_TEST_RUN/minio.pid" logfile="$MINIO_DIR/minio.log"
    need_cmd curl
    need_cmd "$AWS"
    if already_running minio check_minio; then
        minio_check_auth
        return 0
    fi
    need_tool minio minio
    ensure_port_free minio "$MINIO_PORT"
    ensure_port_free minio-console "$MINIO_CONSOLE_PORT"
    mkdir -p "$MINIO_DIR/data"
    log "minio: starting on $TEST_HOST:$MINIO_PORT (console $TEST_HOST:$MINIO_CONSOLE_PORT)"
    MINIO_ROOT_USER="$MINIO_ROOT_USER_VALUE" MINIO_ROOT_PASSWORD="$MINIO_ROOT_PASSWORD_VALUE" \
        MINIO_UPDATE=off MINIO_CI_CD=1 \
        spawn "$pidfile" "$logfile" "$INGESTA_TEST_BIN/minio" server "$MINIO_DIR/data" \
        --address "$TEST_HOST:$MINIO_PORT" --console-address "$TEST_HOST:$MINIO_CONSOLE_PORT" \
        || fail_with_log minio "$logfile" "could not launch minio"
    wait_ready minio "$pidfile" "$logfile" check_minio
    minio_check_auth
    log "minio: ready (pid $(cat "$pidfile"))"
}

# ---------------------------------------------------------------- toxiproxy

TOXIPROXY_DIR="$INGESTA_TEST_RUN/toxiproxy"

check_toxiproxy() {
    curl -fsS -o /dev/null --max-time 2 "http://$TEST_HOST:$TOXIPROXY_PORT/version" 2>/dev/null
}

start_toxiproxy() {
    local pidfile="$INGESTA_TEST_RUN/toxiproxy.pid" logfile="$TOXIPROXY_DIR/toxiproxy.log"
    need_cmd curl
    if already_running toxiproxy check_toxiproxy; then return 0; fi
    need_tool toxiproxy toxiproxy-server
    ensure_port_free toxiproxy "$TOXIPROXY_PORT"
    mkdir -p "$TOXIPROXY_DIR"
    log "toxiproxy: starting API on $TEST_HOST:$TOXIPROXY_PORT"
    spawn "$pidfile" "$logfile" "$INGESTA_TEST_BIN/toxiproxy-server" \
        -host "$TEST_HOST" -port "$TOXIPROXY_PORT" \
        || fail_with_log toxiproxy "$logfile" "could not launch toxiproxy-server"
    wait_ready toxiproxy "$pidfile" "$logfile" check_toxiproxy
    log "toxiproxy: ready (pid $(cat "$pidfile"))"
}

# ---------------------------------------------------------------- moto (Glue)

MOTO_DIR="$INGESTA_TEST_RUN/moto"

# need_lake WHAT FILE: trino.sh installs WHAT (trino, venv) when FILE is missing.
need_lake() {
    if [[ ! -e "$2" ]]; then
        [[ "${INGESTA_TEST_NO_BUILD:-0}" != 1 ]] || die "$1: $2 missing; run tests/servers/trino.sh $1"
        log "$1: $2 missing, installing it with trino.sh"
        "$SERVERS_DIR/trino.sh" "$1"
    fi
    [[ -e "$2" ]] || die "$1: $2 still missing after trino.sh"
}

check_moto() {
    curl -fsS -o /dev/null --max-time 2 "http://$TEST_HOST:$MOTO_PORT/moto-api/" 2>/dev/null
}

start_moto() {
    local pidfile="$INGESTA_TEST_RUN/moto.pid" logfile="$MOTO_DIR/moto.log"
    need_cmd curl
    if already_running moto check_moto; then return 0; fi
    need_lake venv "$LAKE_VENV/.complete"
    ensure_port_free moto "$MOTO_PORT"
    mkdir -p "$MOTO_DIR"
    log "moto: starting on $TEST_HOST:$MOTO_PORT (state in memory only)"
    spawn "$pidfile" "$logfile" "$LAKE_VENV/bin/python3" "$LAKE_VENV/bin/moto_server" \
        -H "$TEST_HOST" -p "$MOTO_PORT" \
        || fail_with_log moto "$logfile" "could not launch moto_server"
    wait_ready moto "$pidfile" "$logfile" check_moto
    log "moto: ready (pid $(cat "$pidfile"))"
}

# ---------------------------------------------------------------- Trino

TRINO_DIR="$INGESTA_TEST_RUN/trino"
# moto takes any key; a pair of our own keeps the Glue calls recognizable.
GLUE_ACCESS_KEY=ingesta-glue
GLUE_SECRET_KEY=ingesta-glue-secret

check_trino() {
    curl -fsS --max-time 2 "http://$TEST_HOST:$TRINO_PORT/v1/info" 2>/dev/null | grep -q '"starting":false'
}

# What Trino's etc/jvm.config would hold. java runs directly, not through
# bin/launcher, so the PID file holds the server's own PID.
TRINO_JVM_OPTS=(
    -server -Xmx1536M -XX:+UseG1GC -XX:G1HeapRegionSize=32M
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow
    -XX:ReservedCodeCacheSize=256M -XX:PerMethodRecompilationCutoff=10000
    -XX:PerBytecodeRecompilationCutoff=10000 -Djdk.attach.allowAttachSelf=true
    -Djdk.nio.maxCachedBufferSize=2000000 -XX:+UnlockDiagnosticVMOptions
    -XX:G1NumCollectionsKeepPinned=10000000 -XX:+EnableDynamicAgentLoading
    --enable-native-access=ALL-UNNAMED -Dfile.encoding=UTF-8
)

# trino_write_config JAVA: etc/ (config, log, the Glue catalog named awsdatacatalog as in Athena, so
# the views ingesta registers resolve unchanged) and the CLI wrapper.
trino_write_config() {
    local etc="$TRINO_DIR/etc" java="$1"
    mkdir -p "$etc/catalog" "$TRINO_DIR/data"
    # Without bin/launcher, the node properties go into config.properties too (and
    # the data directory is the working directory, as the launcher makes it).
    cat >"$etc/config.properties" <<EOF
node.environment=ingesta_test
node.id=ingesta-test-trino
node.bind-ip=$TEST_HOST
node.internal-address=$TEST_HOST
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port=$TRINO_PORT
discovery.uri=http://$TEST_HOST:$TRINO_PORT
plugin.dir=$TRINO_HOME/plugin
catalog.config-dir=$etc/catalog
EOF
    printf 'io.trino=INFO\n' >"$etc/log.properties"
    # The Glue catalog (moto) over MinIO. moto answers 500 to the column statistics
    # calls, hence hive.table-statistics-enabled=false.
    cat >"$etc/catalog/awsdatacatalog.properties" <<EOF
connector.name=hive
hive.metastore=glue
hive.metastore.glue.region=us-east-1
hive.metastore.glue.endpoint-url=http://$TEST_HOST:$MOTO_PORT
hive.metastore.glue.aws-access-key=$GLUE_ACCESS_KEY
hive.metastore.glue.aws-secret-key=$GLUE_SECRET_KEY
hive.partition-projection-enabled=true
hive.table-statistics-enabled=false
fs.native-s3.enabled=true
s3.endpoint=http://$TEST_HOST:$MINIO_PORT
s3.path-style-access=true
s3.region=us-east-1
s3.aws-access-key=$MINIO_ROOT_USER_VALUE
s3.aws-secret-key=$MINIO_ROOT_PASSWORD_VALUE
EOF
    # The CLI with this server and a user baked in: $TRINO_CLI --execute 'SELECT 1'.
    cat >"$TRINO_DIR/trino-cli" <<EOF
#!/bin/sh
exec $java -Xmx512M --enable-native-access=ALL-UNNAMED -jar $TRINO_HOME/trino-cli.jar --server http://$TEST_HOST:$TRINO_PORT --user ingesta "\$@"
EOF
    chmod 0755 "$TRINO_DIR/trino-cli"
}

# trino_select_1: a query through the CLI, proof that the coordinator runs queries.
trino_select_1() {
    local deadline=$((SECONDS + START_TIMEOUT)) out
    # (stderr: the CLI's JLine warns that it has no terminal)
    until out="$("$TRINO_DIR/trino-cli" --execute 'SELECT 1' 2>"$TRINO_DIR/cli.err" </dev/null)" \
        && [[ "$out" == '"1"' ]]; do
        ((SECONDS < deadline)) || fail_with_log trino "$TRINO_DIR/trino.log" \
            "SELECT 1 failed: $out $(tail -n 5 "$TRINO_DIR/cli.err")"
        sleep 1
    done
}

start_trino() {
    local pidfile="$INGESTA_TEST_RUN/trino.pid" logfile="$TRINO_DIR/trino.log" java
    need_cmd curl
    java="$(find_java)" || die "trino: no Java >= 24 under /usr/lib/jvm (Trino $TRINO_VERSION needs it; or set TRINO_JAVA)"
    if already_running trino check_trino; then
        trino_select_1
        return 0
    fi
    need_lake trino "$TRINO_HOME/.complete"
    ensure_port_free trino "$TRINO_PORT"
    trino_write_config "$java"
    log "trino: starting Trino $TRINO_VERSION on $TEST_HOST:$TRINO_PORT (takes ~35 s)"
    (cd "$TRINO_DIR/data" && spawn "$pidfile" "$logfile" "$java" "${TRINO_JVM_OPTS[@]}" \
        -Dconfig="$TRINO_DIR/etc/config.properties" -Dlog.levels-file="$TRINO_DIR/etc/log.properties" \
        -cp "$TRINO_HOME/lib/*" io.trino.server.TrinoServer) \
        || fail_with_log trino "$logfile" "could not launch java"
    wait_ready trino "$pidfile" "$logfile" check_trino
    trino_select_1
    log "trino: ready (pid $(cat "$pidfile"))"
}

# ---------------------------------------------------------------- env file

write_env() {
    local envfile="$INGESTA_TEST_RUN/env" tmp
    tmp="$(mktemp "$INGESTA_TEST_RUN/env.XXXXXX")"
    {
        printf '# Connection settings of the ingesta test servers, written by tests/servers/start.sh.\n'
        printf '# Use: . %q\n' "$envfile"
        printf '# Note: AWS_* and S3_ENDPOINT are also ingesta configuration keys; unset them\n'
        printf '# for tests of the credentials chain.\n'
        kv INGESTA_TEST_RUN "$INGESTA_TEST_RUN"
        kv INGESTA_TEST_BIN "$INGESTA_TEST_BIN"
        kv INGESTA_TEST_MARIADB_PORT "$MARIADB_PORT"
        kv INGESTA_TEST_POSTGRES_PORT "$POSTGRES_PORT"
        kv INGESTA_TEST_FERRETDB_PORT "$FERRETDB_PORT"
        kv INGESTA_TEST_MINIO_PORT "$MINIO_PORT"
        kv INGESTA_TEST_MINIO_CONSOLE_PORT "$MINIO_CONSOLE_PORT"
        kv INGESTA_TEST_TOXIPROXY_PORT "$TOXIPROXY_PORT"
        # shellcheck disable=SC2016 # a literal hint for the reader
        printf '\n# MariaDB (mariadb client: --no-defaults -h $MARIADB_HOST -P $MARIADB_PORT)\n'
        kv MARIADB_HOST "$TEST_HOST"
        kv MARIADB_PORT "$MARIADB_PORT"
        kv MARIADB_USER "$TEST_USER"
        kv MARIADB_PASSWORD "$TEST_PASSWORD"
        kv MARIADB_DATABASE "$TEST_DB"
        kv MARIADB_SOCKET "$MARIADB_SOCK"
        printf '\n# PostgreSQL 15 (role is SUPERUSER; TCP auth is scram-sha-256)\n'
        kv POSTGRESQL_HOST "$TEST_HOST"
        kv POSTGRESQL_PORT "$POSTGRES_PORT"
        kv POSTGRESQL_USER "$TEST_USER"
        kv POSTGRESQL_PASSWORD "$TEST_PASSWORD"
        kv POSTGRESQL_DATABASE "$TEST_DB"
        kv POSTGRESQL_SOCKET_DIR "$POSTGRES_DIR"
        kv POSTGRESQL_URI "postgresql://$TEST_USER:$TEST_PASSWORD@$TEST_HOST:$POSTGRES_PORT/$TEST_DB"
        printf '\n# FerretDB (MongoDB wire protocol, SQLite backend, no authentication)\n'
        kv FERRETDB_HOST "$TEST_HOST"
        kv FERRETDB_PORT "$FERRETDB_PORT"
        kv FERRETDB_DATABASE "$TEST_DB"
        kv FERRETDB_URI "mongodb://$TEST_HOST:$FERRETDB_PORT/"
        printf '\n# MinIO (S3)\n'
        kv MINIO_HOST "$TEST_HOST"
        kv MINIO_PORT "$MINIO_PORT"
        kv MINIO_CONSOLE_PORT "$MINIO_CONSOLE_PORT"
        kv MINIO_ENDPOINT "http://$TEST_HOST:$MINIO_PORT"
        kv MINIO_ROOT_USER "$MINIO_ROOT_USER_VALUE"
        kv MINIO_ROOT_PASSWORD "$MINIO_ROOT_PASSWORD_VALUE"
        kv S3_ENDPOINT "http://$TEST_HOST:$MINIO_PORT"
        kv AWS_ACCESS_KEY_ID "$MINIO_ROOT_USER_VALUE"
        kv AWS_SECRET_ACCESS_KEY "$MINIO_ROOT_PASSWORD_VALUE"
        kv AWS_DEFAULT_REGION us-east-1
        printf '\n# toxiproxy (HTTP API; create proxies on other 127.0.0.1 ports through it)\n'
        kv TOXIPROXY_HOST "$TEST_HOST"
        kv TOXIPROXY_PORT "$TOXIPROXY_PORT"
        kv TOXIPROXY_URL "http://$TEST_HOST:$TOXIPROXY_PORT"
        kv TOXIPROXY_CLI "$INGESTA_TEST_BIN/toxiproxy-cli"
        printf '\n# moto (the Glue stand-in; any credentials) and Trino 476 (start.sh trino; not in all)\n'
        kv INGESTA_TEST_MOTO_PORT "$MOTO_PORT"
        kv INGESTA_TEST_TRINO_PORT "$TRINO_PORT"
        kv MOTO_PORT "$MOTO_PORT"
        kv GLUE_ENDPOINT "http://$TEST_HOST:$MOTO_PORT"
        kv GLUE_REGION us-east-1
        kv TRINO_HOST "$TEST_HOST"
        kv TRINO_PORT "$TRINO_PORT"
        kv TRINO_URL "http://$TEST_HOST:$TRINO_PORT"
        kv TRINO_CATALOG awsdatacatalog
        kv TRINO_CLI "$TRINO_DIR/trino-cli"
        kv TRINO_JAVA "$(find_java || true)"
        kv TRINO_HOME "$TRINO_HOME"
        kv LAKE_PYTHON "$LAKE_VENV/bin/python3"
    } >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$envfile"
}

kv() {
    printf 'export %s=%q\n' "$1" "$2"
}

# ---------------------------------------------------------------- main

main() {
    local -a names=()
    local arg n
    [[ $# -gt 0 ]] || { usage; die "name at least one server, or all"; }
    for arg in "$@"; do
        case "$arg" in
            -h | --help) usage; exit 0 ;;
            all) names+=("${ALL_SERVERS[@]}") ;;
            trino) names+=(minio moto trino) ;;
            *) is_known_server "$arg" || { usage; die "unknown server: $arg"; }
               names+=("$arg") ;;
        esac
    done
    [[ $EUID -eq 0 ]] || die "run as root (servers run as the mysql and postgres users)"

    mkdir -p "$INGESTA_TEST_RUN"
    chmod 0755 "$INGESTA_TEST_RUN"
    # One start.sh at a time per run directory (children never inherit fd 9).
    local lock="$INGESTA_TEST_RUN/start.lock"
    exec 9>>"$lock"
    if ! flock -n 9; then
        log "waiting for another start.sh (lock $lock)"
        flock -w 900 9 || die "another start.sh still holds $lock after 900 s"
    fi

    local start=$SECONDS
    local -a started=()
    for n in "${KNOWN_SERVERS[@]}"; do
        [[ " ${names[*]} " == *" $n "* ]] || continue
        "start_$n"
        started+=("$n")
    done
    write_env
    log "ready in $((SECONDS - start)) s: ${started[*]}; settings: . $INGESTA_TEST_RUN/env"
}

main "$@"
