//! A starter set of AWS managed policies (`arn:aws:iam::aws:policy/…`), built in rather than
//! stored: every account sees the same documents. Cognate's versions grant the same actions as
//! AWS's for the services Cognate serves.

/// One AWS managed policy: name, path, description, document.
pub(crate) struct AwsPolicy {
    pub name: &'static str,
    pub path: &'static str,
    pub description: &'static str,
    pub document: &'static str,
}

impl AwsPolicy {
    pub(crate) fn arn(&self) -> String {
        format!("arn:aws:iam::aws:policy{}{}", self.path, self.name)
    }
}

pub(crate) const POLICIES: &[AwsPolicy] = &[
    AwsPolicy {
        name: "AdministratorAccess",
        path: "/",
        description: "Provides full access to AWS services and resources.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "ReadOnlyAccess",
        path: "/",
        description: "Provides read-only access to AWS services and resources.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*","iam:Simulate*","iam:GenerateCredentialReport","iam:GenerateServiceLastAccessedDetails","s3:Get*","s3:List*","s3:Describe*","sts:GetCallerIdentity","cognito-idp:Describe*","cognito-idp:List*","cognito-idp:Get*","cognito-idp:AdminGet*","cognito-idp:AdminList*","cognito-identity:Describe*","cognito-identity:List*","cognito-identity:Get*","cognito-sync:Describe*","cognito-sync:List*","cognito-sync:Get*","organizations:Describe*","organizations:List*"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "IAMFullAccess",
        path: "/",
        description: "Provides full access to IAM via the AWS Management Console.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:*","organizations:DescribeAccount","organizations:DescribeOrganization","organizations:DescribeOrganizationalUnit","organizations:DescribePolicy","organizations:ListChildren","organizations:ListParents","organizations:ListPoliciesForTarget","organizations:ListRoots","organizations:ListPolicies","organizations:ListTargetsForPolicy"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonS3FullAccess",
        path: "/",
        description: "Provides full access to all buckets via the AWS Management Console.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","s3-object-lambda:*"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonS3ReadOnlyAccess",
        path: "/",
        description: "Provides read only access to all buckets via the AWS Management Console.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*","s3-object-lambda:Get*","s3-object-lambda:List*"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonCognitoPowerUser",
        path: "/",
        description: "Provides administrative access to existing Amazon Cognito resources. You will need AWS account admin access to create new Cognito resources.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cognito-identity:*","cognito-idp:*","cognito-sync:*","iam:ListRoles","iam:ListOpenIdConnectProviders","iam:GetRole","iam:ListSAMLProviders","iam:GetSAMLProvider","sns:ListPlatformApplications"],"Resource":"*"},{"Effect":"Allow","Action":"iam:CreateServiceLinkedRole","Resource":"*","Condition":{"StringEquals":{"iam:AWSServiceName":"email.cognito-idp.amazonaws.com"}}},{"Effect":"Allow","Action":["iam:DeleteServiceLinkedRole","iam:GetServiceLinkedRoleDeletionStatus"],"Resource":"arn:aws:iam::*:role/aws-service-role/email.cognito-idp.amazonaws.com/AWSServiceRoleForAmazonCognitoIdpEmail*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonCognitoReadOnly",
        path: "/",
        description: "Provides read only access to Amazon Cognito resources.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cognito-identity:Describe*","cognito-identity:Get*","cognito-identity:List*","cognito-idp:Describe*","cognito-idp:AdminGet*","cognito-idp:AdminList*","cognito-idp:List*","cognito-idp:Get*","cognito-sync:Describe*","cognito-sync:Get*","cognito-sync:List*","iam:ListOpenIdConnectProviders","iam:ListRoles","sns:ListPlatformApplications"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonCognitoDeveloperAuthenticatedIdentities",
        path: "/",
        description: "Provides access to Amazon Cognito APIs for developer authenticated identities from your Authentication Provider.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cognito-identity:GetOpenIdTokenForDeveloperIdentity","cognito-identity:LookupDeveloperIdentity","cognito-identity:MergeDeveloperIdentities","cognito-identity:UnlinkDeveloperIdentity"],"Resource":"*"}]}"#,
    },
];

/// The built-in policy with this ARN.
pub(crate) fn by_arn(arn: &str) -> Option<&'static AwsPolicy> {
    let rest = arn.strip_prefix("arn:aws:iam::aws:policy")?;
    POLICIES
        .iter()
        .find(|p| rest.strip_prefix(p.path) == Some(p.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_policy_is_valid() {
        for p in POLICIES {
            cognate_policy::Policy::parse(p.document, cognate_policy::PolicyUse::Identity)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(by_arn(&p.arn()).map(|x| x.name), Some(p.name));
        }
        assert!(by_arn("arn:aws:iam::aws:policy/NoSuchPolicy").is_none());
    }
}
