"""ListMultipartUploads and UploadPartCopy through boto3 against the Morsa S3 gateway.

Run by tests/gateway_clients.rs with AWS_* from the cluster's s3.env (1 MiB chunks); exits
non-zero (with the failed assertion) if the gateway misbehaves.
"""
import hashlib
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

s3 = boto3.client("s3", config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
MIB = 1 << 20


def error_code(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    raise AssertionError("the call succeeded")


bucket = "parts"
s3.create_bucket(Bucket=bucket)

# ListMultipartUploads: by key, a key's uploads in creation order, prefixes, pages.
created = []
for key in ["b", "a/one", "a/two", "a/one", "c/x"]:
    created.append((key, s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]))
listed = s3.list_multipart_uploads(Bucket=bucket)
# By key; a key's uploads by creation time (two created in the same millisecond may come in
# either order, always the same one).
expected = [(u["Key"], u["UploadId"]) for u in listed["Uploads"]]
assert [key for key, _ in expected] == sorted(key for key, _ in created), listed
assert sorted(expected) == sorted(created), listed
assert not listed["IsTruncated"], listed
assert all("Initiated" in u for u in listed["Uploads"]), listed
rolled = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
assert [u["Key"] for u in rolled["Uploads"]] == ["b"], rolled
assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["a/", "c/"], rolled
only_a = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
assert [u["Key"] for u in only_a["Uploads"]] == ["a/one", "a/one", "a/two"], only_a
paged, markers = [], {}
while True:
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, **markers)
    paged += [(u["Key"], u["UploadId"]) for u in page["Uploads"]]
    assert len(page["Uploads"]) <= 2, page
    if not page["IsTruncated"]:
        break
    markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
assert paged == expected, (paged, expected)
# Ended uploads are no longer listed.
s3.abort_multipart_upload(Bucket=bucket, Key="b", UploadId=created[0][1])
left = [(u["Key"], u["UploadId"]) for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]]
assert left == [entry for entry in expected if entry != created[0]], left
for key, upload in created[1:]:
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "every upload ended"

# UploadPartCopy: parts copied from a range of a multipart object, from a whole small
# object, and an uploaded part; the result reads back as their concatenation.
single = os.urandom(5 * MIB + 123)
s3.put_object(Bucket=bucket, Key="single", Body=single)
first, second = os.urandom(5 * MIB), os.urandom(2 * MIB + 7)
upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")["UploadId"]
etags = [
    s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload, PartNumber=n, Body=body)["ETag"]
    for n, body in [(1, first), (2, second)]
]
s3.complete_multipart_upload(
    Bucket=bucket,
    Key="multi",
    UploadId=upload,
    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in zip([1, 2], etags)]},
)
multi = first + second

upload = s3.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]
start, end = 1000, 1000 + 5 * MIB + 4321  # across chunk and part boundaries of "multi"
ranged = s3.upload_part_copy(
    Bucket=bucket,
    Key="copied",
    UploadId=upload,
    PartNumber=1,
    CopySource={"Bucket": bucket, "Key": "multi"},
    CopySourceRange=f"bytes={start}-{end}",
)["CopyPartResult"]
assert ranged["ETag"].strip('"') == hashlib.md5(multi[start : end + 1]).hexdigest(), ranged
whole = s3.upload_part_copy(
    Bucket=bucket, Key="copied", UploadId=upload, PartNumber=2, CopySource=f"{bucket}/single"
)["CopyPartResult"]
assert whole["ETag"].strip('"') == hashlib.md5(single).hexdigest(), whole
tail = os.urandom(MIB // 4 + 5)  # packed: below half a chunk
last = s3.upload_part(Bucket=bucket, Key="copied", UploadId=upload, PartNumber=3, Body=tail)["ETag"]
parts = s3.list_parts(Bucket=bucket, Key="copied", UploadId=upload)["Parts"]
assert [p["Size"] for p in parts] == [end + 1 - start, len(single), len(tail)], parts

# Refused copies store nothing: a range past the source, a source that does not match.
assert (
    error_code(
        lambda: s3.upload_part_copy(
            Bucket=bucket,
            Key="copied",
            UploadId=upload,
            PartNumber=4,
            CopySource=f"{bucket}/single",
            CopySourceRange=f"bytes=0-{len(single)}",
        )
    )
    == "InvalidArgument"
)
assert (
    error_code(
        lambda: s3.upload_part_copy(
            Bucket=bucket,
            Key="copied",
            UploadId=upload,
            PartNumber=4,
            CopySource=f"{bucket}/single",
            CopySourceIfMatch='"0123456789abcdef0123456789abcdef"',
        )
    )
    == "PreconditionFailed"
)
assert error_code(
    lambda: s3.upload_part_copy(
        Bucket=bucket, Key="copied", UploadId=upload, PartNumber=4, CopySource=f"{bucket}/absent"
    )
) in ("NoSuchKey", "404")
assert len(s3.list_parts(Bucket=bucket, Key="copied", UploadId=upload)["Parts"]) == 3

done = s3.complete_multipart_upload(
    Bucket=bucket,
    Key="copied",
    UploadId=upload,
    MultipartUpload={
        "Parts": [
            {"PartNumber": 1, "ETag": ranged["ETag"]},
            {"PartNumber": 2, "ETag": whole["ETag"]},
            {"PartNumber": 3, "ETag": last},
        ]
    },
)
expected_body = multi[start : end + 1] + single + tail
got = s3.get_object(Bucket=bucket, Key="copied")["Body"].read()
assert got == expected_body, (len(got), len(expected_body))
md5s = b"".join(hashlib.md5(p).digest() for p in [multi[start : end + 1], single, tail])
assert done["ETag"].strip('"') == hashlib.md5(md5s).hexdigest() + "-3", done
span = s3.get_object(Bucket=bucket, Key="copied", Range=f"bytes={5 * MIB}-{6 * MIB}")["Body"].read()
assert span == expected_body[5 * MIB : 6 * MIB + 1]
# The copies do not depend on their sources staying.
s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "single"}, {"Key": "multi"}]})
assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == expected_body

print("boto3 multipart checks passed")
