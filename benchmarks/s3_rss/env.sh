# Source before the scripts: a moto server started separately on 127.0.0.1:5123
# (nice -n 19 python -m moto.server -H 127.0.0.1 -p 5123 &).
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:5123
export S3RSS_WORK=${S3RSS_WORK:-/tmp/s3rss}
export SEIS_DATA_ROOTS="$S3RSS_WORK:s3://seis-rss"
