"""boto3 against the Morsa S3 gateway, with boto3's default checksum behaviour.

Run by tests/gateway_clients.rs with AWS_* from the cluster's s3.env; exits non-zero (with
the failed assertion) if the gateway misbehaves.
"""
import base64
import hashlib
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

s3 = boto3.client("s3", config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
bucket = "boto"
s3.create_bucket(Bucket=bucket)


def error_code(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    raise AssertionError("the call succeeded")


# Put and get with each checksum algorithm botocore computes without its optional C runtime
# (CRC32C and CRC64NVME need botocore[crt]; the gateway's unit tests check CRC32C against a
# published value): the gateway verifies and keeps it.
for algorithm in ["CRC32", "SHA1", "SHA256"]:
    body = os.urandom(300_000)
    key = f"sum/{algorithm}"
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm=algorithm)
    assert put["ETag"].strip('"') == hashlib.md5(body).hexdigest(), put
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == body, algorithm
    assert f"Checksum{algorithm}" in got, (algorithm, got.keys())

# A wrong checksum or Content-MD5 is refused and nothing is stored.
body = b"some bytes that will not be stored"
wrong_crc = base64.b64encode(b"\0\0\0\0").decode()
code = error_code(lambda: s3.put_object(Bucket=bucket, Key="bad/crc", Body=body, ChecksumCRC32=wrong_crc))
assert code == "BadDigest", code
wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
code = error_code(lambda: s3.put_object(Bucket=bucket, Key="bad/md5", Body=body, ContentMD5=wrong_md5))
assert code == "BadDigest", code
for key in ["bad/crc", "bad/md5"]:
    assert error_code(lambda: s3.head_object(Bucket=bucket, Key=key)) == "404", key

# Paginated listing: 1,100 empty objects (no blob needed) over pages of 1,000 and of 250.
keys = [f"many/{index:05d}" for index in range(1100)]
for key in keys:
    s3.put_object(Bucket=bucket, Key=key, Body=b"")
paginator = s3.get_paginator("list_objects_v2")
for page_size in [None, 250]:
    args = {"Bucket": bucket, "Prefix": "many/"}
    if page_size:
        args["PaginationConfig"] = {"PageSize": page_size}
    pages = list(paginator.paginate(**args))
    listed = [item["Key"] for page in pages for item in page.get("Contents", [])]
    assert listed == keys, (page_size, len(listed))
    assert len(pages) == (2 if page_size is None else 5), (page_size, len(pages))
listed = [item["Key"] for page in s3.get_paginator("list_objects").paginate(Bucket=bucket, Prefix="many/")
          for item in page.get("Contents", [])]
assert listed == keys, len(listed)
top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["many/", "sum/"], top

# DeleteObjects, then the bucket can go once empty.
for start in range(0, len(keys), 1000):
    batch = keys[start:start + 1000]
    done = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch]})
    assert len(done["Deleted"]) == len(batch), done.get("Errors")
assert error_code(lambda: s3.delete_bucket(Bucket=bucket)) == "BucketNotEmpty"
print("boto3 checks passed")
sys.exit(0)
