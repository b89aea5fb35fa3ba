"""S3 object tags with boto3: Put/Get/DeleteObjectTagging (of the current version and of one
version), tags given with PutObject, multipart uploads and copies, S3's limits and error
codes, and policies that decide by a request's or an object's tags."""

import botocore.exceptions
import pytest

from test_s3 import user_client
from test_sts import error_of


def tags_of(s3, **kw):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(**kw)["TagSet"]}


def refused(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return error_of(e)


def test_tags_of_objects_and_their_versions(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="tagged")
    s3.put_object(Bucket="tagged", Key="k", Body=b"x", Tagging="project=apollo&team=a%20b")
    assert tags_of(s3, Bucket="tagged", Key="k") == {"project": "apollo", "team": "a b"}
    head = s3.head_object(Bucket="tagged", Key="k")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    assert "x-amz-tagging" not in head["ResponseMetadata"]["HTTPHeaders"]
    s3.put_object_tagging(Bucket="tagged", Key="k", Tagging={"TagSet": [{"Key": "only", "Value": ""}]})
    assert tags_of(s3, Bucket="tagged", Key="k") == {"only": ""}
    s3.delete_object_tagging(Bucket="tagged", Key="k")
    assert tags_of(s3, Bucket="tagged", Key="k") == {}
    assert "x-amz-tagging-count" not in s3.get_object(Bucket="tagged", Key="k")["ResponseMetadata"]["HTTPHeaders"]

    # Each version has its own tags.
    s3.put_bucket_versioning(Bucket="tagged", VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket="tagged", Key="v", Body=b"1", Tagging="gen=1")["VersionId"]
    s3.put_object(Bucket="tagged", Key="v", Body=b"2", Tagging="gen=2")
    assert tags_of(s3, Bucket="tagged", Key="v") == {"gen": "2"}
    out = s3.put_object_tagging(Bucket="tagged", Key="v", VersionId=old,
                                Tagging={"TagSet": [{"Key": "gen", "Value": "one"}]})
    assert out["VersionId"] == old
    assert tags_of(s3, Bucket="tagged", Key="v", VersionId=old) == {"gen": "one"}
    assert tags_of(s3, Bucket="tagged", Key="v") == {"gen": "2"}

    # Multipart uploads and copies carry tags; a copy keeps the source's unless told.
    up = s3.create_multipart_upload(Bucket="tagged", Key="mp", Tagging="from=upload")["UploadId"]
    part = s3.upload_part(Bucket="tagged", Key="mp", UploadId=up, PartNumber=1, Body=b"p")
    s3.complete_multipart_upload(Bucket="tagged", Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert tags_of(s3, Bucket="tagged", Key="mp") == {"from": "upload"}
    s3.copy_object(Bucket="tagged", Key="c1", CopySource={"Bucket": "tagged", "Key": "mp"})
    assert tags_of(s3, Bucket="tagged", Key="c1") == {"from": "upload"}
    s3.copy_object(Bucket="tagged", Key="c2", CopySource={"Bucket": "tagged", "Key": "mp"},
                   TaggingDirective="REPLACE", Tagging="new=yes")
    assert tags_of(s3, Bucket="tagged", Key="c2") == {"new": "yes"}

    # S3's limits, in its words.
    many = {"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]}
    assert refused(lambda: s3.put_object_tagging(Bucket="tagged", Key="k", Tagging=many)) == ("BadRequest", 400)
    for tag in [{"Key": "k" * 129, "Value": "v"}, {"Key": "k", "Value": "v" * 257}, {"Key": "aws:x", "Value": "v"}]:
        assert refused(lambda: s3.put_object_tagging(Bucket="tagged", Key="k", Tagging={"TagSet": [tag]})) == (
            "InvalidTag", 400)
    dup = {"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}
    assert refused(lambda: s3.put_object_tagging(Bucket="tagged", Key="k", Tagging=dup)) == ("InvalidTag", 400)
    assert refused(lambda: s3.put_object(Bucket="tagged", Key="k", Body=b"", Tagging="a=1&a=2")) == (
        "InvalidArgument", 400)
    assert refused(lambda: s3.get_object_tagging(Bucket="tagged", Key="missing")) == ("NoSuchKey", 404)
    assert refused(lambda: s3.get_object_tagging(Bucket="tagged", Key="v", VersionId="null")) == (
        "NoSuchVersion", 404)


def test_policies_decide_by_request_and_object_tags(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="bytag")
    s3.put_object(Bucket="bytag", Key="public", Body=b"open", Tagging="access=public")
    s3.put_object(Bucket="bytag", Key="secret", Body=b"closed", Tagging="access=private")
    reader = user_client(server, server.client("iam"), "reader", policy={
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectTagging"], "Resource": "arn:aws:s3:::bytag/*",
             "Condition": {"StringEquals": {"s3:ExistingObjectTag/access": "public"}}},
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:PutObjectTagging"], "Resource": "arn:aws:s3:::bytag/*",
             "Condition": {"StringEquals": {"s3:RequestObjectTag/access": "public"},
                           "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["access"]}}}]})
    assert reader.get_object(Bucket="bytag", Key="public")["Body"].read() == b"open"
    assert tags_of(reader, Bucket="bytag", Key="public") == {"access": "public"}
    for call in [lambda: reader.get_object(Bucket="bytag", Key="secret"),
                 lambda: reader.head_object(Bucket="bytag", Key="secret"),
                 lambda: reader.get_object_tagging(Bucket="bytag", Key="secret"),
                 # Writing needs the right tags, and no others.
                 lambda: reader.put_object(Bucket="bytag", Key="new", Body=b"x"),
                 lambda: reader.put_object(Bucket="bytag", Key="new", Body=b"x", Tagging="access=private"),
                 lambda: reader.put_object(Bucket="bytag", Key="new", Body=b"x", Tagging="access=public&extra=1"),
                 # Nor may it tag an object otherwise.
                 lambda: reader.put_object_tagging(Bucket="bytag", Key="public", Tagging={
                     "TagSet": [{"Key": "access", "Value": "private"}]})]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    reader.put_object(Bucket="bytag", Key="new", Body=b"x", Tagging="access=public")
    assert tags_of(s3, Bucket="bytag", Key="new") == {"access": "public"}
    assert tags_of(s3, Bucket="bytag", Key="public") == {"access": "public"}


def test_bucket_tags(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="btags")
    assert refused(lambda: s3.get_bucket_tagging(Bucket="btags")) == ("NoSuchTagSet", 404)
    tags = [{"Key": f"k{i}", "Value": str(i)} for i in range(50)]
    s3.put_bucket_tagging(Bucket="btags", Tagging={"TagSet": tags})
    assert s3.get_bucket_tagging(Bucket="btags")["TagSet"] == tags
    too_many = {"TagSet": tags + [{"Key": "k50", "Value": ""}]}
    assert refused(lambda: s3.put_bucket_tagging(Bucket="btags", Tagging=too_many)) == ("InvalidTag", 400)
    dup = {"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}
    assert refused(lambda: s3.put_bucket_tagging(Bucket="btags", Tagging=dup)) == ("InvalidTag", 400)
    assert s3.get_bucket_tagging(Bucket="btags")["TagSet"] == tags
    s3.delete_bucket_tagging(Bucket="btags")
    assert refused(lambda: s3.get_bucket_tagging(Bucket="btags")) == ("NoSuchTagSet", 404)
    assert refused(lambda: s3.get_bucket_tagging(Bucket="no-such-bucket")) == ("NoSuchBucket", 404)
    # Another account's principal, or a user without the permission, may not tag it.
    user = user_client(server, server.client("iam"), "nobody")
    assert refused(lambda: user.put_bucket_tagging(Bucket="btags", Tagging={"TagSet": []})) == ("AccessDenied", 403)
    assert refused(lambda: user.get_bucket_tagging(Bucket="btags")) == ("AccessDenied", 403)


def test_copies_and_markers_answer_only_to_callers_allowed_the_read(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="classified")
    s3.put_bucket_versioning(Bucket="classified", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="classified", Key="secret", Body=b"s", Tagging="level=secret")
    marker = s3.delete_object(Bucket="classified", Key="gone")["VersionId"]
    copier = user_client(server, server.client("iam"), "copier", policy={
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"], "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*",
             "Condition": {"StringEquals": {"s3:ExistingObjectTag/level": "secret"}}}]})
    assert refused(lambda: copier.get_object(Bucket="classified", Key="secret")) == ("AccessDenied", 403)
    # Copying it elsewhere is reading it: the same tags decide.
    assert refused(lambda: copier.copy_object(Bucket="classified", Key="mine",
                                              CopySource={"Bucket": "classified", "Key": "secret"})) == (
        "AccessDenied", 403)
    # A delete marker's id tells nothing to a caller who may not read that version.
    assert refused(lambda: copier.get_object(Bucket="classified", Key="gone", VersionId=marker)) == (
        "AccessDenied", 403)
