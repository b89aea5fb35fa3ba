"""Attacks on user pools, each once successful: attributes and claims injected through every
request that writes attributes, races against state changes (on SQLite and PostgreSQL),
replayed and brute-forced challenges, and user enumeration despite PreventUserExistenceErrors."""

import concurrent.futures

import botocore.exceptions
import jwt
import pytest

from test_sts import error_of
from test_userpool import PASSWORD, outbox, pool_and_client, public_client, totp


def failure(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return error_of(e), e.value.response["Error"]["Message"]


def invited(idp, pool_id, username, **attrs):
    idp.admin_create_user(UserPoolId=pool_id, Username=username, TemporaryPassword="Temp-Pass-1",
                          MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": k, "Value": v} for k, v in attrs.items()])


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})


# ---- 2. Attributes and claims that Cognito owns ------------------------------------------------

def test_new_password_required_cannot_inject_attributes_or_claims(server):
    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    idp.admin_create_user(UserPoolId=pid, Username="victim", MessageAction="SUPPRESS")
    victim_sub = next(a["Value"] for a in idp.admin_get_user(UserPoolId=pid, Username="victim")["UserAttributes"]
                      if a["Name"] == "sub")
    invited(idp, pid, "mallory")
    challenge = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": "mallory", "PASSWORD": "Temp-Pass-1"})
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"

    def respond(**attributes):
        responses = {"USERNAME": "mallory", "NEW_PASSWORD": PASSWORD}
        responses.update({f"userAttributes.{k}": v for k, v in attributes.items()})
        return app.respond_to_auth_challenge(ClientId=cid, ChallengeName="NEW_PASSWORD_REQUIRED",
                                             Session=challenge["Session"], ChallengeResponses=responses)

    for name, value in [("sub", victim_sub), ("cognito:groups", "admins"),
                        ("cognito:preferred_role", "arn:aws:iam::123456789012:role/Admin"),
                        ("identities", "[]"), ("custom:role", "admin")]:
        (code, status), _ = failure(lambda: respond(**{name: value}))
        assert (code, status) == ("InvalidParameterException", 400), name
    # The verification flags are not the client's to set.
    (code, _), message = failure(lambda: respond(email_verified="true"))
    assert code == "NotAuthorizedException" and message == "A client attempted to write unauthorized attribute"

    tokens = respond(name="Mallory")["AuthenticationResult"]
    id_claims = claims(tokens["IdToken"])
    assert id_claims["sub"] != victim_sub and id_claims["name"] == "Mallory"
    assert "cognito:groups" not in id_claims and "cognito:preferred_role" not in id_claims
    assert claims(tokens["AccessToken"])["sub"] == id_claims["sub"]


def test_every_attribute_write_passes_the_schema_and_client_permissions(server):
    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    idp.add_custom_attributes(UserPoolId=pid, CustomAttributes=[
        {"Name": "tier", "AttributeDataType": "String", "StringAttributeConstraints": {"MaxLength": "5"}},
        {"Name": "level", "AttributeDataType": "Number", "Mutable": False,
         "NumberAttributeConstraints": {"MinValue": "1", "MaxValue": "9"}}])
    (code, _), message = failure(lambda: idp.add_custom_attributes(
        UserPoolId=pid, CustomAttributes=[{"Name": "tier", "AttributeDataType": "String"}]))
    assert code == "InvalidParameterException" and "custom:tier" in message
    schema = {a["Name"]: a for a in idp.describe_user_pool(UserPoolId=pid)["UserPool"]["SchemaAttributes"]}
    assert schema["custom:level"]["Mutable"] is False and schema["sub"]["Mutable"] is False
    app = public_client(server)

    # SignUp: no verification flags, no custom attributes without WriteAttributes, no unknowns.
    sign_up = lambda *attrs: app.sign_up(ClientId=cid, Username="sam", Password=PASSWORD,
                                         UserAttributes=[{"Name": n, "Value": v} for n, v in attrs])
    assert failure(lambda: sign_up(("email", "s@example.com"), ("email_verified", "true")))[0][0] == "NotAuthorizedException"
    assert failure(lambda: sign_up(("custom:tier", "gold")))[0][0] == "NotAuthorizedException"
    (code, _), message = failure(lambda: sign_up(("custom:nope", "x")))
    assert code == "InvalidParameterException" and "custom:nope: Attribute does not exist in the schema." in message

    # A client allowed to write custom:tier may, within its limits.
    writer = idp.create_user_pool_client(UserPoolId=pid, ClientName="writer",
                                         ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"],
                                         WriteAttributes=["email", "custom:tier"])["UserPoolClient"]["ClientId"]
    assert failure(lambda: app.sign_up(ClientId=writer, Username="tia", Password=PASSWORD,
                                       UserAttributes=[{"Name": "custom:tier", "Value": "platinum"}]))[0][0] \
        == "InvalidParameterException"
    app.sign_up(ClientId=writer, Username="tia", Password=PASSWORD,
                UserAttributes=[{"Name": "custom:tier", "Value": "gold"}, {"Name": "email", "Value": "t@example.com"}])
    idp.admin_confirm_sign_up(UserPoolId=pid, Username="tia")
    access = app.initiate_auth(ClientId=writer, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "tia", "PASSWORD": PASSWORD})["AuthenticationResult"]["AccessToken"]
    for name in ["sub", "cognito:groups", "cognito:username"]:
        assert failure(lambda: app.update_user_attributes(
            AccessToken=access, UserAttributes=[{"Name": name, "Value": "x"}]))[0][0] == "InvalidParameterException"
    assert failure(lambda: app.update_user_attributes(
        AccessToken=access, UserAttributes=[{"Name": "name", "Value": "T"}]))[0][0] == "NotAuthorizedException"
    app.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "custom:tier", "Value": "iron"}])

    # Administrators write any attribute of the schema, but not immutable ones after creation.
    idp.admin_create_user(UserPoolId=pid, Username="ada", MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": "custom:level", "Value": "3"}])
    (code, _), message = failure(lambda: idp.admin_update_user_attributes(
        UserPoolId=pid, Username="ada", UserAttributes=[{"Name": "custom:level", "Value": "9"}]))
    assert code == "InvalidParameterException" and message == "user.custom:level: Attribute cannot be updated."
    assert failure(lambda: idp.admin_create_user(UserPoolId=pid, Username="bad", MessageAction="SUPPRESS",
                                                 UserAttributes=[{"Name": "custom:level", "Value": "99"}]))[0][0] \
        == "InvalidParameterException"
    assert failure(lambda: idp.admin_update_user_attributes(
        UserPoolId=pid, Username="ada", UserAttributes=[{"Name": "cognito:groups", "Value": "admins"}]))[0][0] \
        == "InvalidParameterException"
    assert failure(lambda: idp.create_user_pool_client(UserPoolId=pid, ClientName="bad",
                                                       WriteAttributes=["custom:missing"]))[0][0] \
        == "InvalidParameterException"


def test_required_attributes_in_new_password_required(server):
    idp, pool, client = pool_and_client(server, Schema=[{"Name": "name", "Required": True}])
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    assert failure(lambda: idp.admin_create_user(UserPoolId=pid, Username="nameless", MessageAction="SUPPRESS"))[0][0] \
        == "InvalidParameterException"
    invited(idp, pid, "nora", name="Nora")
    challenge = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": "nora", "PASSWORD": "Temp-Pass-1"})
    assert challenge["ChallengeParameters"]["requiredAttributes"] == "[]"
    respond = lambda **attrs: app.respond_to_auth_challenge(
        ClientId=cid, ChallengeName="NEW_PASSWORD_REQUIRED", Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "nora", "NEW_PASSWORD": PASSWORD,
                            **{f"userAttributes.{k}": v for k, v in attrs.items()}})
    (code, _), message = failure(lambda: respond(name="Someone Else"))
    assert code == "NotAuthorizedException" and message == "Cannot modify an already provided name"
    assert "IdToken" in respond()["AuthenticationResult"]


# ---- 7. Challenge sessions are single use, expire and count failures --------------------------------

def mfa_user(server, name):
    idp, pool, client = pool_and_client(server, MfaConfiguration="OPTIONAL")
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    idp.admin_create_user(UserPoolId=pid, Username=name, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username=name, Password=PASSWORD, Permanent=True)
    sign_in = lambda: app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                        AuthParameters={"USERNAME": name, "PASSWORD": PASSWORD})
    access = sign_in()["AuthenticationResult"]["AccessToken"]
    secret = app.associate_software_token(AccessToken=access)["SecretCode"]
    app.verify_software_token(AccessToken=access, UserCode=totp(secret))
    app.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    return app, cid, sign_in, secret


def wrong_code(secret):
    right = {totp(secret, t) for t in [__import__("time").time() + d for d in (-30, 0, 30)]}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in right)


def test_mfa_session_takes_few_wrong_codes_and_answers_once(server):
    app, cid, sign_in, secret = mfa_user(server, "kai")
    challenge = sign_in()
    respond = lambda code, session=None: app.respond_to_auth_challenge(
        ClientId=cid, ChallengeName="SOFTWARE_TOKEN_MFA", Session=session or challenge["Session"],
        ChallengeResponses={"USERNAME": "kai", "SOFTWARE_TOKEN_MFA_CODE": code})
    for _ in range(3):
        assert failure(lambda: respond(wrong_code(secret)))[0][0] == "CodeMismatchException"
    # Spent: even the right code no longer opens it.
    (code, _), message = failure(lambda: respond(totp(secret, __import__("time").time() + 30)))
    assert code == "NotAuthorizedException" and "session" in message

    fresh = sign_in()
    code_now = totp(secret, __import__("time").time() + 30)
    assert "IdToken" in respond(code_now, fresh["Session"])["AuthenticationResult"]
    (code, _), message = failure(lambda: respond(code_now, fresh["Session"]))
    assert code == "NotAuthorizedException" and message == "Invalid session for the user, session can only be used once."


def test_wrong_mfa_codes_count_towards_the_lockout(server):
    """New sessions do not buy new guesses: wrong codes add up across sign-ins to the lockout."""
    app, cid, sign_in, secret = mfa_user(server, "lou")
    messages = []
    for _ in range(3):
        try:
            session = sign_in()["Session"]
        except botocore.exceptions.ClientError as e:
            messages.append(e.response["Error"]["Message"])
            break
        for _ in range(3):
            try:
                app.respond_to_auth_challenge(
                    ClientId=cid, ChallengeName="SOFTWARE_TOKEN_MFA", Session=session,
                    ChallengeResponses={"USERNAME": "lou", "SOFTWARE_TOKEN_MFA_CODE": wrong_code(secret)})
            except botocore.exceptions.ClientError as e:
                messages.append(e.response["Error"]["Message"])
    assert messages.count("Invalid code received for user") == 5, messages
    assert "Password attempts exceeded" in messages, messages


def test_recorded_password_verifier_and_new_password_sessions_do_not_replay(server):
    from pycognito.aws_srp import AWSSRP
    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    idp.admin_create_user(UserPoolId=pid, Username="rae", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="rae", Password=PASSWORD, Permanent=True)
    srp = AWSSRP(username="rae", password=PASSWORD, pool_id=pid, client_id=cid, client=app)
    first = app.initiate_auth(ClientId=cid, AuthFlow="USER_SRP_AUTH", AuthParameters=srp.get_auth_params())
    recorded = srp.process_challenge(first["ChallengeParameters"], srp.get_auth_params())
    answer = app.respond_to_auth_challenge(ClientId=cid, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=recorded)
    assert "IdToken" in answer["AuthenticationResult"]
    (code, _), _ = failure(lambda: app.respond_to_auth_challenge(
        ClientId=cid, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=recorded))
    assert code == "NotAuthorizedException"

    invited(idp, pid, "newbie")
    challenge = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": "newbie", "PASSWORD": "Temp-Pass-1"})
    respond = lambda: app.respond_to_auth_challenge(
        ClientId=cid, ChallengeName="NEW_PASSWORD_REQUIRED", Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "newbie", "NEW_PASSWORD": PASSWORD})
    assert "IdToken" in respond()["AuthenticationResult"]
    (code, _), message = failure(respond)
    assert code == "NotAuthorizedException" and message == "Invalid session for the user, session can only be used once."


# ---- 8. Unknown users look like known ones -----------------------------------------------------------

def test_prevent_user_existence_errors_hides_who_exists(server):
    idp = server.client("cognito-idp")
    pid = idp.create_user_pool(PoolName="hidden", UsernameAttributes=["email"],
                               AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pid, ClientName="web", PreventUserExistenceErrors="ENABLED",
                                      ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    app = public_client(server)
    app.sign_up(ClientId=cid, Username="real@example.com", Password=PASSWORD)

    known = app.forgot_password(ClientId=cid, Username="real@example.com")["CodeDeliveryDetails"]
    unknown = app.forgot_password(ClientId=cid, Username="rose@example.org")["CodeDeliveryDetails"]
    assert known == {"Destination": "r***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    assert unknown == {"Destination": "r***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    assert app.forgot_password(ClientId=cid, Username="rose@example.org")["CodeDeliveryDetails"] == unknown

    resent = app.resend_confirmation_code(ClientId=cid, Username="ghost@example.com")["CodeDeliveryDetails"]
    assert set(resent) == set(known) and resent["DeliveryMedium"] == "EMAIL"

    wrong = lambda who, call: failure(lambda: call(ClientId=cid, Username=who, ConfirmationCode="000000",
                                                   **({"Password": PASSWORD} if call == app.confirm_forgot_password else {})))
    for call in [app.confirm_forgot_password, app.confirm_sign_up]:
        assert wrong("real@example.com", call) == wrong("ghost@example.com", call)
        assert wrong("ghost@example.com", call)[0] == ("CodeMismatchException", 400)
    assert failure(lambda: app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                             AuthParameters={"USERNAME": "ghost@example.com", "PASSWORD": PASSWORD})) \
        == (("NotAuthorizedException", 400), "Incorrect username or password.")


# ---- 6. Races against state changes, on both backends --------------------------------------------------

def race(calls, workers=16):
    """Runs every call at once; returns ('ok', result) or (code, message) for each."""
    def run(call):
        try:
            return ("ok", call())
        except botocore.exceptions.ClientError as e:
            return (e.response["Error"]["Code"], e.response["Error"]["Message"])
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, calls))


def racing_user(server, name):
    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    idp.admin_create_user(UserPoolId=pid, Username=name, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username=name, Password=PASSWORD, Permanent=True)
    apps = [public_client(server) for _ in range(16)]
    sign_in = lambda i, password=PASSWORD: lambda: apps[i % 16].initiate_auth(
        ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": name, "PASSWORD": password})
    return idp, pid, sign_in


def test_concurrent_wrong_guesses_engage_the_lockout(any_backend):
    import time
    _, _, sign_in = racing_user(any_backend, "target")
    started = time.monotonic()
    answers = race([sign_in(i, "Wrong-Guess-%d" % i) for i in range(40)])
    elapsed = time.monotonic() - started
    checked = [a for a in answers if a[1] == "Incorrect username or password."]
    # Five guesses, then one more each time a lockout (1 s, 2 s, 4 s, ...) has run out.
    assert len(checked) <= 5 + (int(elapsed) + 1).bit_length(), (elapsed, answers)
    assert all(a[1] in ("Incorrect username or password.", "Password attempts exceeded") or a[0] == "TooManyRequestsException"
               for a in answers), answers
    assert failure(sign_in(0))[1] == "Password attempts exceeded"


def test_disabling_and_new_passwords_are_not_undone_by_sign_ins_in_flight(any_backend):
    for round in range(4):
        # Sign-ins (failing ones write the user's failure count) racing an administrator.
        idp, pid, sign_in = racing_user(any_backend, f"flight{round}")
        name = f"flight{round}"
        calls = [sign_in(i) for i in range(10)] + [sign_in(10, "Wrong-Guess")]
        calls.insert(5, lambda: idp.admin_disable_user(UserPoolId=pid, Username=name))
        race(calls)
        assert idp.admin_get_user(UserPoolId=pid, Username=name)["Enabled"] is False, round
        assert failure(sign_in(0))[1] == "User is disabled."

        # At most four failures (no lockout): two wrong guesses, two old passwords.
        idp, pid, sign_in = racing_user(any_backend, f"moved{round}")
        name = f"moved{round}"
        calls = [sign_in(0, "Wrong-Guess"), sign_in(1), sign_in(2, "Wrong-Guess"), sign_in(3)]
        calls.insert(2, lambda: idp.admin_set_user_password(UserPoolId=pid, Username=name,
                                                            Password="Brand-New-Pass-7", Permanent=True))
        race(calls)
        assert "AccessToken" in sign_in(5, "Brand-New-Pass-7")()["AuthenticationResult"]
        assert failure(sign_in(4))[1] == "Incorrect username or password.", round


def test_concurrent_confirmation_code_guesses_are_counted(any_backend):
    idp, pool, client = pool_and_client(any_backend)
    cid = client["ClientId"]
    app = public_client(any_backend)
    app.sign_up(ClientId=cid, Username="coder", Password=PASSWORD,
                UserAttributes=[{"Name": "email", "Value": "c@example.com"}])
    real = outbox(any_backend, "coder")["code"]
    guesses = ["%06d" % ((int(real) + 1 + i) % 1000000) for i in range(12)]
    apps = [public_client(any_backend) for _ in range(12)]
    answers = race([lambda i=i: apps[i].confirm_sign_up(ClientId=cid, Username="coder", ConfirmationCode=guesses[i])
                    for i in range(12)])
    assert sum(1 for a in answers if a[0] == "CodeMismatchException") <= 5, answers
    # Out of attempts: even the right code is refused now.
    assert failure(lambda: app.confirm_sign_up(ClientId=cid, Username="coder", ConfirmationCode=real))[0][0] \
        == "LimitExceededException"


def test_verification_flags_are_never_a_clients_to_write(server):
    idp, pool, _ = pool_and_client(server)
    pid = pool["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pid, ClientName="lax", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"],
                                      WriteAttributes=["email", "email_verified"])["UserPoolClient"]["ClientId"]
    app = public_client(server)
    (code, _), _ = failure(lambda: app.sign_up(ClientId=cid, Username="vic", Password=PASSWORD, UserAttributes=[
        {"Name": "email", "Value": "ceo@example.com"}, {"Name": "email_verified", "Value": "true"}]))
    assert code == "NotAuthorizedException"


def test_a_new_password_session_dies_when_its_user_leaves_that_state(server):
    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    invited(idp, pid, "olga")
    stolen = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "olga", "PASSWORD": "Temp-Pass-1"})["Session"]
    # The administrator sets the password; the old session must not set another.
    idp.admin_set_user_password(UserPoolId=pid, Username="olga", Password=PASSWORD, Permanent=True)
    (code, _), _ = failure(lambda: app.respond_to_auth_challenge(
        ClientId=cid, ChallengeName="NEW_PASSWORD_REQUIRED", Session=stolen,
        ChallengeResponses={"USERNAME": "olga", "NEW_PASSWORD": "Taken-Over-9"}))
    assert code == "NotAuthorizedException"
    # Nor does a session outlive its user: a new user of the same name is someone else.
    idp.admin_delete_user(UserPoolId=pid, Username="olga")
    invited(idp, pid, "olga")
    (code, _), _ = failure(lambda: app.respond_to_auth_challenge(
        ClientId=cid, ChallengeName="NEW_PASSWORD_REQUIRED", Session=stolen,
        ChallengeResponses={"USERNAME": "olga", "NEW_PASSWORD": "Taken-Over-9"}))
    assert code == "NotAuthorizedException"


def test_change_password_guesses_count_towards_the_lockout(server):
    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    idp.admin_create_user(UserPoolId=pid, Username="pat", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="pat", Password=PASSWORD, Permanent=True)
    access = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "pat", "PASSWORD": PASSWORD})["AuthenticationResult"]["AccessToken"]
    messages = [failure(lambda: app.change_password(AccessToken=access, PreviousPassword=f"Guess-{i}-Horse",
                                                    ProposedPassword="Next-Horse-9"))[1] for i in range(6)]
    assert messages[:5] == ["Incorrect username or password."] * 5
    assert messages[5] == "Password attempts exceeded"


def test_unknown_users_lock_out_and_run_out_of_codes_like_known_ones(server):
    idp = server.client("cognito-idp")
    pid = idp.create_user_pool(PoolName="hidden", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pid, ClientName="web", PreventUserExistenceErrors="ENABLED",
                                      ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    app = public_client(server)
    app.sign_up(ClientId=cid, Username="known", Password=PASSWORD,
                UserAttributes=[{"Name": "email", "Value": "k@example.com"}])
    idp.admin_create_user(UserPoolId=pid, Username="signed", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="signed", Password=PASSWORD, Permanent=True)

    def sign_ins(name):
        return [failure(lambda: app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                                  AuthParameters={"USERNAME": name, "PASSWORD": "Wrong-Horse-9"}))
                for _ in range(6)]
    assert sign_ins("signed") == sign_ins("nobody")
    assert sign_ins("nobody2")[-1][1] == "Password attempts exceeded"

    def confirms(name):
        return [failure(lambda: app.confirm_sign_up(ClientId=cid, Username=name, ConfirmationCode="000000"))
                for _ in range(6)]
    known, unknown = confirms("known"), confirms("ghost")
    assert known == unknown, (known, unknown)
    assert unknown[-1][0] == ("LimitExceededException", 400)
