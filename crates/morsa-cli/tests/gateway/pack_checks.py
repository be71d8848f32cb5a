"""Small objects PUT at the same time through the Morsa S3 gateway: they come back whole and
in ranges, and stay readable next to large ones.

Run by tests/gateway_clients.rs with AWS_* from the cluster's s3.env; exits non-zero (with
the failed assertion) if the gateway misbehaves. The test reads the gateway's log to see the
objects were packed several to a blob.
"""
import concurrent.futures
import hashlib
import os

import boto3
from botocore.config import Config

s3 = boto3.client(
    "s3",
    config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}, max_pool_connections=16),
)
bucket = "packed"
s3.create_bucket(Bucket=bucket)

# 48 small bodies (0.5 to 300 KiB) sent by 12 threads at once.
bodies = {f"small/{index:03}": os.urandom(512 + index * 6_000) for index in range(48)}


def put(item):
    key, body = item
    answer = s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert answer["ETag"].strip('"') == hashlib.md5(body).hexdigest(), (key, answer)


with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
    list(pool.map(put, bodies.items()))

# Every object reads back whole, and a range of it reads back exactly.
for key, body in bodies.items():
    got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert got == body, key
    start, end = len(body) // 3, len(body) // 3 + len(body) // 4
    ranged = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")["Body"].read()
    assert ranged == body[start : end + 1], (key, start, end)
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(body), (key, head)

listed = s3.list_objects_v2(Bucket=bucket, Prefix="small/")
assert [item["Key"] for item in listed["Contents"]] == sorted(bodies), listed

# Deleting one packed object leaves the others of its pack readable.
s3.delete_object(Bucket=bucket, Key="small/000")
for key in ["small/001", "small/047"]:
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == bodies[key], key

print("pack checks passed")
