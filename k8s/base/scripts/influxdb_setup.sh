#!/bin/sh
# Sets up InfluxDB 2.x for the rig, idempotently: the initial user, org and bucket with
# the rig's API token (from the Secret), then the DBRP mapping that lets the InfluxQL
# dashboards (and InfluxDB 1.x clients) read the bucket as database $INFLUX_DB.
# Needs: INFLUX_URL, INFLUX_ORG, INFLUX_BUCKET, INFLUX_DB, INFLUX_TOKEN, INFLUX_ADMIN_PASSWORD.
set -eu
export INFLUX_HOST="$INFLUX_URL"
export INFLUX_CONFIGS_PATH="${TMPDIR:-/tmp}/influx-configs"

echo "waiting for InfluxDB at $INFLUX_HOST"
tries=0
until influx ping >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 120 ]; then
        echo "InfluxDB at $INFLUX_HOST did not answer in 4 minutes" >&2
        exit 1
    fi
    sleep 2
done

if influx setup --force \
    --username admin --password "$INFLUX_ADMIN_PASSWORD" \
    --org "$INFLUX_ORG" --bucket "$INFLUX_BUCKET" --token "$INFLUX_TOKEN" \
    --retention 0 >/dev/null 2>&1; then
    echo "set up org $INFLUX_ORG and bucket $INFLUX_BUCKET"
else
    # Already set up (a re-run): the token must still work and the bucket exist.
    echo "InfluxDB was already set up; checking the token and the bucket"
fi

bucket_id=$(influx bucket list --org "$INFLUX_ORG" --name "$INFLUX_BUCKET" --hide-headers \
    | awk '{print $1}')
if [ -z "$bucket_id" ]; then
    influx bucket create --org "$INFLUX_ORG" --name "$INFLUX_BUCKET" --retention 0 >/dev/null
    bucket_id=$(influx bucket list --org "$INFLUX_ORG" --name "$INFLUX_BUCKET" --hide-headers \
        | awk '{print $1}')
fi

if influx v1 dbrp list --org "$INFLUX_ORG" --db "$INFLUX_DB" \
    | grep -q "$bucket_id"; then
    echo "DBRP mapping $INFLUX_DB/autogen -> bucket $bucket_id exists"
else
    influx v1 dbrp create --org "$INFLUX_ORG" --db "$INFLUX_DB" --rp autogen \
        --bucket-id "$bucket_id" --default >/dev/null
    echo "created DBRP mapping $INFLUX_DB/autogen -> bucket $bucket_id"
fi
