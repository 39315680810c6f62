#!/usr/bin/env bash
# shellcheck disable=SC2153 # the *_HOST, *_USER... variables come from the env file
# Check the running test servers with their own, independent clients: mariadb,
# psql, pymongo (/usr/bin/python3), the AWS CLI (/usr/bin/aws) and toxiproxy-cli.
# Each check writes and reads something where tests will not see it (temporary
# tables, its own MongoDB database, its own bucket ingesta-smoke) and cleans up.
#
#   tests/servers/check.sh [NAME...]    NAME: mariadb postgres ferretdb minio toxiproxy | all (default)
#
# Reads the settings from $INGESTA_TEST_RUN/env (written by start.sh).
set -euo pipefail

SCRIPT_NAME="check"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

ENV_FILE="$INGESTA_TEST_RUN/env"
FAILED=()

usage() {
    sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

ok() { log "$1: OK ($2)"; }
bad() { log "$1: FAILED ($2)"; FAILED+=("$1"); }

check_mariadb() {
    local out
    if out="$(MYSQL_PWD="$MARIADB_PASSWORD" mariadb --no-defaults -h "$MARIADB_HOST" -P "$MARIADB_PORT" \
        -u "$MARIADB_USER" --batch --skip-column-names "$MARIADB_DATABASE" 2>&1 <<'SQL'
CREATE TEMPORARY TABLE _servers_check (id INT PRIMARY KEY, s VARCHAR(20)) CHARACTER SET utf8mb4;
INSERT INTO _servers_check VALUES (1, 'héllo ✓');
START TRANSACTION WITH CONSISTENT SNAPSHOT;
SELECT CONCAT(VERSION(), ' ', @@character_set_server, ' ', s) FROM _servers_check;
COMMIT;
SELECT COUNT(*) >= 1 FROM information_schema.PROCESSLIST;
DROP TABLE _servers_check;
SQL
    )"; then
        ok mariadb "$(echo "$out" | head -n 1)"
    else
        bad mariadb "$out"
    fi
}

check_postgres() {
    local out
    if out="$(PGPASSWORD="$POSTGRESQL_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h "$POSTGRESQL_HOST" \
        -p "$POSTGRESQL_PORT" -U "$POSTGRESQL_USER" -d "$POSTGRESQL_DATABASE" -tA 2>&1 <<'SQL'
CREATE TEMP TABLE _servers_check (id int PRIMARY KEY, s text);
INSERT INTO _servers_check VALUES (1, 'héllo ✓');
SELECT current_setting('server_version') || ' ' || current_user || ' ' || s FROM _servers_check;
DROP TABLE _servers_check;
SQL
    )"; then
        ok postgres "PostgreSQL $out"
    else
        bad postgres "$out"
    fi
}

check_ferretdb() {
    local out
    # A database of its own, so that tests reading $FERRETDB_DATABASE never see it.
    if out="$(/usr/bin/python3 - "$FERRETDB_URI" 2>&1 <<'PY'
import sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
c.admin.command("ping")
coll = c["ingesta_servers_check"]["check"]
coll.drop()
coll.insert_many([{"_id": 1, "s": "héllo ✓"}, {"_id": 2, "n": 2.5}])
docs = list(coll.find().sort("_id", 1))
assert docs[0]["s"] == "héllo ✓" and docs[1]["n"] == 2.5, docs
c.drop_database("ingesta_servers_check")
info = c.server_info()
print("FerretDB wire protocol, MongoDB", info["version"], "compatible; insert/find/drop")
PY
    )"; then
        ok ferretdb "$out"
    else
        bad ferretdb "$out"
    fi
}

check_minio() {
    local bucket="ingesta-smoke" out tmp
    tmp="$(mktemp -d)"
    printf 'hello from check.sh\n' >"$tmp/obj.txt"
    if out="$(
        set -e
        export AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true
        aws() { /usr/bin/aws --endpoint-url "$S3_ENDPOINT" "$@"; }
        aws s3 mb "s3://$bucket" 2>&1 | grep -v BucketAlreadyOwnedByYou || true
        aws s3 ls | grep -q " $bucket\$"
        aws s3 cp --only-show-errors "$tmp/obj.txt" "s3://$bucket/check/obj.txt"
        aws s3 ls "s3://$bucket/check/" | grep -q obj.txt
        aws s3 cp --only-show-errors "s3://$bucket/check/obj.txt" "$tmp/back.txt"
        cmp -s "$tmp/obj.txt" "$tmp/back.txt"
        aws s3 rm --only-show-errors "s3://$bucket/check/obj.txt"
        curl -fsS -o /dev/null "$S3_ENDPOINT/minio/health/ready"
        echo "mb/ls/cp/get/rm through /usr/bin/aws on $S3_ENDPOINT"
    )"; then
        ok minio "$(echo "$out" | tail -n 1)"
    else
        bad minio "$out"
    fi
    rm -rf "$tmp"
}

check_toxiproxy() {
    local out
    if out="$(
        set -e
        cli() { "$TOXIPROXY_CLI" -h "$TOXIPROXY_URL" "$@"; }
        curl -fsS "$TOXIPROXY_URL/version" >/dev/null
        cli delete servers_check >/dev/null 2>&1 || true
        # A proxy to nothing in particular, with a toxic, then removed again.
        cli create -l "127.0.0.1:0" -u "127.0.0.1:$MINIO_PORT" servers_check >/dev/null
        cli toxic add -t latency -a latency=100 servers_check >/dev/null
        cli inspect servers_check | grep -q latency
        cli delete servers_check >/dev/null
        echo "API $TOXIPROXY_URL, version $(curl -fsS "$TOXIPROXY_URL/version")"
    )"; then
        ok toxiproxy "$out"
    else
        bad toxiproxy "$out"
    fi
}

main() {
    local -a names=()
    local arg n
    for arg in "$@"; do
        case "$arg" in
            -h | --help) usage; exit 0 ;;
            all) names+=("${ALL_SERVERS[@]}") ;;
            *) is_known_server "$arg" || { usage; die "unknown server: $arg"; }
               names+=("$arg") ;;
        esac
    done
    [[ ${#names[@]} -gt 0 ]] || names=("${ALL_SERVERS[@]}")
    [[ -f "$ENV_FILE" ]] || die "$ENV_FILE missing: run tests/servers/start.sh first"
    # shellcheck disable=SC1090
    source "$ENV_FILE"

    for n in "${names[@]}"; do
        "check_$n"
    done
    if [[ ${#FAILED[@]} -gt 0 ]]; then
        die "failed: ${FAILED[*]}"
    fi
    log "all OK: ${names[*]}"
}

main "$@"
