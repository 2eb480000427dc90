#!/usr/bin/env python3
"""BunBase storage's S3 API driven by boto3, as users will.

Run by the Rust integration test `storage_s3::boto3_suite`, which starts a
server and passes it in the environment:

    S3_ENDPOINT     http://127.0.0.1:PORT/storage/s3
    S3_ACCESS_KEY   an S3 credential of a project
    S3_SECRET_KEY   its secret

Exits 0 and prints "ok" when every check holds; an AssertionError (with a
traceback) otherwise; exit code 3 when boto3 is missing.
"""

import datetime
import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request

try:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError as e:  # pragma: no cover
    print(f"boto3 is missing ({e}): pip install boto3 awscli", file=sys.stderr)
    sys.exit(3)

ENDPOINT = os.environ["S3_ENDPOINT"]
ACCESS_KEY = os.environ["S3_ACCESS_KEY"]
SECRET_KEY = os.environ["S3_SECRET_KEY"]
MIB = 1024 * 1024


def client(access_key=ACCESS_KEY, secret_key=SECRET_KEY, **config):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            **{"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 1}, **config}
        ),
    )


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"{fn.__name__}: expected {code}, got {got}: {e.response}"
        return e
    raise AssertionError(f"{fn.__name__}: expected {code}, it succeeded")


def fetch(request):
    """urllib's urlopen, with S3's error document in the failure."""
    try:
        with urllib.request.urlopen(request) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def status(response):
    return response["ResponseMetadata"]["HTTPStatusCode"]


s3 = client()
BUCKET = "boto-bucket"

# Buckets.
s3.create_bucket(Bucket=BUCKET)
expect_error("BucketAlreadyOwnedByYou", s3.create_bucket, Bucket=BUCKET)
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
assert BUCKET in names, names
s3.head_bucket(Bucket=BUCKET)
assert s3.get_bucket_location(Bucket=BUCKET).get("LocationConstraint") in (None, "")
s3.create_bucket(
    Bucket="boto-configured",
    CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
)
s3.delete_bucket(Bucket="boto-configured")
expect_error("404", s3.head_bucket, Bucket="boto-configured")

# Put, get, head, metadata.
body = b"hello, s3 world"
put = s3.put_object(
    Bucket=BUCKET,
    Key="dir/hello.txt",
    Body=body,
    ContentType="text/plain",
    Metadata={"Color": "Blue", "owner-id": "42"},
)
etag = put["ETag"]
assert etag == '"%s"' % hashlib.md5(body).hexdigest(), etag
got = s3.get_object(Bucket=BUCKET, Key="dir/hello.txt")
assert got["Body"].read() == body
assert got["ContentType"] == "text/plain", got["ContentType"]
assert got["Metadata"] == {"color": "Blue", "owner-id": "42"}, got["Metadata"]
assert got["ContentLength"] == len(body)
assert got["ETag"] == etag
assert got["AcceptRanges"] == "bytes"
head = s3.head_object(Bucket=BUCKET, Key="dir/hello.txt")
assert head["ContentLength"] == len(body), head
assert head["Metadata"]["color"] == "Blue"
assert isinstance(head["LastModified"], datetime.datetime)
age = datetime.datetime.now(datetime.timezone.utc) - head["LastModified"]
assert abs(age.total_seconds()) < 120, head["LastModified"]

# Ranges and conditions.
part = s3.get_object(Bucket=BUCKET, Key="dir/hello.txt", Range="bytes=7-9")
assert status(part) == 206
assert part["Body"].read() == body[7:10]
assert part["ContentRange"] == f"bytes 7-9/{len(body)}", part["ContentRange"]
tail = s3.get_object(Bucket=BUCKET, Key="dir/hello.txt", Range="bytes=-5")
assert tail["Body"].read() == body[-5:]
expect_error("InvalidRange", s3.get_object, Bucket=BUCKET, Key="dir/hello.txt", Range="bytes=100-")
expect_error("304", s3.get_object, Bucket=BUCKET, Key="dir/hello.txt", IfNoneMatch=etag)
expect_error(
    "304",
    s3.get_object,
    Bucket=BUCKET,
    Key="dir/hello.txt",
    IfModifiedSince=head["LastModified"] + datetime.timedelta(seconds=1),
)
expect_error("PreconditionFailed", s3.get_object, Bucket=BUCKET, Key="dir/hello.txt", IfMatch='"0000"')
assert s3.get_object(Bucket=BUCKET, Key="dir/hello.txt", IfMatch=etag)["Body"].read() == body
expect_error(
    "PreconditionFailed",
    s3.put_object,
    Bucket=BUCKET,
    Key="dir/hello.txt",
    Body=b"other",
    IfNoneMatch="*",
)
assert s3.get_object(Bucket=BUCKET, Key="dir/hello.txt")["Body"].read() == body

# Keys that need escaping everywhere (path, XML, listings).
odd = "odd/ä ö+&=?#%<>'\".txt"
s3.put_object(Bucket=BUCKET, Key=odd, Body=b"odd")
assert s3.get_object(Bucket=BUCKET, Key=odd)["Body"].read() == b"odd"
listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="odd/")
assert [o["Key"] for o in listed["Contents"]] == [odd], listed
listed = s3.list_objects(Bucket=BUCKET, Prefix="odd/")
assert [o["Key"] for o in listed["Contents"]] == [odd], listed
empty = s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")
assert s3.get_object(Bucket=BUCKET, Key="empty")["Body"].read() == b""

# Copies: metadata kept, or replaced.
s3.copy_object(Bucket=BUCKET, Key="copy.txt", CopySource={"Bucket": BUCKET, "Key": "dir/hello.txt"})
copied = s3.get_object(Bucket=BUCKET, Key="copy.txt")
assert copied["Body"].read() == body
assert copied["Metadata"] == {"color": "Blue", "owner-id": "42"}
assert copied["ContentType"] == "text/plain"
s3.copy_object(
    Bucket=BUCKET,
    Key="replaced.json",
    CopySource={"Bucket": BUCKET, "Key": "dir/hello.txt"},
    MetadataDirective="REPLACE",
    ContentType="application/json",
    Metadata={"new": "yes"},
)
replaced = s3.head_object(Bucket=BUCKET, Key="replaced.json")
assert replaced["Metadata"] == {"new": "yes"}, replaced["Metadata"]
assert replaced["ContentType"] == "application/json"
s3.copy_object(Bucket=BUCKET, Key="odd-copy", CopySource={"Bucket": BUCKET, "Key": odd})
assert s3.get_object(Bucket=BUCKET, Key="odd-copy")["Body"].read() == b"odd"
expect_error(
    "NoSuchKey",
    s3.copy_object,
    Bucket=BUCKET,
    Key="x",
    CopySource={"Bucket": BUCKET, "Key": "missing"},
)

# Listings: folders, pages, markers.
for i in range(7):
    s3.put_object(Bucket=BUCKET, Key=f"list/a/{i}", Body=b"a")
s3.put_object(Bucket=BUCKET, Key="list/b/x", Body=b"b")
s3.put_object(Bucket=BUCKET, Key="list/c.txt", Body=b"c")
top = s3.list_objects_v2(Bucket=BUCKET, Prefix="list/", Delimiter="/")
assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["list/a/", "list/b/"], top
assert [o["Key"] for o in top["Contents"]] == ["list/c.txt"], top
assert top["KeyCount"] == 3 and not top["IsTruncated"], top
first = s3.list_objects_v2(Bucket=BUCKET, Prefix="list/", Delimiter="/", MaxKeys=1)
assert first["IsTruncated"] and first["KeyCount"] == 1, first
assert [p["Prefix"] for p in first["CommonPrefixes"]] == ["list/a/"]
second = s3.list_objects_v2(
    Bucket=BUCKET,
    Prefix="list/",
    Delimiter="/",
    MaxKeys=1,
    ContinuationToken=first["NextContinuationToken"],
)
assert [p["Prefix"] for p in second["CommonPrefixes"]] == ["list/b/"], second
pages = list(
    s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix="list/a/", PaginationConfig={"PageSize": 3}
    )
)
keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
assert keys == [f"list/a/{i}" for i in range(7)], keys
assert len(pages) == 3, [p["KeyCount"] for p in pages]
after = s3.list_objects_v2(Bucket=BUCKET, Prefix="list/a/", StartAfter="list/a/4")
assert [o["Key"] for o in after["Contents"]] == ["list/a/5", "list/a/6"], after
v1 = s3.list_objects(Bucket=BUCKET, Prefix="list/a/", MaxKeys=2)
assert v1["IsTruncated"] and [o["Key"] for o in v1["Contents"]] == ["list/a/0", "list/a/1"], v1
v1 = s3.list_objects(Bucket=BUCKET, Prefix="list/a/", Marker="list/a/1")
assert [o["Key"] for o in v1["Contents"]] == [f"list/a/{i}" for i in range(2, 7)], v1
v1_keys = [
    o["Key"]
    for page in s3.get_paginator("list_objects").paginate(
        Bucket=BUCKET, Prefix="list/", PaginationConfig={"PageSize": 4}
    )
    for o in page.get("Contents", [])
]
assert len(v1_keys) == 9, v1_keys

# DeleteObjects, verbose and quiet; DeleteObject of a missing key.
deleted = s3.delete_objects(
    Bucket=BUCKET,
    Delete={"Objects": [{"Key": "list/a/0"}, {"Key": "list/a/1"}, {"Key": "never-was"}]},
)
assert sorted(d["Key"] for d in deleted["Deleted"]) == ["list/a/0", "list/a/1", "never-was"], deleted
assert not deleted.get("Errors"), deleted
quiet = s3.delete_objects(
    Bucket=BUCKET,
    Delete={"Objects": [{"Key": f"list/a/{i}"} for i in range(2, 7)], "Quiet": True},
)
assert not quiet.get("Deleted") and not quiet.get("Errors"), quiet
assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="list/a/")
assert status(s3.delete_object(Bucket=BUCKET, Key="never-was")) == 204

# Multipart by hand: 2 × 5 MiB and a small last part.
parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"the small last part"]
mpu = s3.create_multipart_upload(
    Bucket=BUCKET, Key="big.bin", ContentType="application/x-test", Metadata={"kind": "mp"}
)
upload_id = mpu["UploadId"]
listed = s3.list_multipart_uploads(Bucket=BUCKET)
assert upload_id in [u["UploadId"] for u in listed.get("Uploads", [])], listed
done = []
for number, data in enumerate(parts_data, start=1):
    r = s3.upload_part(Bucket=BUCKET, Key="big.bin", UploadId=upload_id, PartNumber=number, Body=data)
    assert r["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    done.append({"PartNumber": number, "ETag": r["ETag"]})
parts = s3.list_parts(Bucket=BUCKET, Key="big.bin", UploadId=upload_id)
assert [p["Size"] for p in parts["Parts"]] == [len(d) for d in parts_data], parts
expect_error(
    "InvalidPartOrder",
    s3.complete_multipart_upload,
    Bucket=BUCKET,
    Key="big.bin",
    UploadId=upload_id,
    MultipartUpload={"Parts": [done[1], done[0]]},
)
expect_error(
    "EntityTooSmall",
    s3.complete_multipart_upload,
    Bucket=BUCKET,
    Key="big.bin",
    UploadId=upload_id,
    MultipartUpload={"Parts": [done[0], done[2], {"PartNumber": 4, "ETag": done[2]["ETag"]}]},
)
completed = s3.complete_multipart_upload(
    Bucket=BUCKET, Key="big.bin", UploadId=upload_id, MultipartUpload={"Parts": done}
)
assert completed["ETag"].endswith('-3"'), completed
big = s3.get_object(Bucket=BUCKET, Key="big.bin")
assert big["ContentLength"] == sum(len(d) for d in parts_data)
assert big["Body"].read() == b"".join(parts_data)
assert big["Metadata"] == {"kind": "mp"} and big["ContentType"] == "application/x-test", big
expect_error("NoSuchUpload", s3.list_parts, Bucket=BUCKET, Key="big.bin", UploadId=upload_id)

# An aborted upload is gone.
aborted = s3.create_multipart_upload(Bucket=BUCKET, Key="aborted.bin")["UploadId"]
s3.upload_part(Bucket=BUCKET, Key="aborted.bin", UploadId=aborted, PartNumber=1, Body=b"x")
s3.abort_multipart_upload(Bucket=BUCKET, Key="aborted.bin", UploadId=aborted)
expect_error(
    "NoSuchUpload",
    s3.upload_part,
    Bucket=BUCKET,
    Key="aborted.bin",
    UploadId=aborted,
    PartNumber=2,
    Body=b"y",
)
expect_error("NoSuchKey", s3.get_object, Bucket=BUCKET, Key="aborted.bin")

# boto3's managed transfers: multipart above a 5 MiB threshold.
with tempfile.TemporaryDirectory() as tmp:
    source = os.path.join(tmp, "source.bin")
    target = os.path.join(tmp, "target.bin")
    data = os.urandom(12 * MIB + 12345)
    with open(source, "wb") as f:
        f.write(data)
    transfer = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(source, BUCKET, "uploaded.bin", Config=transfer)
    head = s3.head_object(Bucket=BUCKET, Key="uploaded.bin")
    assert head["ETag"].endswith('-3"'), head["ETag"]
    assert head["ContentLength"] == len(data)
    s3.download_file(BUCKET, "uploaded.bin", target, Config=transfer)
    with open(target, "rb") as f:
        assert f.read() == data
    # UploadPartCopy: a managed copy above the threshold.
    s3.copy({"Bucket": BUCKET, "Key": "uploaded.bin"}, BUCKET, "uploaded-copy.bin", Config=transfer)
    copy = s3.get_object(Bucket=BUCKET, Key="uploaded-copy.bin")
    assert copy["Body"].read() == data

# boto3's default over HTTPS: aws-chunked bodies with a trailing checksum
# (STREAMING-UNSIGNED-PAYLOAD-TRAILER). botocore picks it only for https
# endpoints; pretending the scheme is https makes it pick it here.
import botocore.httpchecksum as httpchecksum
from botocore.exceptions import MissingDependencyException

real_urlparse = httpchecksum.urlparse
httpchecksum.urlparse = lambda url: real_urlparse(url)._replace(scheme="https")
try:
    chunked = client()
    sent = []
    chunked.meta.events.register(
        "before-send.s3.*",
        lambda request, **_: sent.append(request.headers.get("x-amz-content-sha256")),
    )
    data = os.urandom(300_000)
    tried = []
    for algorithm in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"):
        try:
            chunked.put_object(
                Bucket=BUCKET, Key=f"trailer/{algorithm}", Body=data, ChecksumAlgorithm=algorithm
            )
        except MissingDependencyException:
            continue  # CRC32C/CRC64NVME need awscrt in botocore
        tried.append(algorithm)
        assert s3.get_object(Bucket=BUCKET, Key=f"trailer/{algorithm}")["Body"].read() == data
    assert "CRC32" in tried and "SHA256" in tried, tried
    assert sent and all(v == b"STREAMING-UNSIGNED-PAYLOAD-TRAILER" for v in sent), sent
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "source.bin")
        with open(source, "wb") as f:
            f.write(os.urandom(11 * MIB))
        chunked.upload_file(
            source,
            BUCKET,
            "trailer/multipart.bin",
            Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB),
        )
        with open(source, "rb") as f:
            assert s3.get_object(Bucket=BUCKET, Key="trailer/multipart.bin")["Body"].read() == f.read()
finally:
    httpchecksum.urlparse = real_urlparse
# Payload signing off: UNSIGNED-PAYLOAD with the checksum in a header.
unsigned = client(s3={"addressing_style": "path", "payload_signing_enabled": False})
sent = []
unsigned.meta.events.register(
    "before-send.s3.*",
    lambda request, **_: sent.append(request.headers.get("x-amz-content-sha256")),
)
unsigned.put_object(Bucket=BUCKET, Key="unsigned.txt", Body=b"unsigned payload")
assert sent == [b"UNSIGNED-PAYLOAD"], sent
assert s3.get_object(Bucket=BUCKET, Key="unsigned.txt")["Body"].read() == b"unsigned payload"

# Presigned URLs, used without boto3: signature version 4 (with
# signature_version="s3v4") and boto3's default for presigning, version 2.
s3v4 = client(signature_version="s3v4")
for signer in (s3v4, s3):
    url = signer.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "dir/hello.txt"}, ExpiresIn=300
    )
    code, got = fetch(url)
    assert (code, got) == (200, body), (url, code, got)
    odd_url = signer.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": odd}, ExpiresIn=60
    )
    code, got = fetch(odd_url)
    assert (code, got) == (200, b"odd"), (odd_url, code, got)
    tampered = url.replace("dir/hello.txt", "copy.txt")
    code, got = fetch(tampered)
    assert code == 403 and b"SignatureDoesNotMatch" in got, (code, got)
    overridden = signer.generate_presigned_url(
        "get_object",
        Params={"Bucket": BUCKET, "Key": "dir/hello.txt", "ResponseContentType": "application/x-override"},
        ExpiresIn=60,
    )
    with urllib.request.urlopen(overridden) as r:
        assert r.headers["Content-Type"] == "application/x-override", dict(r.headers)
put_url = s3v4.generate_presigned_url(
    "put_object", Params={"Bucket": BUCKET, "Key": "presigned.txt"}, ExpiresIn=300
)
request = urllib.request.Request(put_url, data=b"via a presigned URL", method="PUT")
code, got = fetch(request)
assert code == 200, (put_url, code, got)
assert s3.get_object(Bucket=BUCKET, Key="presigned.txt")["Body"].read() == b"via a presigned URL"
# Version 2 signs the content type: send the one signed.
put_url = s3.generate_presigned_url(
    "put_object",
    Params={"Bucket": BUCKET, "Key": "presigned-v2.txt", "ContentType": "text/plain"},
    ExpiresIn=300,
)
request = urllib.request.Request(
    put_url, data=b"v2", method="PUT", headers={"Content-Type": "text/plain"}
)
code, got = fetch(request)
assert code == 200, (put_url, code, got)
v2 = s3.get_object(Bucket=BUCKET, Key="presigned-v2.txt")
assert v2["Body"].read() == b"v2" and v2["ContentType"] == "text/plain"
expired = s3v4.generate_presigned_url(
    "get_object", Params={"Bucket": BUCKET, "Key": "dir/hello.txt"}, ExpiresIn=1
)
time.sleep(2)
code, got = fetch(expired)
assert code == 403 and b"Request has expired" in got, (code, got)

# Errors.
expect_error("NoSuchKey", s3.get_object, Bucket=BUCKET, Key="nope")
expect_error("404", s3.head_object, Bucket=BUCKET, Key="nope")
expect_error("NoSuchBucket", s3.list_objects_v2, Bucket="no-such-bucket")
expect_error("NoSuchBucket", s3.put_object, Bucket="no-such-bucket", Key="k", Body=b"x")
expect_error("BucketNotEmpty", s3.delete_bucket, Bucket=BUCKET)
expect_error("SignatureDoesNotMatch", client(secret_key="wrong" + SECRET_KEY[5:]).list_buckets)
expect_error("InvalidAccessKeyId", client(access_key="BBNOSUCHKEY0000000").list_buckets)
expect_error("InvalidBucketName", s3.create_bucket, Bucket="Bad_Name")

# Clean up: a bucket empties and goes.
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
    objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
    if objects:
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": objects, "Quiet": True})
s3.delete_bucket(Bucket=BUCKET)
expect_error("NoSuchBucket", s3.list_objects_v2, Bucket=BUCKET)
assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]

print("ok")
