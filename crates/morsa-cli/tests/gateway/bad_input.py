"""Bad input against the Morsa S3 gateway, on raw sockets: malformed XML bodies, a body cut
short with the connection closed, and bodies longer than their Content-Length. Each answers a
clear S3 error (or a closed connection), stores nothing, and the gateway keeps serving.

Run by tests/gateway_clients.rs with AWS_* from the cluster's s3.env; requests are signed with
botocore's SigV4 signer and sent byte by byte as the test wants them.
"""
import base64
import hashlib
import os
import socket
import sys
import urllib.parse

import boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

endpoint = os.environ["AWS_ENDPOINT_URL"]
parsed = urllib.parse.urlparse(endpoint)
host, port = parsed.hostname, parsed.port
credentials = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
region = os.environ["AWS_REGION"]
s3 = boto3.client("s3", config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
bucket = "bad-input"
s3.create_bucket(Bucket=bucket)


def signed_headers(method, path, signed_body, extra=None):
    """The headers of a request signed for `signed_body` (which need not be what is sent)."""
    request = AWSRequest(method=method, url=endpoint + path, data=signed_body, headers=extra or {})
    S3SigV4Auth(credentials, "s3", region).add_auth(request)
    return {name: value for name, value in request.headers.items()}


def send(method, path, headers, body, content_length, close_write=False):
    """Sends one request on a fresh connection; answers (status, response bytes); status is
    None if the gateway closed the connection without answering."""
    connection = socket.create_connection((host, port), timeout=60)
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {content_length}"]
    head += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"]
    connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    if close_write:
        connection.shutdown(socket.SHUT_WR)
    response = b""
    try:
        while True:
            data = connection.recv(65536)
            if not data:
                break
            response += data
            # The first response is enough once its body (an XML error or nothing) is in.
            if b"\r\n\r\n" in response and (response.endswith(b">") or response.endswith(b"\r\n\r\n")):
                break
    except (ConnectionResetError, socket.timeout):
        pass
    connection.close()
    if not response:
        return None, response
    return int(response.split(b" ", 2)[1]), response


def code_of(response):
    start = response.find(b"<Code>")
    return response[start + 6:response.find(b"</Code>")].decode() if start >= 0 else None


def absent(key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "404", error.response
        return True
    return False


# 1. A malformed CompleteMultipartUpload is refused and the upload is left as it was.
upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")["UploadId"]
part = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload, PartNumber=1, Body=b"part one")
path = f"/{bucket}/multi?uploadId={upload}"
for bad in [b"<CompleteMultipartUpload><Part><PartNumber>1</Part", b"not xml at all", b"<a></b>"]:
    status, response = send("POST", path, signed_headers("POST", path, bad), bad, len(bad))
    assert status == 400 and code_of(response) == "MalformedXML", (bad, response)
assert absent("multi"), "a malformed completion stored the object"
parts = s3.list_parts(Bucket=bucket, Key="multi", UploadId=upload)["Parts"]
assert [p["PartNumber"] for p in parts] == [1], parts
s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload,
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
assert s3.get_object(Bucket=bucket, Key="multi")["Body"].read() == b"part one"

# 2. A malformed DeleteObjects deletes nothing.
path = f"/{bucket}?delete"
for bad in [b"<Delete><Object><Key>multi</Key></Object>", b"\xff\xfe garbage"]:
    md5 = base64.b64encode(hashlib.md5(bad).digest()).decode()
    status, response = send("POST", path, signed_headers("POST", path, bad, {"Content-MD5": md5}), bad, len(bad))
    assert status == 400 and code_of(response) == "MalformedXML", (bad, response)
assert not absent("multi"), "a malformed DeleteObjects deleted an object"

# 3. A body cut short (Content-Length promises 3 MiB, 1.5 MiB come, then the connection
# closes): an IncompleteBody error or a closed connection, and nothing is stored, although
# a whole 1 MiB chunk of it was.
whole = os.urandom(3 << 20)
sent = whole[: len(whole) // 2]
for signed in [True, False]:
    key = f"truncated-{signed}"
    if signed:
        path = f"/{bucket}/{key}"
        headers = signed_headers("PUT", path, whole)
    else:
        path = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key})[len(endpoint):]
        headers = {}
    status, response = send("PUT", path, headers, sent, len(whole), close_write=True)
    assert status is None or (status == 400 and code_of(response) == "IncompleteBody"), response[:300]
    assert absent(key), f"a truncated body was stored ({key})"

# 4. A body longer than its Content-Length: the bytes past it are not part of the request
# (HTTP), so the body the gateway reads does not match what was signed or digested: refused,
# nothing stored.
body = os.urandom(4000)
path = f"/{bucket}/longer-signed"
status, response = send("PUT", path, signed_headers("PUT", path, body), body, 2000)
assert status == 400 and code_of(response) == "XAmzContentSHA256Mismatch", response[:300]
assert absent("longer-signed")
# Presigned (the payload is unsigned), with the whole body's Content-MD5.
md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "longer-md5", "ContentMD5": md5},
                                ExpiresIn=600)
status, response = send("PUT", url[len(endpoint):], {"Content-MD5": md5}, body, 2000)
assert status == 400 and code_of(response) == "BadDigest", response[:300]
assert absent("longer-md5")

# The gateway keeps serving.
s3.put_object(Bucket=bucket, Key="after", Body=b"still here")
assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"still here"
listed = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
assert listed == ["after", "multi"], listed
print("bad input checks passed")
sys.exit(0)
