"""S3 versioning with boto3, on both storage backends: version ids, delete markers, reads and
deletes of one version, suspended versioning and its `null` version, ListObjectVersions with
its markers and prefixes, copies and multipart uploads of versions, the permissions each
versioned operation needs, and concurrent writers of one key."""

import threading
import xml.etree.ElementTree as ET

import botocore.exceptions
import pytest

from test_s3 import user_client
from test_sts import error_of


NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def versions_of(s3, bucket, **kw):
    """(key, version id, is latest, delete marker?) in the order S3 lists them, read from the
    raw replies (boto3 splits versions and markers into two lists, losing their order)."""
    bodies = []

    def keep(http_response, **_):
        bodies.append(http_response.content)

    s3.meta.events.register("after-call.s3.ListObjectVersions", keep)
    try:
        for _ in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, **kw):
            pass
    finally:
        s3.meta.events.unregister("after-call.s3.ListObjectVersions", keep)
    out = []
    for body in bodies:
        for el in ET.fromstring(body):
            tag = el.tag.removeprefix(NS)
            if tag in ("Version", "DeleteMarker"):
                out.append((el.findtext(NS + "Key"), el.findtext(NS + "VersionId"),
                            el.findtext(NS + "IsLatest") == "true", tag == "DeleteMarker"))
    return out


def raised(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e


def empty_bucket(s3, bucket):
    """Deletes every version and marker the way cleanup tools do, then the bucket."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if doomed:
            out = s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed})
            assert not out.get("Errors")
    s3.delete_bucket(Bucket=bucket)


def test_versions_pile_up_and_delete_markers_hide_keys(any_backend):
    s3 = any_backend.client("s3")
    s3.create_bucket(Bucket="vers")
    assert "Status" not in s3.get_bucket_versioning(Bucket="vers")
    # An unversioned bucket lists each object as its `null` version, and GET tells no id.
    s3.put_object(Bucket="vers", Key="k", Body=b"v0")
    assert versions_of(s3, "vers") == [("k", "null", True, False)]
    assert "VersionId" not in s3.get_object(Bucket="vers", Key="k")
    s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="vers")["Status"] == "Enabled"

    ids = [s3.put_object(Bucket="vers", Key="k", Body=body)["VersionId"] for body in [b"v1", b"v2"]]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    got = s3.get_object(Bucket="vers", Key="k")
    assert (got["Body"].read(), got["VersionId"]) == (b"v2", ids[1])
    assert s3.get_object(Bucket="vers", Key="k", VersionId=ids[0])["Body"].read() == b"v1"
    assert s3.get_object(Bucket="vers", Key="k", VersionId="null")["Body"].read() == b"v0"
    head = s3.head_object(Bucket="vers", Key="k", VersionId=ids[0])
    assert (head["ContentLength"], head["VersionId"]) == (2, ids[0])
    assert versions_of(s3, "vers") == [("k", ids[1], True, False), ("k", ids[0], False, False),
                                       ("k", "null", False, False)]

    # A plain DELETE makes a delete marker: the key is gone from GET and listings.
    deleted = s3.delete_object(Bucket="vers", Key="k")
    marker = deleted["VersionId"]
    assert deleted["DeleteMarker"] is True and marker not in ids
    e = raised(lambda: s3.get_object(Bucket="vers", Key="k"))
    assert error_of(e) == ("NoSuchKey", 404)
    headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert (headers["x-amz-delete-marker"], headers["x-amz-version-id"]) == ("true", marker)
    e = raised(lambda: s3.get_object(Bucket="vers", Key="k", VersionId=marker))
    assert error_of(e) == ("MethodNotAllowed", 405)
    e = raised(lambda: s3.head_object(Bucket="vers", Key="k"))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "Contents" not in s3.list_objects_v2(Bucket="vers")
    assert versions_of(s3, "vers") == [("k", marker, True, True), ("k", ids[1], False, False),
                                       ("k", ids[0], False, False), ("k", "null", False, False)]

    # Deleting the marker brings the newest version back; deleting that, the one before.
    out = s3.delete_object(Bucket="vers", Key="k", VersionId=marker)
    assert (out["DeleteMarker"], out["VersionId"]) == (True, marker)
    assert s3.get_object(Bucket="vers", Key="k")["Body"].read() == b"v2"
    out = s3.delete_object(Bucket="vers", Key="k", VersionId=ids[1])
    assert "DeleteMarker" not in out and out["VersionId"] == ids[1]
    assert s3.get_object(Bucket="vers", Key="k")["Body"].read() == b"v1"
    assert [k["Key"] for k in s3.list_objects_v2(Bucket="vers")["Contents"]] == ["k"]

    # A version that is not there, and an id that could not be one.
    e = raised(lambda: s3.get_object(Bucket="vers", Key="k", VersionId=ids[1]))
    assert error_of(e) == ("NoSuchVersion", 404)
    for bad in ["nope", "x" * 33]:
        e = raised(lambda: s3.get_object(Bucket="vers", Key="k", VersionId=bad))
        assert error_of(e) == ("InvalidArgument", 400)
    # Deleting a version that is already gone succeeds, as on S3.
    assert s3.delete_object(Bucket="vers", Key="k", VersionId=ids[1])["VersionId"] == ids[1]

    # A bucket with versions is not empty; tools empty it by listing versions.
    s3.delete_object(Bucket="vers", Key="k")
    assert "Contents" not in s3.list_objects_v2(Bucket="vers")
    e = raised(lambda: s3.delete_bucket(Bucket="vers"))
    assert error_of(e) == ("BucketNotEmpty", 409)
    empty_bucket(s3, "vers")
    assert "vers" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_suspended_versioning_replaces_only_the_null_version(any_backend):
    s3 = any_backend.client("s3")
    s3.create_bucket(Bucket="susp")
    s3.put_bucket_versioning(Bucket="susp", VersioningConfiguration={"Status": "Enabled"})
    kept = s3.put_object(Bucket="susp", Key="a", Body=b"kept")["VersionId"]
    s3.put_bucket_versioning(Bucket="susp", VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket="susp")["Status"] == "Suspended"
    for body in [b"first", b"second"]:
        assert s3.put_object(Bucket="susp", Key="a", Body=body)["VersionId"] == "null"
    assert versions_of(s3, "susp") == [("a", "null", True, False), ("a", kept, False, False)]
    got = s3.get_object(Bucket="susp", Key="a")
    assert (got["Body"].read(), got["VersionId"]) == (b"second", "null")
    # A delete while suspended replaces the `null` version with a `null` delete marker.
    out = s3.delete_object(Bucket="susp", Key="a")
    assert (out["DeleteMarker"], out["VersionId"]) == (True, "null")
    assert versions_of(s3, "susp") == [("a", "null", True, True), ("a", kept, False, False)]
    assert s3.get_object(Bucket="susp", Key="a", VersionId=kept)["Body"].read() == b"kept"
    # Versioning can be suspended but never turned off again.
    for status in ["Disabled", "enabled"]:
        e = raised(lambda: s3.put_bucket_versioning(Bucket="susp",
                                                    VersioningConfiguration={"Status": status}))
        assert error_of(e) == ("IllegalVersioningConfigurationException", 400)
    # MFA delete needs the MFA header, and Cognate keeps no MFA devices for it.
    e = raised(lambda: s3.put_bucket_versioning(
        Bucket="susp", VersioningConfiguration={"Status": "Enabled", "MFADelete": "Disabled"}))
    assert error_of(e) == ("MalformedXML", 400)
    assert s3.get_bucket_versioning(Bucket="susp")["Status"] == "Suspended"
    empty_bucket(s3, "susp")


def test_version_listings_page_with_markers_prefixes_and_delimiters(any_backend):
    s3 = any_backend.client("s3")
    s3.create_bucket(Bucket="pages")
    s3.put_bucket_versioning(Bucket="pages", VersioningConfiguration={"Status": "Enabled"})
    made = {}
    for key in ["a", "b/1", "b/2", "c"]:
        made[key] = [s3.put_object(Bucket="pages", Key=key, Body=key.encode() + bytes([i]))["VersionId"]
                     for i in range(3)]
    s3.delete_object(Bucket="pages", Key="c")
    expected = []
    for key in ["a", "b/1", "b/2", "c"]:
        newest_first = list(reversed(made[key]))
        expected += [(key, v, i == 0 and key != "c", False) for i, v in enumerate(newest_first)]
    marker = next(v for v in versions_of(s3, "pages") if v[3])
    expected.insert(9, marker)
    assert versions_of(s3, "pages") == expected
    # Pages of two, walked by the paginator through NextKeyMarker and NextVersionIdMarker.
    paged = versions_of(s3, "pages", PaginationConfig={"PageSize": 2})
    assert paged == expected
    page = s3.list_object_versions(Bucket="pages", MaxKeys=2)
    assert page["IsTruncated"] is True
    assert (page["NextKeyMarker"], page["NextVersionIdMarker"]) == ("a", made["a"][1])
    # Resuming inside a key's versions, after a key, and under a prefix.
    page = s3.list_object_versions(Bucket="pages", KeyMarker="a", VersionIdMarker=made["a"][1])
    assert [v["VersionId"] for v in page["Versions"]][:2] == [made["a"][0], made["b/1"][2]]
    page = s3.list_object_versions(Bucket="pages", KeyMarker="b/2")
    assert {v["Key"] for v in page["Versions"]} == {"c"}
    page = s3.list_object_versions(Bucket="pages", Prefix="b/")
    assert [v["Key"] for v in page["Versions"]] == ["b/1"] * 3 + ["b/2"] * 3
    page = s3.list_object_versions(Bucket="pages", Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["b/"]
    assert {v["Key"] for v in page["Versions"]} == {"a", "c"}
    page = s3.list_object_versions(Bucket="pages", MaxKeys=0)
    assert page["IsTruncated"] is False and "Versions" not in page
    e = raised(lambda: s3.list_object_versions(Bucket="pages", VersionIdMarker=made["a"][0]))
    assert error_of(e) == ("InvalidArgument", 400)
    # A marker before the prefix starts at the prefix.
    page = s3.list_object_versions(Bucket="pages", Prefix="b/", KeyMarker="a", VersionIdMarker=made["a"][1])
    assert [v["Key"] for v in page["Versions"]] == ["b/1"] * 3 + ["b/2"] * 3

    # Emptying page by page: each page's versions are deleted before the next page is asked
    # for with markers naming a version that is gone by then.
    seen = []
    kw = {}
    while True:
        page = s3.list_object_versions(Bucket="pages", MaxKeys=4, **kw)
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        seen += [(d["Key"], d["VersionId"]) for d in doomed]
        if doomed:
            assert not s3.delete_objects(Bucket="pages", Delete={"Objects": doomed}).get("Errors")
        if not page["IsTruncated"]:
            break
        kw = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert sorted(seen) == sorted((k, v) for k, v, _, _ in expected)
    s3.delete_bucket(Bucket="pages")


def test_copies_and_multipart_uploads_make_versions(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="copies")
    s3.put_bucket_versioning(Bucket="copies", VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket="copies", Key="doc", Body=b"old")["VersionId"]
    s3.put_object(Bucket="copies", Key="doc", Body=b"new")
    # Restoring an earlier version by copying it over the key.
    out = s3.copy_object(Bucket="copies", Key="doc", CopySource={"Bucket": "copies", "Key": "doc", "VersionId": old})
    assert out["CopySourceVersionId"] == old and out["VersionId"] not in (old, None)
    assert s3.get_object(Bucket="copies", Key="doc")["Body"].read() == b"old"
    assert len(versions_of(s3, "copies")) == 3
    marker = s3.delete_object(Bucket="copies", Key="doc")["VersionId"]
    e = raised(lambda: s3.copy_object(Bucket="copies", Key="other",
                                      CopySource={"Bucket": "copies", "Key": "doc", "VersionId": marker}))
    assert error_of(e) == ("InvalidRequest", 400)
    e = raised(lambda: s3.copy_object(Bucket="copies", Key="other", CopySource={"Bucket": "copies", "Key": "doc"}))
    assert error_of(e) == ("NoSuchKey", 404)
    # A completed multipart upload is a new version.
    up = s3.create_multipart_upload(Bucket="copies", Key="doc")["UploadId"]
    part = s3.upload_part(Bucket="copies", Key="doc", UploadId=up, PartNumber=1, Body=b"joined")
    done = s3.complete_multipart_upload(Bucket="copies", Key="doc", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket="copies", Key="doc")["VersionId"] == done["VersionId"]
    assert [v[1] for v in versions_of(s3, "copies")][:2] == [done["VersionId"], marker]
    empty_bucket(s3, "copies")


def test_versioned_operations_need_their_own_permissions(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="perm")
    s3.put_bucket_versioning(Bucket="perm", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="perm", Key="k", Body=b"1")["VersionId"]
    s3.put_object(Bucket="perm", Key="k", Body=b"2")
    plain = user_client(server, server.client("iam"), "plain", policy={
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]}]})
    assert plain.get_object(Bucket="perm", Key="k")["Body"].read() == b"2"
    for call in [lambda: plain.get_object(Bucket="perm", Key="k", VersionId=first),
                 lambda: plain.head_object(Bucket="perm", Key="k", VersionId=first),
                 lambda: plain.delete_object(Bucket="perm", Key="k", VersionId=first),
                 lambda: plain.list_object_versions(Bucket="perm"),
                 lambda: plain.get_bucket_versioning(Bucket="perm"),
                 lambda: plain.put_bucket_versioning(Bucket="perm",
                                                     VersioningConfiguration={"Status": "Suspended"}),
                 lambda: plain.copy_object(Bucket="perm", Key="c",
                                           CopySource={"Bucket": "perm", "Key": "k", "VersionId": first})]:
        e = raised(call)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    out = plain.delete_objects(Bucket="perm", Delete={"Objects": [{"Key": "k", "VersionId": first}]})
    assert [x["Code"] for x in out["Errors"]] == ["AccessDenied"]
    # Its plain delete only hides the key; every version is still there.
    assert plain.delete_object(Bucket="perm", Key="k")["DeleteMarker"] is True
    assert s3.get_object(Bucket="perm", Key="k", VersionId=first)["Body"].read() == b"1"
    assert len(versions_of(s3, "perm")) == 3
    empty_bucket(s3, "perm")


def test_concurrent_writers_of_one_key_lose_no_version(any_backend):
    s3 = any_backend.client("s3")
    s3.create_bucket(Bucket="race")
    s3.put_bucket_versioning(Bucket="race", VersioningConfiguration={"Status": "Enabled"})
    clients = [any_backend.client("s3") for _ in range(8)]
    for c in clients:
        c.head_bucket(Bucket="race")
    ids, errors = [], []
    start = threading.Barrier(len(clients))

    def write(c, n):
        start.wait()
        try:
            for i in range(4):
                ids.append(c.put_object(Bucket="race", Key="k", Body=b"%d-%d" % (n, i))["VersionId"])
                if i == 1:
                    c.delete_object(Bucket="race", Key="k")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(c, n)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids.append(s3.put_object(Bucket="race", Key="k", Body=b"last")["VersionId"])
    listed = versions_of(s3, "race")
    objects = [v for v in listed if not v[3]]
    assert sorted(v[1] for v in objects) == sorted(ids) and len(ids) == 33
    assert len([v for v in listed if v[3]]) == 8
    latest = [v for v in listed if v[2]]
    assert len(latest) == 1
    assert latest[0][1] == ids[-1] and listed[0] == ("k", ids[-1], True, False)
    current = s3.get_object(Bucket="race", Key="k")
    assert (current["VersionId"], current["Body"].read()) == (ids[-1], b"last")
    empty_bucket(s3, "race")
