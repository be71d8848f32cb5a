"""Versioning, CopyObject and Object Lock through boto3 against the Morsa S3 gateway.

Run by tests/gateway_clients.rs with AWS_* from the cluster's s3.env; exits non-zero (with
the failed assertion) if the gateway misbehaves.
"""
import datetime
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

s3 = boto3.client("s3", config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


def error_code(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    raise AssertionError("the call succeeded")


def read(bucket, key, **version):
    return s3.get_object(Bucket=bucket, Key=key, **version)["Body"].read()


# Versioning: an object written before versioning becomes version "null"; each PUT adds a
# version; a DELETE adds a delete marker; versions read back by ID and list in pages.
bucket = "versioned"
s3.create_bucket(Bucket=bucket)
assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="doc", Body=b"v0")
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
ids = [s3.put_object(Bucket=bucket, Key="doc", Body=f"v{n}".encode())["VersionId"] for n in (1, 2)]
assert len(set(ids)) == 2 and "null" not in ids, ids
assert read(bucket, "doc") == b"v2"
assert read(bucket, "doc", VersionId=ids[0]) == b"v1"
assert read(bucket, "doc", VersionId="null") == b"v0"
assert s3.head_object(Bucket=bucket, Key="doc")["VersionId"] == ids[1]
deleted = s3.delete_object(Bucket=bucket, Key="doc")
assert deleted["DeleteMarker"] and deleted["VersionId"], deleted
assert error_code(lambda: s3.get_object(Bucket=bucket, Key="doc")) == "NoSuchKey"
assert read(bucket, "doc", VersionId=ids[1]) == b"v2", "a delete marker keeps older versions"
assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
s3.put_object(Bucket=bucket, Key="other/a", Body=b"a")
versions = s3.list_object_versions(Bucket=bucket)
listed = [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions["Versions"]]
assert listed == [("doc", ids[1], False), ("doc", ids[0], False), ("doc", "null", False),
                  ("other/a", listed[3][1], True)], listed
assert [(m["VersionId"], m["IsLatest"]) for m in versions["DeleteMarkers"]] == [(deleted["VersionId"], True)]
rolled = s3.list_object_versions(Bucket=bucket, Delimiter="/")
assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["other/"], rolled
pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
paged = [(v["Key"], v["VersionId"]) for page in pages for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
assert sorted(paged) == sorted([(k, v) for k, v, _ in listed] + [("doc", deleted["VersionId"])]), paged
assert len(pages) == 3, len(pages)
# Deleting the delete marker brings the object back.
s3.delete_object(Bucket=bucket, Key="doc", VersionId=deleted["VersionId"])
assert read(bucket, "doc") == b"v2"
s3.delete_object(Bucket=bucket, Key="doc", VersionId=ids[1])
assert read(bucket, "doc") == b"v1", "deleting the newest version makes the previous one current"
assert error_code(lambda: s3.delete_bucket(Bucket=bucket)) == "BucketNotEmpty"

# CopyObject: within a bucket and across buckets, metadata copied or replaced, from a
# version; a large (multi-chunk) object copies without its bytes passing through the client.
plain = "plain"
s3.create_bucket(Bucket=plain)
large = os.urandom(3 << 20)
s3.put_object(Bucket=plain, Key="large", Body=large, ContentType="application/x-test", Metadata={"colour": "blue"})
copied = s3.copy_object(Bucket=plain, Key="large-copy", CopySource={"Bucket": plain, "Key": "large"})
source_head = s3.head_object(Bucket=plain, Key="large")
assert copied["CopyObjectResult"]["ETag"] == source_head["ETag"], copied
head = s3.head_object(Bucket=plain, Key="large-copy")
assert head["ContentType"] == "application/x-test" and head["Metadata"] == {"colour": "blue"}, head
assert read(plain, "large-copy") == large
s3.copy_object(Bucket=bucket, Key="from-plain", CopySource={"Bucket": plain, "Key": "large"},
               MetadataDirective="REPLACE", ContentType="text/plain", Metadata={"colour": "red"})
head = s3.head_object(Bucket=bucket, Key="from-plain")
assert head["ContentType"] == "text/plain" and head["Metadata"] == {"colour": "red"}, head
assert read(bucket, "from-plain") == large
older = s3.copy_object(Bucket=plain, Key="old-doc", CopySource={"Bucket": bucket, "Key": "doc", "VersionId": "null"})
assert older["CopySourceVersionId"] == "null", older
assert read(plain, "old-doc") == b"v0"
# Deleting the source leaves the copy readable (they share chunk blobs).
s3.delete_object(Bucket=plain, Key="large")
assert read(plain, "large-copy") == large
assert error_code(lambda: s3.copy_object(Bucket=plain, Key="large-copy",
                                         CopySource={"Bucket": plain, "Key": "large-copy"})) == "InvalidRequest"
assert error_code(lambda: s3.copy_object(Bucket=plain, Key="x", CopySource={"Bucket": plain, "Key": "gone"})) == "NoSuchKey"

# Object Lock: a bucket created with it has versioning on and takes a default retention;
# GOVERNANCE refuses deletes unless bypassed; a legal hold refuses them while ON.
locked = "locked-boto"
s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
assert error_code(lambda: s3.get_object_lock_configuration(Bucket=plain)) == "ObjectLockConfigurationNotFoundError"
s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
    "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
rule = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
assert rule == {"Mode": "GOVERNANCE", "Days": 1}, rule
version = s3.put_object(Bucket=locked, Key="g", Body=b"governed")["VersionId"]
retention = s3.get_object_retention(Bucket=locked, Key="g", VersionId=version)["Retention"]
assert retention["Mode"] == "GOVERNANCE", retention
assert error_code(lambda: s3.delete_object(Bucket=locked, Key="g", VersionId=version)) == "AccessDenied"
s3.delete_object(Bucket=locked, Key="g", VersionId=version, BypassGovernanceRetention=True)
assert error_code(lambda: s3.head_object(Bucket=locked, Key="g", VersionId=version)) == "404"
held = s3.put_object(Bucket=locked, Key="h", Body=b"held", ObjectLockLegalHoldStatus="ON",
                     ObjectLockMode="GOVERNANCE",
                     ObjectLockRetainUntilDate=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30))
assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "ON"
assert error_code(lambda: s3.delete_object(Bucket=locked, Key="h", VersionId=held["VersionId"],
                                           BypassGovernanceRetention=True)) == "AccessDenied"
s3.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "OFF"})
s3.delete_object(Bucket=locked, Key="h", VersionId=held["VersionId"], BypassGovernanceRetention=True)
# A multipart upload takes the lock its creation asks for (its parts' blobs are permanent
# under COMPLIANCE); without lock headers, the bucket's default.
until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
for key, lock in [("mp-compliance", {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}),
                  ("mp-default", {})]:
    upload = s3.create_multipart_upload(Bucket=locked, Key=key, **lock)["UploadId"]
    etag = s3.upload_part(Bucket=locked, Key=key, UploadId=upload, PartNumber=1, Body=b"in parts")["ETag"]
    done = s3.complete_multipart_upload(Bucket=locked, Key=key, UploadId=upload,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    retention = s3.get_object_retention(Bucket=locked, Key=key)["Retention"]
    assert retention["Mode"] == ("COMPLIANCE" if lock else "GOVERNANCE"), (key, retention)
    assert error_code(lambda: s3.delete_object(Bucket=locked, Key=key, VersionId=done["VersionId"])) == "AccessDenied"
assert error_code(lambda: s3.put_bucket_versioning(Bucket=locked,
                                                   VersioningConfiguration={"Status": "Suspended"})) == "InvalidBucketState"
# Lock headers on a bucket without Object Lock are refused.
assert error_code(lambda: s3.put_object(Bucket=plain, Key="nolock", Body=b"x", ObjectLockLegalHoldStatus="ON")) == "InvalidRequest"
print("boto3 version checks passed")
sys.exit(0)
