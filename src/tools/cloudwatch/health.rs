//! The AWS side's own health check for `pi-mcp doctor`: the standard credential chain resolves
//! (the key is shown by its last four characters only, the secret never), a region is set, and
//! which endpoint the CloudWatch clients will call. CloudWatch is optional: a missing piece is a
//! warning, unless alert rules read CloudWatch, when it fails.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cloudwatch::config::ProvideCredentials as _;

use crate::health::Check;

/// Longest the credential chain may take (instance metadata answers slowly, or never, off AWS).
pub const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// `needed_by`: the alert rules that read CloudWatch (metric rules, log-group rules).
pub async fn health(needed_by: &[String]) -> Vec<Check> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(super::CONNECT_TIMEOUT)
                .build(),
        )
        .load()
        .await;
    let needed = !needed_by.is_empty();
    let users = if needed {
        format!(
            " ({} read CloudWatch)",
            crate::health::rules_list(needed_by)
        )
    } else {
        String::new()
    };
    let configured = config.region().is_some()
        || config.endpoint_url().is_some()
        || [
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ]
        .iter()
        .any(|k| std::env::var_os(k).is_some());
    if !configured {
        return vec![
            Check::warn(
                "aws",
                format!(
                    "not configured (no region, no credentials){users}: the cloudwatch tool and \
                     CloudWatch rules cannot be used"
                ),
                "set AWS_REGION and credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or \
                 AWS_PROFILE), or ignore this if you do not use CloudWatch",
            )
            .needed_if(needed),
        ];
    }
    let mut out = Vec::new();
    out.push(match config.region() {
        Some(r) => Check::ok("aws region", r.to_string()),
        None => Check::warn(
            "aws region",
            format!("not set{users}: the cloudwatch tool cannot be used"),
            "set AWS_REGION (or a region in the AWS profile)",
        )
        .needed_if(needed),
    });
    out.push(Check::ok(
        "aws endpoint",
        match config.endpoint_url() {
            Some(url) => format!("{} (AWS_ENDPOINT_URL)", crate::redact::text(url)),
            None => "the AWS default for the region".into(),
        },
    ));
    let Some(provider) = config.credentials_provider() else {
        return out;
    };
    let resolved = tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await;
    out.push(match resolved {
        Ok(Ok(creds)) => {
            let key = creds.access_key_id();
            let tail: String = key
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let expires = match creds.expiry().and_then(|t| t.duration_since(std::time::SystemTime::now()).ok()) {
                Some(left) => format!(", expires in {} min", left.as_secs() / 60),
                None => String::new(),
            };
            Check::ok(
                "aws credentials",
                format!("resolved from {} (key …{tail}{expires})", source()),
            )
        }
        Ok(Err(e)) => Check::warn(
            "aws credentials",
            format!("the credential chain found none{users}: {e}"),
            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where a role is \
             attached",
        )
        .needed_if(needed),
        Err(_) => Check::warn(
            "aws credentials",
            format!(
                "the credential chain did not answer within {CREDENTIALS_TIMEOUT:?}{users} \
                 (instance metadata is unreachable off AWS)"
            ),
            "set AWS credentials in the environment or a profile, or AWS_EC2_METADATA_DISABLED=true \
             when not on AWS",
        )
        .needed_if(needed),
    });
    out
}

/// Where the chain most likely took the credentials from, by what is set (never the values).
fn source() -> String {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") {
        "the environment (AWS_ACCESS_KEY_ID)".into()
    } else if let Ok(p) = std::env::var("AWS_PROFILE") {
        format!("profile `{p}`")
    } else if set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)".into()
    } else if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    {
        "the container's role".into()
    } else {
        "the default chain (profile, SSO or instance role)".into()
    }
}
