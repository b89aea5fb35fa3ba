"""AWS Organizations through boto3: making a second account with nothing but an SDK."""

import json

import botocore.exceptions
import pytest

from test_sts import error_of


def test_create_account_and_describe_it(server):
    orgs = server.client("organizations")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        orgs.describe_organization()
    assert e.value.response["Error"]["Code"] == "AWSOrganizationsNotInUseException"

    org = orgs.create_organization(FeatureSet="ALL")["Organization"]
    assert org["Id"].startswith("o-")
    assert org["MasterAccountId"] == server.account_id

    status = orgs.create_account(Email="logs@example.com", AccountName="logs")["CreateAccountStatus"]
    assert status["State"] == "SUCCEEDED"
    again = orgs.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"]
    new_account = again["AccountId"]
    assert len(new_account) == 12 and new_account != server.account_id

    accounts = {a["Id"]: a for a in orgs.list_accounts()["Accounts"]}
    assert set(accounts) == {server.account_id, new_account}
    assert accounts[new_account]["Name"] == "logs"
    assert accounts[new_account]["JoinedMethod"] == "CREATED"
    assert orgs.describe_account(AccountId=new_account)["Account"]["Email"] == "logs@example.com"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        orgs.describe_create_account_status(CreateAccountRequestId="car-doesnotexist0")
    assert e.value.response["Error"]["Code"] == "CreateAccountStatusNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        orgs.create_organization()
    assert e.value.response["Error"]["Code"] == "AlreadyInOrganizationException"


def test_users_need_organizations_permissions(server):
    iam = server.client("iam")
    iam.create_user(UserName="no-orgs")
    key = iam.create_access_key(UserName="no-orgs")["AccessKey"]
    orgs = server.client("organizations", key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        orgs.create_organization()
    assert error_of(e) == ("AccessDeniedException", 403)
    iam.put_user_policy(UserName="no-orgs", PolicyName="orgs", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "organizations:*", "Resource": "*"}]}))
    assert orgs.create_organization()["Organization"]["MasterAccountId"] == server.account_id
